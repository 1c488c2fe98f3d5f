"""The one record that every adapter produces: tokens plus attention, validated once."""

from __future__ import annotations

import threading
from typing import Any, Callable, Sequence

import numpy as np
import torch
from jaxtyping import Float

#: Float rounding allowed on a weight above 1 and on a row's sum (for float32 and float64 input;
#: half-precision input gets two of its own epsilons, see :func:`_tolerance`).
_TOLERANCE = 1e-3
#: The most weight a causal head's query may put on a later key before we complain. Masked
#: softmax gives exactly 0 there (a mask of -inf, or a finite one like -1e4, underflows), and
#: 1e-4 is far below what the display can show (1/255 of a row's maximum).
_CAUSAL_TOLERANCE = 1e-4


#: Float32 bytes up to which :attr:`AttentionRun.pattern` materializes every head (1 GiB).
PATTERN_LIMIT = 1 << 30
#: Bytes of compact head data a run from a model keeps by default (1 GiB); see ``memory_budget``.
DEFAULT_MEMORY_BUDGET = 1 << 30


class PatternTooLargeError(ValueError):
    """:attr:`AttentionRun.pattern` was asked for a run too large to hold as float32."""


class AttentionRun:
    """Tokens and every head's attention, as one validated, compact record.

    A run never holds float patterns. Each layer was reduced as it was produced
    (``headscope._capture``) to:

    * atlas thumbnails, uint8 ``[layer, head, T, T]`` (:attr:`thumbs`);
    * every built-in head score, exact (computed from the float weights);
    * the wire's compact head form: per row a float32 maximum and uint8 fractions of it, lower
      triangle only for causal attention, ``n * (n + 1) / 2 + 4 * n`` bytes per head.

    :meth:`head` decodes one head to float32; each weight is within ``row max / 510`` of the
    model's (the largest weight of the row, divided by 510: half a step of 255). Some layers
    keep no compact form: those over the run's memory budget, and on models whose heads a
    smaller store reproduces exactly (their attention input), every layer once that store is
    smaller. Their heads are computed again on demand, from the store or by running the model
    up to that layer (that layer is then cached). Build one with :func:`make_run` (precomputed
    attention) or the adapters.
    """

    def __init__(
        self,
        tokens: list[str],
        layers: Sequence[Any],
        *,
        prompt: str = "",
        model_name: str = "",
        token_ids: torch.Tensor | None = None,
        thumb_size: int = 0,
        recompute: Callable[[int], Any] | None = None,
        recompute_head: Callable[[int, int], Any] | None = None,
        extra_bytes: int = 0,
    ) -> None:
        from ._capture import ReducedLayer

        self.tokens = tokens
        self.prompt = prompt
        self.model_name = model_name
        self.token_ids = token_ids
        reduced: list[ReducedLayer] = list(layers)
        self._recompute = recompute
        self._recompute_head = recompute_head
        self._extra_bytes = extra_bytes  # what the recompute functions hold (layers' inputs, or Q and K)
        self._cached: tuple[int, Any] | None = None
        self._cached_head: tuple[int, int, Any] | None = None
        self._lock = threading.Lock()
        self._compact = tuple(layer.compact for layer in reduced)
        if reduced:
            self.thumb_size = int(reduced[0].thumbs.shape[-1])
            self.thumbs: np.ndarray = np.stack([layer.thumbs for layer in reduced])
            self._scores = {k: np.stack([layer.scores[k] for layer in reduced]) for k in reduced[0].scores}
            self._detect = {k: np.stack([layer.detect[k] for layer in reduced]) for k in reduced[0].detect}
            self.causal_heads: np.ndarray = np.stack([layer.causal_heads for layer in reduced])
            self._n_heads = int(reduced[0].thumbs.shape[0])
        else:  # a parked run: tokens only
            self.thumb_size = thumb_size
            self.thumbs = np.zeros((0, 0, thumb_size, thumb_size), np.uint8)
            self._scores, self._detect = {}, {}
            self.causal_heads = np.zeros((0, 0), bool)
            self._n_heads = 0
        self._n_layers = len(reduced)
        #: set by a run from a model (``headscope._value_weighted.ValueWeighting``): computes and
        #: caches the value norms and thumbnails when first asked for
        self._values: Any = None
        if any(c is None for c in self._compact) and recompute is None:  # (recompute_head is optional)
            raise ValueError("a run that keeps no compact form for some layers needs a way to recompute them")

    @property
    def n_layers(self) -> int:
        return self._n_layers

    @property
    def n_heads(self) -> int:
        return self._n_heads

    @property
    def seq_len(self) -> int:
        return len(self.tokens)

    @property
    def kept_layers(self) -> list[int]:
        """Layers whose compact form the run holds (the others are computed again on demand)."""
        return [i for i, c in enumerate(self._compact) if c is not None]

    @property
    def nbytes(self) -> int:
        """Bytes of attention data the run holds: compact heads (and the one cached recomputed
        layer), thumbnails and scores. Grows as ``tokens**2 / 2`` bytes per kept head, never as
        float32 ``tokens**2``."""
        heads = sum(c.nbytes for c in self._compact if c is not None)
        cached = self._cached[1].nbytes if self._cached is not None else 0
        cached += self._cached_head[2].nbytes if self._cached_head is not None else 0
        cached += self._extra_bytes
        cached += self._values.nbytes if self._values is not None else 0
        scores = sum(a.nbytes for a in self._scores.values()) + sum(a.nbytes for a in self._detect.values())
        return heads + cached + int(self.thumbs.nbytes) + scores

    def parked(self) -> "AttentionRun":
        """The run without its attention data (tokens, prompt and ids only)."""
        return AttentionRun(self.tokens, (), prompt=self.prompt, model_name=self.model_name,
                            token_ids=self.token_ids, thumb_size=self.thumb_size)

    def score_ids(self) -> np.ndarray:
        """Token ids for scores; precomputed runs compare token strings instead."""
        if self.token_ids is not None:
            return self.token_ids.numpy()
        return np.unique(np.asarray(self.tokens, dtype=object), return_inverse=True)[1]

    def head_scores(self, convention: str = "rows") -> dict[str, np.ndarray]:
        """The built-in scores as float32 ``[layer, head]`` arrays, exact (computed from the float
        weights when the run was captured). ``convention="detect_head"``: TransformerLens
        ``detect_head``'s "mul" values (previous-token, induction, duplicate-token)."""
        if convention not in ("rows", "detect_head"):
            raise ValueError(f"unknown convention {convention!r}: expected 'rows' or 'detect_head'")
        source = self._scores if convention == "rows" else self._detect
        return {k: v.copy() for k, v in source.items()}

    def compact(self, layer: int) -> Any:
        """Layer ``layer``'s compact form (a ``_capture.CompactLayer``), computed again if the run
        keeps none for it."""
        kept = self._compact[layer]
        if kept is not None:
            return kept
        with self._lock:
            if self._cached is not None and self._cached[0] == layer:
                return self._cached[1]
            self._cached = None  # free the previous one before computing the next
            assert self._recompute is not None
            compact = self._recompute(layer)
            self._cached = (layer, compact)
            return compact

    def _one_head(self, layer: int, head: int) -> tuple[Any, int]:
        """``(compact form, index in it)`` of one head: a kept layer's, the cached recomputed
        layer's, or one head computed again from the layer's store (and cached)."""
        kept = self._compact[layer]
        if kept is not None:
            return kept, head
        if self._recompute_head is not None:
            with self._lock:
                cached = self._cached_head
                if cached is None or cached[:2] != (layer, head):
                    self._cached_head = None
                    cached = (layer, head, self._recompute_head(layer, head))
                    self._cached_head = cached
                return cached[2], 0
        return self.compact(layer), head

    def encode_head(self, layer: int, head: int) -> tuple[str, bytes, bytes]:
        """One head as the wire sends it: ``(packing, scales, values)`` (docs/wire.md)."""
        layer, head = check_head(layer, head, self.n_layers, self.n_heads)
        compact, index = self._one_head(layer, head)
        return compact.encode(index)

    def layer_pattern(self, layer: int) -> Float[torch.Tensor, "head query_pos key_pos"]:
        """Every head of one layer, dequantized to float32 (each weight within row max / 510)."""
        check_head(layer, 0, self.n_layers, self.n_heads)
        return self.compact(layer).dequantize()

    def head(self, layer: int, head: int, *, value_weighted: bool = False) -> Float[np.ndarray, "query_pos key_pos"]:
        """One head's pattern ``[query_pos, key_pos]``, float32, decoded from the compact form.

        Every weight is within ``row max / 510`` of the model's (the row's largest weight over
        510, half a quantization step); above the diagonal of causal attention it is 0.

        ``value_weighted=True``: each weight times its key's value norm (:meth:`value_norms`),
        every row renormalized to sum to 1 (docs/value-weighted.md).
        """
        layer, head = check_head(layer, head, self.n_layers, self.n_heads)
        compact, index = self._one_head(layer, head)
        pattern = compact.dequantize(index)
        if value_weighted:
            from ._value_weighted import value_weight

            pattern = value_weight(pattern, torch.from_numpy(self.value_norms()[layer, head]))
        return pattern.numpy()

    def value_norms(self) -> Float[np.ndarray, "layer head key_pos"]:
        """``‖v[key_pos] W_O[layer, head]‖`` for every head and key, float32 ``[layer, head,
        key_pos]``: how much each position can write through each head (value bias included).

        Computed on the first call (one forward pass that reads the value vectors) and cached.
        Raises :class:`headscope.WeightsUnavailableError` for precomputed attention and for
        models whose weights cannot be read here (a remote nnsight model)."""
        return self._value_weighting().norms().copy()

    def value_weighted_thumbs(self) -> np.ndarray:
        """The atlas thumbnails of every value-weighted head, uint8 ``[layer, head, T, T]`` (as
        :attr:`thumbs`); one more forward pass on the first call, then cached."""
        return self._value_weighting().thumbs().copy()

    def _value_weighting(self) -> Any:
        if self._values is None:
            from ._adapters.base import WeightsUnavailableError
            from ._value_weighted import NO_MODEL

            raise WeightsUnavailableError(NO_MODEL)
        return self._values

    @property
    def pattern(self) -> Float[np.ndarray, "layer head query_pos key_pos"]:
        """Every head's pattern, dequantized, ``[layer, head, query_pos, key_pos]`` float32.

        Each weight is within ``row max / 510`` of the model's. Raises
        :class:`PatternTooLargeError` when the stack would pass ``PATTERN_LIMIT`` (1 GiB of
        float32); use :meth:`head` for one head at a time.
        """
        n = self.seq_len
        size = 4 * self.n_layers * self.n_heads * n * n
        if size > PATTERN_LIMIT:
            raise PatternTooLargeError(
                f"run.pattern would take {size / 2**30:.1f} GiB as float32 ({self.n_layers} layers x "
                f"{self.n_heads} heads x {n} x {n} tokens), over the {PATTERN_LIMIT / 2**30:.2g} GiB "
                "limit; read one head at a time with run.head(layer, head)"
            )
        return np.stack([self.layer_pattern(i).numpy() for i in range(self.n_layers)])


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
        if value.is_meta:
            raise ValueError(
                f"{what} is on the meta device: it has no values, only a shape "
                f"{tuple(value.shape)}; compute it with a model whose weights are loaded (not "
                "created under torch.device('meta') or accelerate's init_empty_weights)"
            )
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


