"""Per-layer streaming reduction of attention patterns (DESIGN.md §7.3).

A layer's float pattern ``[head, query_pos, key_pos]`` is reduced as soon as it is produced
(inside the pattern hook, on the model's own device) and then dropped. What stays:

* the atlas thumbnails, uint8 ``[head, T, T]`` (max-pooled, as :func:`headscope._wire.encode_atlas`
  always computed them);
* every built-in head score, computed exactly from the float pattern (both conventions);
* the compact head form the wire sends: float32 row maxima ``[head, query_pos]`` plus uint8
  fractions of them, lower triangle only for a causal layer (``"tril"``), so a head request is
  served by slicing bytes. A decoded weight is off by at most ``row max / 510``.

The validation of :func:`headscope._run.make_run` (finite, in [0, 1], rows summing to 1, nothing
above the diagonal of a causal model) runs here too, on the same blocks, without a float copy of
the layer. Work goes in blocks of query rows, vectorized over every head of the layer, so the
transient memory is a few tens of MB at any length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, UInt8

#: Largest side of an atlas thumbnail.
MAX_THUMB = 64
#: Bytes the whole atlas may take: ``n_layers * n_heads * T * T`` stays under this, so the
#: first paint of a model with many heads stays small (T = 64 up to 366 heads).
ATLAS_BUDGET = 1_500_000
#: Float elements a block of query rows may hold (all heads of a layer together): 32 MB.
BLOCK_ELEMENTS = 8 * 1024 * 1024
#: Index pairs gathered at once for the token-dependent scores.
GATHER_ELEMENTS = 4 * 1024 * 1024

#: Scores under headscope's own convention (``_scores.head_scores``), in this order.
ROW_SCORES = ("previous_token", "induction", "duplicate_token", "bos_sink", "entropy")
#: TransformerLens ``detect_head(..., error_measure="mul")`` scores (``_scores.detect_head_scores``).
DETECT_SCORES = ("previous_token", "induction", "duplicate_token")


def thumb_size(seq_len: int, n_heads_total: int = 1) -> int:
    """Side ``T`` of every thumbnail: ``min(seq_len, 64)``, smaller when the model has so many
    heads (``n_layers * n_heads``) that ``n_heads_total * T * T`` would pass 1.5 MB."""
    fit = int(math.isqrt(ATLAS_BUDGET // max(1, n_heads_total)))
    return max(1, min(seq_len, MAX_THUMB, fit))


def tril_size(n: int) -> int:
    """Bytes of one head's lower triangle (``n * (n + 1) / 2``)."""
    return n * (n + 1) // 2


def layer_nbytes(n_heads: int, n: int, packing: str = "tril") -> int:
    """Bytes of one layer's compact form: uint8 values plus float32 row maxima, every head."""
    values = tril_size(n) if packing == "tril" else n * n
    return n_heads * (values + 4 * n)


@dataclass(frozen=True, eq=False)
class CompactLayer:
    """One layer's heads in the wire's quantized form (docs/wire.md, ``head`` message).

    ``scales[h, q]`` is the largest weight of row ``q``; ``values[h]`` holds
    ``round(255 * weight / scales[h, q])`` row by row, the lower triangle only when ``packing``
    is ``"tril"`` (``n * (n + 1) / 2`` bytes), every row whole when ``"full"``.
    """

    packing: str
    scales: Float[torch.Tensor, "head query_pos"]
    values: UInt8[torch.Tensor, "head packed"]

    @property
    def nbytes(self) -> int:
        return int(self.scales.nbytes + self.values.nbytes)

    def encode(self, head: int) -> tuple[str, bytes, bytes]:
        """``(packing, scales, values)`` of one head, as :func:`headscope._wire.encode_head`."""
        return self.packing, self.scales[head].numpy().astype("<f4").tobytes(), self.values[head].numpy().tobytes()

    def dequantize(self, heads: slice | int = slice(None)) -> Float[torch.Tensor, "*head query_pos key_pos"]:
        """Float32 weights of ``heads`` (an index or a slice), ``[.., query_pos, key_pos]``.

        Every weight is within ``scales[h, q] / 510`` of the captured one; above the diagonal of
        a ``"tril"`` layer it is 0.
        """
        scales = self.scales[heads]
        values = self.values[heads]
        n = int(scales.shape[-1])
        if self.packing == "tril":
            out = torch.zeros((*values.shape[:-1], n, n), dtype=torch.float32)
            rows, cols = torch.tril_indices(n, n)
            out[..., rows, cols] = values.float()
        else:
            out = values.float().reshape(*values.shape[:-1], n, n)
        return out.mul_((scales / 255.0).unsqueeze(-1))


@dataclass(frozen=True, eq=False)
class ReducedLayer:
    """What a layer leaves behind: thumbnails, scores, and (within the budget) its compact form."""

    thumbs: UInt8[np.ndarray, "head T T"]
    scores: dict[str, np.ndarray]  # ROW_SCORES, float32 [head]
    detect: dict[str, np.ndarray]  # DETECT_SCORES, float32 [head]
    causal_heads: np.ndarray  # bool [head]: no weight above the diagonal at all
    compact: CompactLayer | None


