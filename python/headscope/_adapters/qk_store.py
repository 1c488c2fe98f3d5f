"""What a run keeps to compute one head's pattern again, exactly, instead of its quantized bytes.

A TransformerLens model with absolute positions (GPT-2's kind) computes a head as
``softmax(q kᵀ / sqrt(d_head) + causal mask)`` from ``q = x W_Q[h] + b_Q[h]`` and ``k = x W_K[h]
+ b_K[h]``, where ``x`` is the attention's input (``blocks.{layer}.attn.hook_in``). Keeping ``x``
(``n * d_model`` floats a layer, for every head at once) is far smaller than the layer's
quantized heads (``n_heads * n * (n + 1) / 2`` bytes) once ``n`` passes ``8 * d_head``, and a
head is computed from it in a few matrix products. Where the model has no such input hook or
weights, the store keeps each layer's ``hook_q`` and ``hook_k`` instead (twice the bytes).

The store is used only when the run's own check passes: in layer 0's pattern hook (before that
layer is reduced, so that it too can go without its quantized heads), the rows
recomputed from the store (the first and last 32 query rows of every head) must equal
``hook_pattern`` within :data:`QK_TOLERANCE`. It fails where what the store holds is not what the
softmax sees: rotary models (TransformerLens 4.3's bridge does not fire ``hook_rot_q``),
softcapping, sliding windows, ALiBi. The run then keeps quantized heads, or runs the model again.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from jaxtyping import Float

#: Largest difference from ``hook_pattern`` allowed for heads computed again from the store.
QK_TOLERANCE = 1e-6
#: Query rows computed at once when a head is compacted (a few MB of scores at any length).
ROWS_PER_BLOCK = 256


class QKStore:
    """Each chosen layer's attention input (or Q and K), to compute a head again exactly."""

    def __init__(self, model: Any, n_layers: int, n_heads: int, causal: bool) -> None:
        hooks = getattr(model, "hook_dict", None) or {}
        self.model = model
        self.n_heads = n_heads
        self.causal = causal
        self.inputs = all(f"blocks.{i}.attn.hook_in" in hooks for i in range(n_layers)) and _per_head_qk(
            model, n_heads
        )
        self.available = self.inputs or all(
            f"blocks.{i}.attn.hook_{x}" in hooks for i in range(n_layers) for x in "qk"
        )
        self.layers: set[int] = set()
        self.store: dict[tuple[int, str], torch.Tensor] = {}
        self.exact = False
        self._weights: dict[int, tuple[torch.Tensor, ...]] = {}

    def layer_nbytes(self, n: int, d_model: int, d_head: int) -> int:
        """Bytes the store holds for one layer of ``n`` tokens (float32)."""
        return 4 * n * (d_model if self.inputs else 2 * self.n_heads * d_head)

    def hooks(self) -> list[tuple[str, Callable[..., Any]]]:
        def keeper(layer: int, which: str) -> Callable[..., None]:
            def keep(tensor: torch.Tensor, hook: Any) -> None:  # (hook.name may be an alias's)
                t = tensor.detach()
                t = t[0] if t.ndim == (3 if which == "x" else 4) else t  # [pos, d_model] / [pos, head, d_head]
                self.store[(layer, which)] = t.clone(memory_format=torch.contiguous_format)

            return keep

        if self.inputs:
            return [(f"blocks.{i}.attn.hook_in", keeper(i, "x")) for i in sorted(self.layers)]
        return [(f"blocks.{i}.attn.hook_{x}", keeper(i, x)) for i in sorted(self.layers) for x in "qk"]

    def _qk(self, layer: int, heads: slice, rows: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """``q [rows, head, d_head]`` and ``k [pos, head, d_head]``, float32, of ``heads``."""
        if not self.inputs:
            q = self.store[(layer, "q")][rows, heads].float()
            k = self.store[(layer, "k")].float()
            n_heads_q = self.store[(layer, "q")].shape[1]
            if k.shape[1] != n_heads_q:  # grouped-query attention: each K head serves a group
                k = k.repeat_interleave(n_heads_q // k.shape[1], dim=1)
            return q, k[:, heads]
        x = self.store[(layer, "x")].float()
        w_q, b_q, w_k, b_k = self._layer_weights(layer)
        q = torch.einsum("pm,hmd->phd", x[rows], w_q[heads]) + b_q[heads]
        k = torch.einsum("pm,hmd->phd", x, w_k[heads]) + b_k[heads]
        return q, k

    def _layer_weights(self, layer: int) -> tuple[torch.Tensor, ...]:
        if layer not in self._weights:
            attn = self.model.blocks[layer].attn
            self._weights[layer] = tuple(getattr(attn, w).detach().float() for w in ("W_Q", "b_Q", "W_K", "b_K"))
        return self._weights[layer]

    def _rows(
        self, layer: int, heads: slice, rows: slice, qk: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> Float[torch.Tensor, "head rows key_pos"]:
        """Rows ``rows`` of heads ``heads`` of ``layer``, float32 ``[head, rows, key_pos]``; a
        causal layer's keys stop at the block's last row (the weights right of it are 0).
        ``qk``: the heads' whole ``q`` and ``k``, when the caller computed them once."""
        start = rows.start or 0
        if qk is None:
            q, k = self._qk(layer, heads, rows)
        else:
            q, k = qk[0][rows], qk[1]
        if self.causal:
            k = k[: start + q.shape[0]]
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(q.shape[-1])
        if self.causal:  # only the block's own square has keys right of a query
            r = q.shape[0]
            above = torch.ones((r, r), dtype=torch.bool, device=scores.device).triu_(1)
            scores[..., start : start + r].masked_fill_(above, float("-inf"))
        return scores.softmax(-1)

    def check(self, layer: int, pattern: torch.Tensor) -> None:
        if layer != 0 or not any(key[0] == 0 for key in self.store):
            return
        n = int(pattern.shape[-1])
        worst = 0.0
        for rows in (slice(0, min(32, n)), slice(max(0, n - 32), n)):
            recomputed = self._rows(0, slice(None), rows)
            expected = pattern[:, rows, : recomputed.shape[-1]].float()
            worst = max(worst, float((recomputed - expected).abs().max()))
            if self.causal and recomputed.shape[-1] < n:  # nothing right of the rows
                worst = max(worst, float(pattern[:, rows, recomputed.shape[-1] :].float().abs().max()))
        self.exact = worst <= QK_TOLERANCE

    def drop(self, keep: set[int]) -> None:
        self.store = {key: t for key, t in self.store.items() if key[0] in keep}
        self._weights.clear()

    @property
    def nbytes(self) -> int:
        return sum(int(t.nbytes) for t in self.store.values())

    def pattern(self, layer: int, head: int) -> Float[torch.Tensor, "1 query_pos key_pos"]:
        """Head ``head`` of ``layer``, ``[1, query_pos, key_pos]``, as the model computes it."""
        n = int(next(t for key, t in self.store.items() if key[0] == layer).shape[0])
        out = torch.zeros((1, n, n), dtype=torch.float32)
        qk = self._qk(layer, slice(head, head + 1), slice(None))
        for a in range(0, n, ROWS_PER_BLOCK):
            b = min(n, a + ROWS_PER_BLOCK)
            block = self._rows(layer, slice(head, head + 1), slice(a, b), qk)
            out[:, a:b, : block.shape[-1]] = block
        return out

    def compact(self, layer: int, heads: slice | int) -> Any:
        """Heads ``heads`` of ``layer`` in the wire's compact form (``_capture.CompactLayer``),
        computed block by block of query rows: no ``[query_pos, key_pos]`` float tensor whole."""
        from .._capture import CompactLayer, pack_rows, tril_size

        if isinstance(heads, int):
            heads = slice(heads, heads + 1)
        n = int(next(t for key, t in self.store.items() if key[0] == layer).shape[0])
        count = len(range(*heads.indices(self.n_heads)))
        scales = torch.empty((count, n), dtype=torch.float32)
        values = torch.empty((count, tril_size(n) if self.causal else n * n), dtype=torch.uint8)
        qk = self._qk(layer, heads, slice(None))
        for a in range(0, n, ROWS_PER_BLOCK):
            b = min(n, a + ROWS_PER_BLOCK)
            block = self._rows(layer, heads, slice(a, b), qk).cpu()
            high = block.amax(-1)
            scales[:, a:b] = high
            pack_rows(values, block, high, a, b, self.causal)
        return CompactLayer("tril" if self.causal else "full", scales, values)


def _per_head_qk(model: Any, n_heads: int) -> bool:
    """Whether layer 0 exposes ``W_Q``/``W_K`` ``[head, d_model, d_head]`` and ``b_Q``/``b_K``
    ``[head, d_head]``, one per query head (grouped-query models keep Q and K instead)."""
    blocks = getattr(model, "blocks", None)
    try:
        attn = blocks[0].attn  # type: ignore[index]
        shapes = [tuple(getattr(attn, w).shape) for w in ("W_Q", "W_K", "b_Q", "b_K")]
    except Exception:  # no blocks, no such properties: the hooks then
        return False
    return (
        len(shapes[0]) == 3
        and shapes[0] == shapes[1]
        and shapes[0][0] == n_heads
        and shapes[2] == shapes[3] == (n_heads, shapes[0][2])
    )
