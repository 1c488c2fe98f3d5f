"""What a head writes: its OV circuit read against the vocabulary, and a copying score.

Definitions (docs/ov.md; Elhage et al. 2021, "A Mathematical Framework for Transformer
Circuits"). For layer ``l``, head ``h`` and a source token ``t``, the full OV circuit's row is

    ``ov[t] = W_E[t] @ W_V[l, h] @ W_O[l, h] @ W_U``   (one logit per vocabulary token)

without LayerNorm, biases or positional embeddings: the logits the head's output would add if it
attended fully to ``t`` and nothing else touched the residual stream. It is computed as
vector-matrix products, ``((W_E[t] @ W_V) @ W_O) @ W_U``, never as the ``vocab × vocab`` matrix.

The copying score of a head is the share of source tokens ``t`` whose own logit ``ov[t][t]``
is among the ``COPY_TOP_K`` largest of ``ov[t]``: fewer than ``COPY_TOP_K`` tokens have a
larger logit. Over the whole
vocabulary when it has at most ``COPY_FULL_VOCAB`` tokens; otherwise over ``COPY_SAMPLE``
evenly spaced token ids (``linspace(0, vocab - 1)``), each still ranked against the whole
vocabulary: a full pass costs ``vocab² · d_head`` per head (GPT-2 Small: 144 × 0.16 TFLOP), the
sample ``COPY_SAMPLE / vocab`` of that. It depends on the weights only, not on a prompt.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any

import numpy as np
import torch

from ._adapters import ModelAdapter, WeightsUnavailableError, as_adapter
from ._adapters.base import single_token_id

#: A token counts as copied when its own logit is among this many of its OV row's largest.
COPY_TOP_K = 5
#: Vocabularies up to this size are scored over every token.
COPY_FULL_VOCAB = 4096
#: Larger vocabularies are scored over this many evenly spaced token ids.
COPY_SAMPLE = 256
#: Columns of ``W_U`` multiplied at once (bounds the float32 copy of a large unembedding).
_CHUNK = 32768

_COPYING_CACHE: "weakref.WeakKeyDictionary[Any, tuple[int, np.ndarray]]" = weakref.WeakKeyDictionary()


@dataclasses.dataclass(frozen=True)
class OVResult:
    """The tokens whose logits a head's output raises and lowers most when it attends fully to
    ``token``: ``raised`` and ``lowered`` are ``(token_string, logit)`` pairs, strongest first."""

    layer: int
    head: int
    token: str
    token_id: int
    raised: list[tuple[str, float]]
    lowered: list[tuple[str, float]]

    def __repr__(self) -> str:
        def items(pairs: list[tuple[str, float]]) -> str:
            return ", ".join(f"{s!r} {v:+.3f}" for s, v in pairs)

        return (
            f"OVResult(layer {self.layer}, head {self.head}, attending to {self.token!r} (id {self.token_id})\n"
            f"  raised:  {items(self.raised)}\n  lowered: {items(self.lowered)})"
        )


def token_strings(adapter: ModelAdapter, ids: Any) -> list[str]:
    """Display strings of token ids (a list or a tensor)."""
    return adapter.str_tokens(torch.as_tensor(ids, dtype=torch.long).reshape(-1))


def check_head(adapter: ModelAdapter, layer: Any, head: Any) -> tuple[int, int]:
    layer = adapter.check_layer(layer)
    if isinstance(head, bool) or not isinstance(head, (int, np.integer)):
        raise TypeError(f"head must be an int, got {type(head).__name__}")
    if not 0 <= int(head) < adapter.n_heads:
        raise ValueError(f"head {int(head)} is out of range: layer {layer} has heads 0-{adapter.n_heads - 1}")
    return layer, int(head)


def unembed(vectors: torch.Tensor, w_u: torch.Tensor) -> torch.Tensor:
    """``vectors [n, d_model] @ W_U`` in float32, ``W_U``'s columns a chunk at a time."""
    vectors = vectors.float()
    parts = [vectors @ w_u[:, i : i + _CHUNK].to(vectors.device).float() for i in range(0, w_u.shape[1], _CHUNK)]
    return torch.cat(parts, dim=-1)


