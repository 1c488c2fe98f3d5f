"""Direct logit attribution: each head's direct contribution to a logit at one position.

For layer ``l``, head ``h``, query position ``p`` and a token ``u``::

    dla[l, h, u] = norm_p(z_p[l, h] @ W_O[l, h]) · W_U[:, u]

where ``z_p[l, h]`` is the head's output before the output projection at ``p`` (TransformerLens
``hook_z``; the input of ``o_proj``/``c_proj`` in Hugging Face models) and ``norm_p`` is the
model's final norm with its scale frozen at the value the model computed at ``p`` on this run,
as TransformerLens's ``apply_ln_to_stack`` does: the head's output is centred (LayerNorm only:
its mean over ``d_model`` is subtracted), divided by that scale and multiplied by the norm's
weight γ. The norm's bias, ``b_O`` and ``W_U``'s bias are not a head's and are left out, so the
heads' values plus the other components' direct terms and those biases add up to the logit.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import torch

from ._adapters import ModelAdapter, WeightsUnavailableError, as_adapter, check_length, check_token_ids
from ._adapters.base import single_token_id
from ._ov import token_strings


@dataclasses.dataclass(frozen=True)
class DLAResult:
    """Every head's direct contribution to the logits of ``targets`` at ``position``.

    ``targets[0]`` is the token the model predicts there (the largest logit), then the tokens
    asked for; ``values`` is float32 ``[target, layer, head]`` and ``logits`` float32
    ``[target]``, the model's own logits at ``position``."""

    position: int
    token: str  # the token at ``position`` (the query)
    targets: list[str]
    target_ids: list[int]
    values: np.ndarray
    logits: np.ndarray
    norm: str  # how the final norm was applied, in words

    @property
    def predicted(self) -> str:
        return self.targets[0]

    def of(self, target: str | int) -> np.ndarray:
        """``[layer, head]`` for one target, by its string or its index in ``targets``."""
        index = target if isinstance(target, int) else self.targets.index(target)
        return self.values[index]

    def __repr__(self) -> str:
        lines = [f"DLAResult(position {self.position} {self.token!r}, final norm: {self.norm}"]
        for i, name in enumerate(self.targets):
            v = self.values[i]
            layer, head = np.unravel_index(int(np.argmax(v)), v.shape)
            label = "predicted " if i == 0 else ""
            lines.append(
                f"  {label}{name!r}: logit {self.logits[i]:.3f}, heads' sum {float(v.sum()):+.3f}, "
                f"largest L{layer}H{head} {float(v[layer, head]):+.3f}"
            )
        return "\n".join(lines) + ")"


def _ids_of(adapter: ModelAdapter, prompt: Any) -> torch.Tensor:
    if isinstance(prompt, str):
        ids = adapter.to_ids(prompt)
    else:
        ids = check_token_ids(adapter, prompt).reshape(-1)
    if ids.numel() == 0:
        raise ValueError("the prompt has no tokens")
    check_length(adapter, int(ids.numel()), "prompt")
    return ids


def direct_logit_attribution(
    model: Any,
    prompt: Any,
    query_pos: int,
    tokens: Sequence[Any] | None = None,
    *,
    tokenizer: Any = None,
) -> DLAResult:
    """See :func:`headscope.direct_logit_attribution`."""
    adapter = as_adapter(model, tokenizer=tokenizer)
    reason = adapter.weights_unavailable()
    if reason:
        raise WeightsUnavailableError(reason)
    ids = _ids_of(adapter, prompt)
    return attribute(adapter, ids, query_pos, tokens)


def attribute(adapter: ModelAdapter, ids: torch.Tensor, query_pos: Any, tokens: Sequence[Any] | None) -> DLAResult:
    """DLA on token ids ``[pos]`` (the widget's run) at ``query_pos``; negative counts from the end."""
    n = int(ids.numel())
    if isinstance(query_pos, bool) or not isinstance(query_pos, (int, np.integer)):
        raise TypeError(f"query_pos must be an int, got {type(query_pos).__name__}")
    p = int(query_pos) + (n if query_pos < 0 else 0)
    if not 0 <= p < n:
        raise ValueError(f"query_pos {int(query_pos)} is out of range: the prompt has positions 0-{n - 1}")
    if tokens is not None and (isinstance(tokens, (str, int)) or not isinstance(tokens, (list, tuple))):
        tokens = [tokens]  # one token given alone
    named = [single_token_id(adapter, t) for t in (tokens or [])]
    zs: dict[int, torch.Tensor] = {}

    def reader(layer: int) -> Any:
        def read(z: torch.Tensor) -> None:
            zs[layer] = z[0, p].detach().float().clone()  # [head, d_head]

        return read

    with adapter.inference():
        logits, norm = adapter.run_with_final_norm(ids[None].to(adapter.device), {i: reader(i) for i in range(adapter.n_layers)})
        row = logits[0, p].float()
        predicted = int(row.argmax())
        target_ids = [predicted] + named
        w_u = adapter.unembedding()
        cols = w_u[:, torch.tensor(target_ids, device=w_u.device)].float()  # [d_model, target]
        scale = norm.scale[0, p].float()
        values = []
        for layer in range(adapter.n_layers):
            _, w_o = adapter.head_weights(layer)
            z = zs[layer].to(w_o.device)
            out = torch.einsum("hd,hdm->hm", z, w_o.float())  # each head's write at p
            if norm.centred:
                out = out - out.mean(-1, keepdim=True)
            out = out / scale.to(out.device)
            if norm.weight is not None:
                out = out * norm.weight.to(out.device).float()
            values.append((out @ cols.to(out.device)).T.cpu())  # [target, head]
    stacked = torch.stack(values, dim=1).numpy().astype(np.float32)  # [target, layer, head]
    return DLAResult(
        position=p,
        token=token_strings(adapter, ids[p : p + 1])[0],
        targets=token_strings(adapter, target_ids),
        target_ids=target_ids,
        values=stacked,
        logits=row[torch.tensor(target_ids, device=row.device)].cpu().numpy().astype(np.float32),
        norm=describe(norm),
    )


def describe(norm: Any) -> str:
    if norm.kind == "none":
        return "none (the model has no final norm)"
    steps = ("centred, " if norm.centred else "") + "divided by its scale at the position (frozen)"
    return f"{norm.kind}: {steps}" + (", times its weight" if norm.weight is not None else "")
