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
#: Float elements a block of query rows may hold (all heads of a layer together): 8 MB.
#: Small blocks waste little on a causal block's upper corner and stay in cache.
BLOCK_ELEMENTS = 2 * 1024 * 1024

#: Rows a block may hold: the token scores compare each block's rows with its own keys (its
#: square, ``rows * rows``), so a layer of few heads does not get squares of thousands of rows.
MAX_BLOCK_ROWS = 128

#: The token scores gather their targets pair by pair (query, key) when a prompt has at most
#: this many pairs of equal tokens per token (natural text has a few); more repetition (a
#: sequence repeated many times) groups the keys by token instead.
PAIRS_PER_TOKEN = 32

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
        from ._scores import _tokens_np

        ids = _tokens_np(token_ids)
        self.n = n = len(ids)
        self.causal = causal
        self.partial_rows = partial_rows
        self.thumb = thumb_size(n, n_heads_total)
        # The token-dependent scores group keys by token: the mass a row puts on the keys that
        # hold token t (duplicate-token) or follow token t (induction) is one index_add over the
        # keys, whatever the number of targets. ``group[k]`` is key k's token as an index into the
        # prompt's distinct tokens; ``follows[k]`` that of key k - 1 (key 0 follows nothing:
        # the extra group ``n_groups``, never read).
        _, group = np.unique(ids, return_inverse=True)
        group = group.reshape(-1).astype(np.int64)
        self.n_groups = int(group.max()) + 1 if n else 0
        self._group = torch.as_tensor(group)
        self._follows = torch.as_tensor(np.concatenate([[self.n_groups], group[:-1]])[:n].astype(np.int64))
        first = np.full(self.n_groups, n, dtype=np.int64)
        np.minimum.at(first, group, np.arange(n))
        pos = np.arange(n)
        # rows with a target: the token occurred before (duplicate), or at least two before (induction)
        self._valid = {"duplicate_token": first[group] < pos, "induction": first[group] <= pos - 2}
        # detect_head's induction also targets the query itself after a repeated token ("aa")
        self._self_rows = np.nonzero(np.concatenate([[False], ids[1:] == ids[:-1]]))[0] if n >= 2 else np.zeros(0, np.int64)
        self._pairs = _target_pairs(group, PAIRS_PER_TOKEN * max(1, n))
        self._ids = torch.as_tensor(ids.astype(np.int64))

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

    def _target_masses(self, block: torch.Tensor, a: int, b: int, masses: dict[str, torch.Tensor]) -> None:
        """Add rows ``a:b``'s mass on their duplicate-token and induction targets to ``masses``.

        Keys before the block (``k < a <= q``) go through one grouped sum per score; keys inside
        the block's own square (``a <= k < q``) are gathered pair by pair (at most ``r * r / 2``).
        """
        n_heads, r, _ = block.shape
        device = block.device
        if self._pairs is not None:
            for name, (starts, queries, keys) in self._pairs.items():
                lo, hi = int(starts[a]), int(starts[b])
                if hi > lo:
                    q = queries[lo:hi].to(device) - a
                    masses[name][:, a:b].index_add_(1, q, block[:, q, keys[lo:hi].to(device)])
            return
        group = self._group.to(device)
        rows = group[a:b].expand(n_heads, r).unsqueeze(-1)  # [head, rows, 1]: each row's token
        for name, keys in (("duplicate_token", group), ("induction", self._follows.to(device))):
            if a > 0:
                grouped = block.new_zeros((n_heads, r, self.n_groups + 1))
                grouped.index_add_(2, keys[:a], block[:, :, :a])  # one pass, any number of tokens
                masses[name][:, a:b] += grouped.gather(2, rows)[..., 0]
            # inside the square: key k in [a, q) (induction: k >= 1) whose group matches the row's
            same = (keys[a:b][None, :] == group[a:b][:, None]).tril(-1)  # [rows, keys a:b]
            if name == "induction" and a == 0:
                same[:, 0] = False
            qq, kk = same.nonzero(as_tuple=True)
            if qq.numel():
                masses[name][:, a:b].index_add_(1, qq, block[:, qq, a + kk])

    def _reduce(self, p: torch.Tensor, tolerance: float, keep: bool) -> ReducedLayer:
        n_heads, n, n2 = (int(s) for s in p.shape)
        if n != self.n or n2 != n:
            raise ValueError(f"attention has shape {tuple(p.shape)}; expected [head, {self.n}, {self.n}]")
        device = p.device
        step = max(1, min(MAX_BLOCK_ROWS, BLOCK_ELEMENTS // max(1, n_heads * n)))
        # per-row quantities, filled block by block; all O(head * query_pos)
        scales = torch.empty((n_heads, n), dtype=torch.float32, device=device)
        entropy = torch.empty((n_heads, n), dtype=torch.float32, device=device)
        sums = torch.empty((n_heads, n), dtype=torch.float32, device=device)
        above = torch.zeros(n_heads, dtype=torch.float32, device=device)  # largest weight above the diagonal
        prev = torch.zeros(n_heads, dtype=torch.float64, device=device)
        bos = torch.zeros(n_heads, dtype=torch.float64, device=device)
        self_mass = torch.zeros(n_heads, dtype=torch.float64, device=device)
        masses = {name: torch.zeros((n_heads, n), dtype=torch.float32, device=device) for name in self._valid}
        self_rows = torch.as_tensor(self._self_rows, device=device)
        packed_size = tril_size(n) if self.causal else n * n
        values = torch.empty((n_heads, packed_size if keep else 0), dtype=torch.uint8, device=device)
        pool = BlockPool(n_heads, n, self.thumb, step, device)
        tril = self.causal  # decided before the data for a causal model; else after the check
        bad = False
        blocks: list[tuple[int, int]] = [(a, min(a + step, n)) for a in range(0, n, step)]
        for a, b in blocks:
            block = p[:, a:b, :]
            if block.dtype != torch.float32:
                block = block.float()
            # a causal row has nothing right of its own position: the passes below read only
            # the keys up to the block's last row ("visible"); the rest is checked to be ~0
            cols = b if self.causal else n
            visible = block[:, :, :cols]
            high = visible.amax(-1)  # [head, rows]: the rows' maxima (NaN and inf show up here)
            lo, hi = float(visible.amin()), float(high.max())
            if b < n:  # the keys right of the block's square (a view, no copy)
                right = block[:, :, b:]
                r_hi, r_lo = float(right.amax()), float(right.amin())  # (aminmax would copy the view)
                lo, hi = min(lo, r_lo), max(hi, r_hi)
                if r_hi > 0:  # which heads have weight there (rare: a masked softmax gives 0)
                    above = torch.maximum(above, right.amax(dim=(1, 2)).clamp(0.0, 1.0))
            if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -tolerance or hi > 1 + tolerance:
                raise ValidationFailed
            if lo < 0 or hi > 1:  # float rounding only; never written into the caller's tensor
                block = block.clamp(0.0, 1.0)
                visible = block[:, :, :cols]
                high = high.clamp(0.0, 1.0)
            if b - a > 1:  # above the diagonal inside the block's own square (small)
                above = torch.maximum(above, block[:, :, a:b].triu(1).amax(dim=(1, 2)))
            scales[:, a:b] = high  # the wire's scales
            row_sums = visible.sum(-1)
            sums[:, a:b] = row_sums
            # scores: previous token (rows q >= 1, key q - 1), BOS sink (key 0), detect_head's self
            # target, all from the float weights
            if n >= 2:
                prev += torch.diagonal(block, offset=a - 1, dim1=1, dim2=2).sum(-1, dtype=torch.float64)
                bos += block[:, max(a, 1) - a :, 0].sum(-1, dtype=torch.float64)
                rows = self_rows[(self_rows >= a) & (self_rows < b)]
                if rows.numel():
                    self_mass += block[:, rows - a, rows].sum(-1, dtype=torch.float64)
            # entropy of the renormalized row p / s: log(s) - sum(p log p) / s (0 for an empty row);
            # p log p is NaN where p == 0 (0 * -inf), and nansum leaves those out (the weights
            # are finite: checked above)
            plogp = torch.log(visible).mul_(visible).nansum(-1)
            positive = row_sums > 0
            safe = torch.where(positive, row_sums, torch.ones_like(row_sums))
            entropy[:, a:b] = torch.where(positive, safe.log() - plogp / safe, torch.zeros_like(safe))
            self._target_masses(block, a, b, masses)
            if keep:
                pack_rows(values, visible, high, a, b, self.causal)
            pool.add(block, a, cols)
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
            valid = torch.as_tensor(self._valid[name], device=device)  # rows with a target
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
        thumbs = pool.finish() if pool.size != n else _thumbnails(p, self.thumb)
        return ReducedLayer(
            thumbs=thumbs,
            scores={k: scores[k].numpy().astype(np.float32) for k in ROW_SCORES},
            detect={k: detect[k].numpy().astype(np.float32) for k in DETECT_SCORES},
            causal_heads=causal_heads.cpu().numpy(),
            compact=compact,
        )


def _target_pairs(group: np.ndarray, limit: int) -> dict[str, tuple[np.ndarray, torch.Tensor, torch.Tensor]] | None:
    """Every (query, key) target of the token scores, sorted by query, or ``None`` past ``limit``
    pairs: duplicate-token keys ``k < q`` holding the query's token, and induction keys
    ``k = j + 1 < q`` following an earlier occurrence ``j`` of it. ``starts[q]`` is where query
    ``q``'s pairs begin (``starts[n]``: the total)."""
    n = len(group)
    order = np.argsort(group, kind="stable")
    counts = np.bincount(group)
    if int((counts * (counts - 1) // 2).sum()) > limit:
        return None
    queries: list[np.ndarray] = []
    earlier: list[np.ndarray] = []
    offsets = np.concatenate([[0], np.cumsum(counts)])
    for g in np.nonzero(counts >= 2)[0]:
        pos = order[offsets[g] : offsets[g + 1]]  # the positions of token g, ascending
        j, q = np.triu_indices(len(pos), 1)
        earlier.append(pos[j])
        queries.append(pos[q])
    q_all = np.concatenate(queries) if queries else np.zeros(0, np.int64)
    j_all = np.concatenate(earlier) if earlier else np.zeros(0, np.int64)
    out = {}
    for name, (q, k) in {
        "duplicate_token": (q_all, j_all),
        "induction": (q_all[j_all + 1 < q_all], j_all[j_all + 1 < q_all] + 1),
    }.items():
        sort = np.argsort(q, kind="stable")
        q, k = q[sort].astype(np.int64), k[sort].astype(np.int64)
        starts = np.searchsorted(q, np.arange(n + 1))
        out[name] = (starts, torch.as_tensor(q), torch.as_tensor(k))
    return out


def pack_rows(
    values: UInt8[torch.Tensor, "head packed"],
    visible: Float[torch.Tensor, "head rows keys"],
    high: Float[torch.Tensor, "head rows"],
    a: int,
    b: int,
    causal: bool,
) -> None:
    """Write rows ``a:b`` (their weights ``visible``, keys ``0 … b - 1`` for a causal layer, all
    keys otherwise, and their maxima ``high``) into ``values`` in the compact form: each weight
    as ``round(255 * weight / row max)``, row after row, the lower triangle only when ``causal``."""
    device = visible.device
    n_heads = int(visible.shape[0])
    # a true division, as numpy's encode_head does (255.0 / t is 255 * (1 / t) in torch)
    inv = torch.full_like(high, 255.0).div_(torch.where(high > 0, high, torch.ones_like(high)))
    quant = torch.mul(visible, inv.unsqueeze(-1)).round_()  # whole numbers 0-255
    if causal:  # row q's keys 0..q, rows one after another
        start = tril_size(a)
        if _copy_rows(device):  # a copy per row: faster than any gather on a CPU
            quant8 = quant.to(torch.uint8)  # one conversion, then bytes (exact: 0-255)
            for j in range(b - a):
                length = a + j + 1
                values[:, start : start + length] = quant8[:, j, :length]
                start += length
        else:  # one kernel on an accelerator
            keys_of = torch.arange(b, device=device)[None, :] <= torch.arange(a, b, device=device)[:, None]
            values[:, start : tril_size(b)] = quant[:, keys_of].to(torch.uint8)
    else:
        n = int(visible.shape[-1])
        values[:, a * n : b * n] = quant.reshape(n_heads, -1)


def _copy_rows(device: torch.device) -> bool:
    """Pack a block's lower triangle by one copy per row (CPU), or by one gather (accelerators,
    where many small copies would each be a kernel launch)."""
    return device.type == "cpu"


def _causal_tolerance() -> float:
    from ._run import _CAUSAL_TOLERANCE

    return _CAUSAL_TOLERANCE


class BlockPool:
    """Atlas thumbnails built block by block of query rows, as :func:`_thumbnails` would from the
    whole layer (the same bins, the same bytes). Max-pooling is separable: where the bins are
    equal and whole blocks of rows fill them (``n`` a multiple of ``T``, blocks a multiple of a
    bin's height), each block's rows are pooled into their bins as the block passes (a
    reduction along contiguous keys), and the keys at the end; otherwise each block's rows are
    pooled over keys, and the rows at the end."""

    def __init__(self, n_heads: int, n: int, size: int, step: int, device: torch.device) -> None:
        self.n = n
        self.size = size
        self.height = n // size
        self.by_rows = n % size == 0 and step % self.height == 0
        shape = (n_heads, size, n) if self.by_rows else (n_heads, n, size)
        self.pooled = torch.zeros(shape, dtype=torch.float32, device=device)

    def add(self, block: Float[torch.Tensor, "head rows key_pos"], a: int, cols: int) -> None:
        """Pool rows ``a:a + rows``. Keys from ``cols`` on hold nothing a thumbnail shows (a
        causal row's right part, checked to be at most 1e-4: it rounds to 0 of 255), so they
        are not read where the bins allow it."""
        n_heads, rows = int(block.shape[0]), int(block.shape[1])
        if self.by_rows:
            h = self.height
            part = block[:, :, :cols].reshape(n_heads, rows // h, h, cols).amax(2)
            self.pooled[:, a // h : (a + rows) // h, :cols] = part
        else:
            self.pooled[:, a : a + rows] = F.adaptive_max_pool1d(block, self.size)

    def finish(self) -> UInt8[np.ndarray, "head T T"]:
        n, size, pooled = self.n, self.size, self.pooled
        if self.by_rows:
            pooled = pooled.reshape(pooled.shape[0], size, size, n // size).amax(-1)
        else:
            pooled = F.adaptive_max_pool1d(pooled.transpose(1, 2), size).transpose(1, 2)
        return (pooled.clamp(0.0, 1.0) * 255.0).round_().to(torch.uint8).cpu().numpy()


def _thumbnails(pattern: torch.Tensor, size: int) -> np.ndarray:
    """``[head, T, T]`` uint8: the largest weight of each bin times 255, rounded.

    Pools in the pattern's own float dtype where torch can (a maximum is exact in any dtype), so
    a half-precision layer is not copied to float32 whole."""
    n = int(pattern.shape[-1])
    p = pattern if pattern.is_floating_point() else pattern.float()
    if size == n:
        pooled = p
    else:
        try:
            pooled = F.adaptive_max_pool2d(p, size)
        except (RuntimeError, NotImplementedError):  # no kernel for this dtype on this device
            pooled = F.adaptive_max_pool2d(p.float(), size)
    pooled = pooled.float()
    return (pooled.clamp(0.0, 1.0) * 255.0).round_().to(torch.uint8).cpu().numpy()