def ov_row(adapter: ModelAdapter, layer: int, head: int, tid: int) -> torch.Tensor:
    """``W_E[t] @ W_V[l, h] @ W_O[l, h] @ W_U``: float32 ``[vocab]``."""
    w_v, w_o = adapter.head_weights(layer)
    w_e = adapter.embedding()
    x = w_e[tid].float()
    out = (x @ w_v[head].to(x.device).float()) @ w_o[head].to(x.device).float()
    return unembed(out[None], adapter.unembedding())[0]


def ov_top_tokens(
    model: Any, layer: int, head: int, token: Any, k: int = 10, *, tokenizer: Any = None
) -> OVResult:
    """See :func:`headscope.ov_top_tokens`."""
    adapter = as_adapter(model, tokenizer=tokenizer)
    reason = adapter.weights_unavailable()
    if reason:
        raise WeightsUnavailableError(reason)
    layer, head = check_head(adapter, layer, head)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    tid = single_token_id(adapter, token)
    with torch.no_grad():
        row = ov_row(adapter, layer, head, tid)
    k = min(int(k), row.shape[0])
    top, low = torch.topk(row, k), torch.topk(row, k, largest=False)

    def pairs(found: Any) -> list[tuple[str, float]]:
        ids = found.indices.tolist()
        return list(zip(token_strings(adapter, ids), (float(v) for v in found.values.tolist())))

    return OVResult(layer, head, token_strings(adapter, [tid])[0], tid, pairs(top), pairs(low))


def copy_sample(vocab: int) -> torch.Tensor:
    """The source tokens the copying score is taken over (module docstring)."""
    if vocab <= COPY_FULL_VOCAB:
        return torch.arange(vocab)
    return torch.from_numpy(np.unique(np.linspace(0, vocab - 1, COPY_SAMPLE).round().astype(np.int64)))


def copying_scores(model: Any, *, tokenizer: Any = None) -> np.ndarray:
    """Every head's copying score, float32 ``[layer, head]`` (module docstring). Cached per model
    until its parameters change (in-place updates bump their version counters)."""
    adapter = as_adapter(model, tokenizer=tokenizer)
    reason = adapter.weights_unavailable()
    if reason:
        raise WeightsUnavailableError(reason)
    module = adapter.module
    version = sum(int(getattr(p, "_version", 0)) for p in module.parameters()) if hasattr(module, "parameters") else 0
    try:
        cached = _COPYING_CACHE.get(module)
    except TypeError:  # not weak-referenceable
        cached = None
    if cached is not None and cached[0] == version:
        return cached[1].copy()
    with torch.no_grad():
        scores = _copying(adapter)
    try:
        _COPYING_CACHE[module] = (version, scores)
    except TypeError:
        pass
    return scores.copy()


def _copying(adapter: ModelAdapter) -> np.ndarray:
    """Vectorized over a layer's heads; ``W_U``'s columns a chunk at a time (the counts of
    larger logits add up over chunks), so no ``[head, sample, vocab]`` array is ever held."""
    w_e, w_u = adapter.embedding(), adapter.unembedding()
    vocab = min(int(w_e.shape[0]), int(w_u.shape[1]))
    sample = copy_sample(vocab).to(w_e.device)
    x = w_e[sample].float()  # [sample, d_model]
    own_cols = w_u[:, sample.to(w_u.device)].to(x.device).float()  # [d_model, sample]
    out = []
    for layer in range(adapter.n_layers):
        w_v, w_o = adapter.head_weights(layer)
        rows = torch.einsum("sm,hmd,hdn->hsn", x, w_v.to(x.device).float(), w_o.to(x.device).float())
        own = torch.einsum("hsn,ns->hs", rows, own_cols)  # each source token's own logit
        above = torch.zeros(own.shape, dtype=torch.long, device=x.device)
        step = max(1, _CHUNK // 8)
        for i in range(0, vocab, step):
            chunk = w_u[:, i : min(i + step, vocab)].to(x.device).float()
            logits = rows @ chunk  # [head, sample, chunk]
            mine = ((sample >= i) & (sample < i + chunk.shape[1])).nonzero()[:, 0]
            logits[:, mine, sample[mine] - i] = float("-inf")  # a token never outranks itself
            above += (logits > own[..., None]).sum(-1)
        out.append((above < COPY_TOP_K).float().mean(-1).cpu().numpy())
    return np.stack(out).astype(np.float32)
