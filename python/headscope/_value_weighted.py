"""Value-weighted attention (Kobayashi et al. 2020; DESIGN.md §7.5), computed on demand.

A weight ``α[h, q, k]`` says how much query ``q`` looks at key ``k``; what head ``h`` then
writes into the residual stream from ``k`` is ``α[h, q, k] · v[k, h] @ W_O[h]``. Its norm,

    ‖α[h, q, k] · v[k, h] W_O[h]‖ = α[h, q, k] · ‖v[k, h] W_O[h]‖,

weights each key by how much it actually contributes. ``v[k, h]`` is the value vector the model
computes (the value bias included where the model has one); the output bias ``b_O`` is left
out (it is added once per layer, not per key). For display every row is renormalized to sum to
1: the value-weighted share ``α[h, q, k] n[h, k] / Σ_j α[h, q, j] n[h, j]`` with
``n[h, k] = ‖v[k, h] W_O[h]‖``.

The norms are ``[layer, head, key_pos]`` float32: ``O(layers · heads · tokens)``. They need one
forward pass that reads each layer's value vectors (``ModelAdapter.capture_values``), and
``‖v W_O[h]‖² = v G_h vᵀ`` with ``G_h = W_O[h] W_O[h]ᵀ`` (``d_head × d_head``), so nothing of
size ``[pos, head, d_model]`` is ever built. The value-weighted atlas thumbnails need the
patterns once more: a second pass whose pattern callback weights each layer, renormalizes its
rows and max-pools them, block by block of query rows. Neither pass runs unless asked (the
widget's toggle, :meth:`headscope.AttentionRun.value_norms`); both are cached on the run.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
from jaxtyping import Float, UInt8

from ._adapters.base import ModelAdapter, WeightsUnavailableError
from ._capture import BLOCK_ELEMENTS, BlockPool, _thumbnails


def value_weight(
    pattern: Float[torch.Tensor, "*head query_pos key_pos"], norms: Float[torch.Tensor, "*head key_pos"]
) -> Float[torch.Tensor, "*head query_pos key_pos"]:
    """``pattern · norms[key]``, each row renormalized to sum to 1 (a row of zeros stays 0)."""
    weighted = pattern.float() * norms.float().unsqueeze(-2)
    total = weighted.sum(-1, keepdim=True)
    return weighted / torch.where(total > 0, total, torch.ones_like(total))


def head_norms(values: Float[torch.Tensor, "pos head d_head"], w_o: Float[torch.Tensor, "head d_head d_model"]) -> Float[torch.Tensor, "head pos"]:
    """``‖values[p, h] @ w_o[h]‖`` for every head and position, as ``sqrt(v G vᵀ)``."""
    w = w_o.to(device=values.device, dtype=torch.float32)
    gram = w @ w.transpose(1, 2)  # [head, d_head, d_head]
    v = values.float()
    squared = torch.einsum("phd,hde,phe->hp", v, gram, v)
    return squared.clamp_min(0).sqrt()


def compute_value_norms(adapter: ModelAdapter, token_ids: torch.Tensor) -> Float[np.ndarray, "layer head key_pos"]:
    """Every head's value norms ``[layer, head, key_pos]`` float32 for ``token_ids`` ``[pos]``:
    one forward pass through :meth:`ModelAdapter.capture_values`."""
    reason = adapter.weights_unavailable()
    if reason:
        raise WeightsUnavailableError(reason)
    layers = list(range(adapter.n_layers))

    def on_values(layer: int, values: torch.Tensor) -> torch.Tensor:
        _, w_o = adapter.head_weights(layer)
        return head_norms(values[0].detach(), w_o.detach()).cpu()

    with adapter.inference():
        out = adapter.capture_values(token_ids.reshape(1, -1).to(adapter.device), layers, on_values)
    missing = [layer for layer in layers if layer not in out]
    if missing:
        raise TypeError(f"{adapter.name} produced no value vectors for layer {missing[0]}")
    return np.stack([out[layer].numpy() for layer in layers]).astype(np.float32)


def weighted_thumbnails(pattern: torch.Tensor, norms: torch.Tensor, size: int) -> UInt8[np.ndarray, "head T T"]:
    """The atlas thumbnails (as ``_capture._thumbnails``: the largest weight of each bin times
    255, rounded) of the value-weighted pattern, built in blocks of query rows: max-pooling is
    separable, so each block is pooled over keys, then the ``[head, query_pos, T]`` maxima over
    queries. Never holds a weighted copy of the whole layer."""
    n_heads, n, _ = (int(s) for s in pattern.shape)
    norms = norms.to(pattern.device, torch.float32)
    if size == n:
        return _thumbnails(value_weight(pattern, norms), size)
    step = max(1, min(128, BLOCK_ELEMENTS // max(1, n_heads * n)))
    pool = BlockPool(n_heads, n, size, step, pattern.device)
    for a in range(0, n, step):
        pool.add(value_weight(pattern[:, a : a + step], norms), a, n)
    return pool.finish()


def compute_value_weighted_thumbs(
    adapter: ModelAdapter, token_ids: torch.Tensor, norms: np.ndarray, size: int
) -> UInt8[np.ndarray, "layer head T T"]:
    """Value-weighted thumbnails ``[layer, head, T, T]``: one forward pass through the adapter's
    pattern capture, each layer weighted by its ``norms`` and pooled where it is produced."""
    layers = list(range(adapter.n_layers))
    weights = torch.from_numpy(norms)

    def on_pattern(layer: int, pattern: torch.Tensor) -> np.ndarray:
        return weighted_thumbnails(pattern[0].detach(), weights[layer], size)

    with adapter.inference():
        _, out = adapter.capture(token_ids.reshape(1, -1).to(adapter.device), layers, on_pattern, stop_after=layers[-1])
    return np.stack([out[layer] for layer in layers])


class ValueWeighting:
    """What a run from a model needs to compute its value weighting later, and the cache."""

    def __init__(self, adapter: ModelAdapter, token_ids: torch.Tensor, thumb_size: int) -> None:
        self.adapter = adapter
        self.token_ids = token_ids
        self.thumb_size = thumb_size
        self._norms: np.ndarray | None = None
        self._thumbs: np.ndarray | None = None
        self._lock = threading.Lock()

    def unavailable(self) -> str | None:
        """Why the value weighting cannot be computed, or ``None``."""
        return self.adapter.weights_unavailable()

    def norms(self) -> np.ndarray:
        with self._lock:
            if self._norms is None:
                self._norms = compute_value_norms(self.adapter, self.token_ids)
            return self._norms

    def thumbs(self) -> np.ndarray:
        norms = self.norms()
        with self._lock:
            if self._thumbs is None:
                self._thumbs = compute_value_weighted_thumbs(self.adapter, self.token_ids, norms, self.thumb_size)
            return self._thumbs

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in (self._norms, self._thumbs) if a is not None)


#: Why a run of precomputed attention has no value weighting.
NO_MODEL = "precomputed attention has no model to read value vectors from; use headscope.show(model, prompt)"