class ValidationFailed(Exception):
    """Internal: a block failed a check; the layer is checked again in full for the message."""


class Reducer:
    """Reduces one run's layers, one at a time, with what all layers share precomputed: the
    token-dependent score targets, the thumbnail size and the validation rules."""

    def __init__(
        self,
        token_ids: Any,
        n_heads_total: int,
        *,
        causal: bool = True,
        partial_rows: bool = False,
    ) -> None:
        from ._scores import _tokens_np, duplicate_token_targets, induction_targets

        ids = _tokens_np(token_ids)
        self.n = n = len(ids)
        self.causal = causal
        self.partial_rows = partial_rows
        self.thumb = thumb_size(n, n_heads_total)
        # token-dependent targets as (query, key) index pairs, in row order
        self._targets: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._valid: dict[str, np.ndarray] = {}
        for name, mask in (("induction", induction_targets(ids)), ("duplicate_token", duplicate_token_targets(ids))):
            q, k = np.nonzero(mask)
            self._targets[name] = (q, k)
            self._valid[name] = mask.any(-1)
        # detect_head's induction also targets the query itself after a repeated token ("aa")
        self._self_rows = np.nonzero(np.concatenate([[False], ids[1:] == ids[:-1]]))[0] if n >= 2 else np.zeros(0, np.int64)

    def reduce(self, index: int, pattern: torch.Tensor, *, keep: bool = True) -> ReducedLayer:
        """Validate and reduce one layer ``[head, query_pos, key_pos]`` (any float dtype, any
        device); ``keep=False`` leaves out the compact form (a layer over the memory budget)."""
        from ._run import _tolerance, reference_checks

        if pattern.ndim == 4 and pattern.shape[0] == 1:
            pattern = pattern[0]
        pattern = pattern.detach()
        tolerance = _tolerance(pattern.dtype)
        try:
            return self._reduce(pattern, tolerance, keep)
        except ValidationFailed:
            layer = pattern.to(device="cpu", dtype=torch.float32)
            reference_checks(layer, index, tolerance, causal=self.causal, partial_rows=self.partial_rows)
            raise ValueError(f"attention of layer {index} failed validation") from None

    def _reduce(self, p: torch.Tensor, tolerance: float, keep: bool) -> ReducedLayer:
        n_heads, n, n2 = (int(s) for s in p.shape)
        if n != self.n or n2 != n:
            raise ValueError(f"attention has shape {tuple(p.shape)}; expected [head, {self.n}, {self.n}]")
        device = p.device
        step = max(1, BLOCK_ELEMENTS // max(1, n_heads * n))
        # per-row quantities, filled block by block; all O(head * query_pos)
        scales = torch.empty((n_heads, n), dtype=torch.float32, device=device)
        entropy = torch.empty((n_heads, n), dtype=torch.float32, device=device)
        sums = torch.empty((n_heads, n), dtype=torch.float32, device=device)
        above = torch.zeros(n_heads, dtype=torch.float32, device=device)  # largest weight above the diagonal
        prev = torch.zeros(n_heads, dtype=torch.float64, device=device)
        bos = torch.zeros(n_heads, dtype=torch.float64, device=device)
        self_mass = torch.zeros(n_heads, dtype=torch.float64, device=device)
        masses = {name: torch.zeros((n_heads, n), dtype=torch.float32, device=device) for name in self._targets}
        self_rows = torch.as_tensor(self._self_rows, device=device)
        chunks: list[torch.Tensor] = []
        tril = self.causal  # decided before the data for a causal model; else after the check
        bad = False
        blocks: list[tuple[int, int]] = [(a, min(a + step, n)) for a in range(0, n, step)]
        for a, b in blocks:
            block = p[:, a:b, :]
            if block.dtype != torch.float32:
                block = block.float()
            low, high = torch.aminmax(block, dim=-1)  # [head, rows]; NaN shows up here
            lo, hi = float(low.min()), float(high.max())
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -tolerance or hi > 1 + tolerance:
                raise ValidationFailed
            if lo < 0 or hi > 1:  # float rounding only; never written into the caller's tensor
                block = block.clamp(0.0, 1.0)
                high = high.clamp(0.0, 1.0)
            row_sums = block.sum(-1)
            sums[:, a:b] = row_sums
            # weight above the diagonal: right of the block's square (a view), then its own square
            if b < n:
                above = torch.maximum(above, block[:, :, b:].amax(dim=(1, 2)))
            if b - a > 1:
                above = torch.maximum(above, block[:, :, a:b].triu(1).amax(dim=(1, 2)))
            scales[:, a:b] = high
            # scores: previous token (rows q >= 1, key q - 1), BOS sink (key 0), detect_head's self
            # target, all from the float weights
            if n >= 2:
                prev += torch.diagonal(block, offset=a - 1, dim1=1, dim2=2).sum(-1, dtype=torch.float64)
                bos += block[:, max(a, 1) - a :, 0].sum(-1, dtype=torch.float64)
                rows = self_rows[(self_rows >= a) & (self_rows < b)]
                if rows.numel():
                    self_mass += block[:, rows - a, rows].sum(-1, dtype=torch.float64)
            cols = b if self.causal else n  # a causal row has nothing beyond its own position
            visible = block[:, :, :cols]
            normed = visible / row_sums.clamp_min(1e-30).unsqueeze(-1)
            entropy[:, a:b] = torch.special.entr(normed).sum(-1)
            del normed
            for name, (qs, ks) in self._targets.items():
                lo_i, hi_i = np.searchsorted(qs, [a, b])
                per = max(1, GATHER_ELEMENTS // max(1, n_heads))
                for s in range(lo_i, hi_i, per):
                    e = min(s + per, hi_i)
                    q = torch.as_tensor(qs[s:e], device=device)
                    k = torch.as_tensor(ks[s:e], device=device)
                    masses[name].index_add_(1, q, block[:, q - a, k])
            if keep:
                inv = 255.0 / torch.where(high > 0, high, torch.ones_like(high))
                quant = torch.mul(visible, inv.unsqueeze(-1)).round_().to(torch.uint8)
                if self.causal:
                    rows_i = torch.arange(a, b, device=device)[:, None]
                    mask = torch.arange(cols, device=device)[None, :] <= rows_i
                    chunks.append(quant[:, mask])
                else:
                    chunks.append(quant.reshape(n_heads, -1))
                del quant
            del block, visible
        # validation over the whole layer
        total_bad = (sums > 1 + tolerance) if self.partial_rows else (sums - 1).abs() > tolerance
        if bool(total_bad.any()):
            bad = True
        if self.causal and float(above.max()) > _causal_tolerance():
            bad = True
        if bad:
            raise ValidationFailed
        causal_heads = above <= 0
        compact = None
        if keep:
            values = torch.cat(chunks, dim=1) if len(chunks) > 1 else chunks[0]
            if not self.causal and bool(causal_heads.all()):
                tril = True  # a bidirectional model whose heads happen to be causal: half the bytes
                rows_t, cols_t = torch.tril_indices(n, n, device=device)
                values = values.reshape(n_heads, n, n)[:, rows_t, cols_t]
            compact = CompactLayer("tril" if tril else "full", scales.cpu(), values.cpu().contiguous())
        # finish the scores (same conventions as _scores.head_scores / detect_head_scores)
        nan = torch.full((n_heads,), float("nan"), dtype=torch.float32)
        scores: dict[str, torch.Tensor] = {}
        detect: dict[str, torch.Tensor] = {}
        total = sums.sum(-1, dtype=torch.float64)
        if n >= 2:
            scores["previous_token"] = (prev / (n - 1)).float().cpu()
            detect["previous_token"] = (prev / total).float().cpu()
        else:
            scores["previous_token"] = nan
            detect["previous_token"] = (prev / total).float().cpu()
        for name in ("induction", "duplicate_token"):
            valid = torch.as_tensor(self._valid[name], device=device)
            mass = masses[name]
            scores[name] = mass[:, valid].mean(-1).cpu() if bool(valid.any()) else nan
            summed = mass.sum(-1, dtype=torch.float64)
            if name == "induction":
                summed = summed + self_mass
            detect[name] = (summed / total).float().cpu()
        scores["bos_sink"] = (bos / (n - 1)).float().cpu() if n >= 2 else nan
        if n >= 2:
            ks = torch.arange(2, n + 1, device=device, dtype=torch.float32)
            visible_keys = torch.where(causal_heads[:, None], ks[None, :], torch.tensor(float(n), device=device))
            scores["entropy"] = (entropy[:, 1:] / visible_keys.log()).mean(-1).cpu()
        else:
            scores["entropy"] = nan
        thumbs = _thumbnails(p, self.thumb)
        return ReducedLayer(
            thumbs=thumbs,
            scores={k: scores[k].numpy().astype(np.float32) for k in ROW_SCORES},
            detect={k: detect[k].numpy().astype(np.float32) for k in DETECT_SCORES},
            causal_heads=causal_heads.cpu().numpy(),
            compact=compact,
        )


def _causal_tolerance() -> float:
    from ._run import _CAUSAL_TOLERANCE

    return _CAUSAL_TOLERANCE


def _thumbnails(pattern: torch.Tensor, size: int) -> np.ndarray:
    """``[head, T, T]`` uint8: the largest weight of each bin times 255, rounded."""
    n = int(pattern.shape[-1])
    p = pattern if pattern.dtype == torch.float32 else pattern.float()
    pooled = p if size == n else F.adaptive_max_pool2d(p, size)
    return (pooled.clamp(0.0, 1.0) * 255.0).round_().to(torch.uint8).cpu().numpy()
