"""The one record that every adapter produces: tokens plus attention, validated once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from jaxtyping import Float

#: Attention weights may exceed 1 by this much (float rounding in softmax) before we complain.
_TOLERANCE = 1e-3


@dataclass(frozen=True, eq=False)
class AttentionRun:
    """Tokens and the attention pattern of every head, as one validated record.

    ``layers[layer]`` is a float32 CPU tensor ``[head, query_pos, key_pos]``; :attr:`pattern`
    stacks them into ``[layer, head, query_pos, key_pos]``. Build one with
    :func:`make_run` (it validates); adapters in ``_adapters`` do so for models.
    """

    tokens: list[str]
    layers: tuple[torch.Tensor, ...]
    prompt: str = ""
    model_name: str = ""
    token_ids: torch.Tensor | None = field(default=None)

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def n_heads(self) -> int:
        return int(self.layers[0].shape[0])

    @property
    def seq_len(self) -> int:
        return len(self.tokens)

    @property
    def pattern(self) -> Float[np.ndarray, "layer head query_pos key_pos"]:
        """A stacked copy of every head's pattern, ``[layer, head, query_pos, key_pos]``."""
        return torch.stack(self.layers).numpy()

    def score_ids(self) -> np.ndarray:
        """Token ids for scores; precomputed runs compare token strings instead."""
        if self.token_ids is not None:
            return self.token_ids.numpy()
        return np.unique(np.asarray(self.tokens, dtype=object), return_inverse=True)[1]

    def head(self, layer: int, head: int) -> Float[np.ndarray, "query_pos key_pos"]:
        """One head's pattern ``[query_pos, key_pos]`` (a view, not a copy)."""
        check_head(layer, head, self.n_layers, self.n_heads)
        return self.layers[layer][head].numpy()


def check_head(layer: Any, head: Any, n_layers: int, n_heads: int) -> tuple[int, int]:
    """Validate a (layer, head) pair and return it as ints; errors name the valid range."""
    for name, value, size in (("layer", layer, n_layers), ("head", head, n_heads)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if not 0 <= int(value) < size:
            plural = "layers" if name == "layer" else "heads per layer"
            raise ValueError(
                f"{name} {int(value)} is out of range: the model has {size} {plural} (0-{size - 1})"
            )
    return int(layer), int(head)


def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
            raise TypeError(f"{what} must hold real numbers, got dtype {value.dtype}")
        return torch.from_numpy(np.ascontiguousarray(value))
    raise TypeError(f"{what} must be a numpy array or a torch tensor, got {type(value).__name__}")


def _to_layers(attention: Any) -> list[torch.Tensor]:
    """Bring every accepted input form to a list of ``[head, query_pos, key_pos]`` tensors."""
    expected = (
        "expected [layer, head, query_pos, key_pos], [head, query_pos, key_pos] or "
        "[query_pos, key_pos], or a list of per-layer [head, query_pos, key_pos] arrays"
    )
    if isinstance(attention, (list, tuple)):
        if not attention:
            raise ValueError(f"attention is an empty list; {expected}")
        layers = []
        for i, item in enumerate(attention):
            t = _as_tensor(item, f"attention[{i}]")
            if t.ndim == 4 and t.shape[0] == 1:  # a cache entry with its batch dimension
                t = t[0]
            if t.ndim != 3:
                raise ValueError(f"attention[{i}] has shape {tuple(t.shape)}; {expected}")
            layers.append(t)
        return layers
    t = _as_tensor(attention, "attention")
    if t.ndim == 2:
        return [t[None]]
    if t.ndim == 3:
        return [t]
    if t.ndim == 4:
        return list(t.unbind(0))
    raise ValueError(f"attention has shape {tuple(t.shape)}; {expected}")


def make_run(
    tokens: Sequence[str],
    attention: Any,
    *,
    prompt: str = "",
    model_name: str = "",
    token_ids: torch.Tensor | None = None,
) -> AttentionRun:
    """Validate tokens and attention and return an :class:`AttentionRun`.

    Raises ``TypeError`` or ``ValueError`` that name the problem and the expected shape.
    """
    if isinstance(tokens, str) or not isinstance(tokens, Sequence):
        raise TypeError(f"tokens must be a list of strings, got {type(tokens).__name__}")
    token_list = list(tokens)
    bad = [i for i, t in enumerate(token_list) if not isinstance(t, str)]
    if bad:
        raise TypeError(
            f"tokens must be strings; tokens[{bad[0]}] is {type(token_list[bad[0]]).__name__}"
        )
    if not token_list:
        raise ValueError("tokens is empty: there is nothing to show")
    n = len(token_list)

    layers = _to_layers(attention)
    n_heads = int(layers[0].shape[0])
    for i, layer in enumerate(layers):
        if tuple(layer.shape[1:]) != (n, n):
            raise ValueError(
                f"attention for layer {i} has shape {tuple(layer.shape)}, but there are {n} tokens: "
                f"expected [head, query_pos, key_pos] = [{n_heads}, {n}, {n}]"
            )
        if layer.shape[0] != n_heads:
            raise ValueError(
                f"layer {i} has {layer.shape[0]} heads but layer 0 has {n_heads}: "
                "every layer needs the same number of heads"
            )
    if n_heads == 0:
        raise ValueError("attention has 0 heads")

    out: list[torch.Tensor] = []
    for i, layer in enumerate(layers):
        layer = layer.to(device="cpu", dtype=torch.float32).contiguous()
        low_t, high_t = torch.aminmax(layer)  # one pass; NaN and inf show up here too
        low, high = float(low_t), float(high_t)
        if not (np.isfinite(low) and np.isfinite(high)):
            bad = ~torch.isfinite(layer)
            h, q, k = (int(x) for x in bad.nonzero()[0])
            raise ValueError(
                f"attention has {int(bad.sum())} NaN or infinite values; the first is at "
                f"layer {i}, head {h}, query_pos {q}, key_pos {k}"
            )
        if low < -_TOLERANCE or high > 1 + _TOLERANCE:
            raise ValueError(
                f"attention weights must lie in [0, 1]; layer {i} spans [{low:.4g}, {high:.4g}]. "
                "Pass softmax outputs (hook_pattern), not scores"
            )
        if low < 0 or high > 1:  # float rounding only; never write into the caller's array
            layer = layer.clamp(0.0, 1.0)
        out.append(layer)

    return AttentionRun(
        tokens=token_list,
        layers=tuple(out),
        prompt=prompt,
        model_name=model_name,
        token_ids=token_ids,
    )
