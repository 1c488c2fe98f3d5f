"""The one record that every adapter produces: tokens plus attention, validated once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

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

    out: list[torch.Tensor] = []
    for i, layer in enumerate(layers):
        tolerance = _tolerance(layer.dtype)
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
        if low < -tolerance or high > 1 + tolerance:
            raise ValueError(
                f"attention weights must lie in [0, 1]; layer {i} spans [{low:.4g}, {high:.4g}]. "
                "Pass softmax outputs (hook_pattern), not scores"
            )
        _check_rows(layer, i, tolerance, partial_rows)
        if causal:
            _check_causal(layer, i)
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