def _tolerance(dtype: torch.dtype) -> float:
    """Rounding allowed on a weight above 1 and on a row's sum, for input of ``dtype``.

    1e-3 for float32 and float64; two epsilons of the input's own precision when that is
    coarser (float16: 2e-3, bfloat16: 0.016), because a bfloat16 weight near 1 alone may be off
    by 2^-9 and the row's other weights add their own rounding.
    """
    if dtype.is_floating_point:
        return max(_TOLERANCE, 2 * torch.finfo(dtype).eps)
    return _TOLERANCE


def _max_above_diagonal(layer: torch.Tensor) -> torch.Tensor:
    """The largest weight above the diagonal (key_pos > query_pos) of ``[head, q, k]``.

    Reads only the upper triangle and copies no more than a few small diagonal blocks: rows go
    in at most about 16 blocks; the keys right of a block are a view, the block's own square is
    the only part that needs ``triu``.
    """
    n = int(layer.shape[-1])
    if n < 2:
        return layer.new_zeros(())
    step = max(64, -(-n // 16))
    maxima = []
    for start in range(0, n, step):
        stop = min(start + step, n)
        maxima.append(layer[:, start:stop, start:stop].triu(1).amax())
        if stop < n:
            maxima.append(layer[:, start:stop, stop:].amax())
    return torch.stack(maxima).amax()


def _check_rows(layer: torch.Tensor, i: int, tolerance: float, partial_rows: bool) -> None:
    """Every row of ``layer`` ``[head, query_pos, key_pos]`` sums to 1 within ``tolerance``
    (``partial_rows``: to at most 1). Vectorized over heads; the search for the first bad row
    runs only when there is one."""
    sums = layer.sum(-1)  # [head, query_pos]; float32 with pairwise summation: ample at any length
    bad = sums > 1 + tolerance if partial_rows else (sums - 1).abs() > tolerance
    if not bool(bad.any()):
        return
    h, q = (int(x) for x in bad.nonzero()[0])
    total = float(sums[h, q])
    if partial_rows:
        rule = "sum to at most 1"
    else:
        rule = "sum to 1 (softmax over key_pos)"
    message = (
        f"attention rows must {rule} within {tolerance:.2g}; layer {i}, head {h}, query_pos {q} "
        f"sums to {total:.6g} ({int(bad.sum())} rows of {bad.numel()} in this layer are off)"
    )
    columns = layer[h].sum(0, dtype=torch.float64)
    if total == 0:
        message += (
            ". An all-zero row is not attention: drop padding positions (and their tokens) "
            "before showing it"
        )
    elif bool(((columns - 1).abs() <= tolerance).all()):
        message += (
            ". Its columns sum to 1, so the array looks transposed: pass "
            "[..., query_pos, key_pos] (e.g. attention.swapaxes(-1, -2))"
        )
    elif total > 1:
        message += ". Rows above 1 come from dropout (put the model in eval mode) or from scores, not weights"
    raise ValueError(message)


def _check_causal(layer: torch.Tensor, i: int) -> None:
    """No weight above the diagonal (key_pos > query_pos) beyond float noise."""
    if float(_max_above_diagonal(layer)) <= _CAUSAL_TOLERANCE:
        return
    h, q, k = (int(x) for x in (torch.triu(layer, 1) > _CAUSAL_TOLERANCE).nonzero()[0])
    raise ValueError(
        f"attention puts weight above the diagonal: layer {i}, head {h}, query_pos {q} attends "
        f"to the later key_pos {k} with weight {float(layer[h, q, k]):.4g} (allowed: "
        f"{_CAUSAL_TOLERANCE:g}), but in a causal model a query sees only itself and earlier "
        "positions. Pass causal=False for a bidirectional model (BERT-style), or check that the "
        "array is [..., query_pos, key_pos], not transposed"
    )


def make_run(
    tokens: Sequence[str],
    attention: Any,
    *,
    prompt: str = "",
    model_name: str = "",
    token_ids: torch.Tensor | None = None,
    causal: bool = True,
    partial_rows: bool = False,
) -> AttentionRun:
    """Validate tokens and attention and return an :class:`AttentionRun`.

    Every weight must be finite and lie in [0, 1], and every row (one query position) must sum
    to 1 within 1e-3 (two epsilons of the input's dtype when coarser: 2e-3 for float16, 0.016
    for bfloat16). With ``causal=True`` (the default) no query may put more than 1e-4 on a later
    key (above the diagonal); ``causal=False`` skips that check, for bidirectional models.
    ``partial_rows=True`` only asks rows to sum to at most 1: models with attention sinks
    (GPT-OSS) give some of each row's weight to a sink that is not a token.

    Raises ``TypeError`` or ``ValueError`` that name the problem, the first offending
    layer/head/position, and the expected shape or value.
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

    if not isinstance(causal, bool):
        raise TypeError(f"causal must be True or False, got {type(causal).__name__}")

    from ._capture import Reducer

    ids = token_ids if token_ids is not None else np.unique(np.asarray(token_list, dtype=object), return_inverse=True)[1]
    reducer = Reducer(ids, len(layers) * n_heads, causal=causal, partial_rows=partial_rows)
    reduced = [reducer.reduce(i, layer) for i, layer in enumerate(layers)]  # one layer at a time

    return AttentionRun(token_list, reduced, prompt=prompt, model_name=model_name, token_ids=token_ids)


def reference_checks(layer: torch.Tensor, i: int, tolerance: float, *, causal: bool, partial_rows: bool) -> None:
    """The checks of one float32 CPU layer ``[head, query_pos, key_pos]``, raising the error that
    names the first problem. Runs only after the streaming check found one (for its message)."""
    low_t, high_t = torch.aminmax(layer)  # one pass; NaN and inf show up here too
    low, high = float(low_t), float(high_t)
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = ~torch.isfinite(layer)
        h, q, k = (int(x) for x in bad.nonzero()[0])
        raise ValueError(
            f"attention has {int(bad.sum())} NaN or infinite values; the first is at "
            f"layer {i}, head {h}, query_pos {q}, key_pos {k}"
        )
    if low < -tolerance or high > 1 + tolerance:
        raise ValueError(
            f"attention weights must lie in [0, 1]; layer {i} spans [{low:.4g}, {high:.4g}]. "
            "Pass softmax outputs (hook_pattern), not scores"
        )
    if low < 0 or high > 1:
        layer = layer.clamp(0.0, 1.0)
    _check_rows(layer, i, tolerance, partial_rows)
    if causal:
        _check_causal(layer, i)
