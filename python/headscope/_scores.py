"""Attention-head scores, vectorized over every head at once.

All functions take an attention ``pattern`` whose last two axes are
``[query_pos, key_pos]`` (usually ``[layer, head, query_pos, key_pos]``, but
any leading axes work) and, where needed, the token ids ``[query_pos]`` of the
prompt.  They return one score per leading index (``[layer, head]``), of the
same kind as ``pattern``: a ``torch.Tensor`` for a tensor, a ``numpy.ndarray``
otherwise.  Computation is one masked sum over the whole array; there is no
loop over heads or positions.

Conventions shared by all scores
--------------------------------
* Position 0 is the BOS token when the model prepends one.  Its row (query 0)
  attends only to itself, so it has no previous token and no earlier
  position; it never enters an average.  Column 0 (attention *to* BOS) is an
  ordinary key: it counts toward a score only when it is a target by the
  definitions below (for instance key 0 is the previous token of query 1).
* A query position with no valid target is left out of the average; it is
  not counted as a zero.  A score is the mean, over query positions that have
  at least one target, of the attention mass those positions put on their
  targets.  If no position has a target, the score is NaN.
* Scores lie in [0, 1] for rows that sum to one.

Relation to TransformerLens ``detect_head(..., error_measure="mul")``
----------------------------------------------------------------------
``detect_head`` sums the matched mass over *all* ``N`` query rows and divides
by the total attention (``N`` for rows summing to 1), so rows without a target
count as zeros and the BOS row is included.  With ``n`` valid rows,
``mul = score * n / N`` whenever the target sets agree.  They agree for the
previous-token and duplicate-token scores.  For induction, TransformerLens also
counts the query itself as a target when the token just before it equals it
(``"aa"``); these scores do not (see :func:`induction_score`), so the two
agree only on sequences without two equal adjacent tokens, such as repeated
random tokens drawn without replacement.

headscope keeps its own convention as the default because it reads as "how much of the head's
attention goes where the behaviour says, on the rows where the behaviour applies": a perfect
induction head scores 1 on ``[BOS] S S``, where ``detect_head`` can give at most
``len(S) / (2 len(S) + 1)``.  :func:`detect_head_scores` (``head_scores(...,
convention="detect_head")`` in the public API) computes ``detect_head``'s "mul" values exactly,
self target included, for all heads at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

import numpy as np

if TYPE_CHECKING:
    import torch
    from jaxtyping import Float, Int

    Pattern = Union[
        Float[torch.Tensor, "*head query_pos key_pos"],
        Float[np.ndarray, "*head query_pos key_pos"],
    ]
    Tokens = Union[Int[torch.Tensor, " query_pos"], Int[np.ndarray, " query_pos"], list[int]]
    Scores = Union[Float[torch.Tensor, "*head"], Float[np.ndarray, "*head"]]

__all__ = [
    "SCORE_NAMES",
    "bos_sink_score",
    "custom_score",
    "detect_head_scores",
    "detect_head_targets",
    "duplicate_token_score",
    "entropy_score",
    "duplicate_token_targets",
    "head_scores",
    "induction_score",
    "induction_targets",
    "layered_head_scores",
    "previous_token_score",
    "previous_token_targets",
    "template_targets",
]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def _tokens_np(tokens: Any) -> np.ndarray:
    if _is_torch(tokens):
        tokens = tokens.detach().cpu().numpy()
    t = np.asarray(tokens)
    if t.ndim != 1:
        raise ValueError(f"tokens must be 1-D [query_pos], got shape {t.shape}")
    return t


def _check(pattern: Any, n: int | None = None) -> int:
    shape = tuple(pattern.shape)
    if len(shape) < 2 or shape[-1] != shape[-2]:
        raise ValueError(f"pattern must end in square [query_pos, key_pos], got shape {shape}")
    if n is not None and shape[-1] != n:
        raise ValueError(f"pattern has {shape[-1]} positions but tokens has {n}")
    return shape[-1]


def previous_token_targets(n: int) -> np.ndarray:
    """Boolean ``[query_pos, key_pos]`` mask: key ``q - 1`` for each query ``q >= 1``."""
    return np.eye(n, k=-1, dtype=bool)


def induction_targets(tokens: Tokens) -> np.ndarray:
    """Boolean ``[query_pos, key_pos]`` mask of induction targets.

    Key ``k`` is a target of query ``q`` when ``1 <= k <= q - 1`` and
    ``tokens[k - 1] == tokens[q]``: ``k - 1`` is a strictly earlier occurrence
    of the query's token and ``k`` the token that followed it.  ``k = q`` (the
    query itself, when the token just before it is the same token) is *not* a
    target.
    """
    t = _tokens_np(tokens)
    n = len(t)
    mask = np.zeros((n, n), dtype=bool)
    if n >= 2:
        # mask[q, k] for k >= 1: tokens[k-1] == tokens[q] and k < q
        mask[:, 1:] = t[:, None] == t[None, :-1]
        mask &= np.tri(n, n, k=-1, dtype=bool)
    return mask


def duplicate_token_targets(tokens: Tokens) -> np.ndarray:
    """Boolean ``[query_pos, key_pos]`` mask: earlier keys ``k < q`` with ``tokens[k] == tokens[q]``."""
    t = _tokens_np(tokens)
    n = len(t)
    return (t[:, None] == t[None, :]) & np.tri(n, n, k=-1, dtype=bool)


def _masked_score(pattern: Pattern, mask: np.ndarray) -> Scores:
    """Mean over rows with a target of the pattern's mass on the target keys."""
    valid = mask.any(axis=-1)  # [query_pos]
    n_valid = int(valid.sum())
    if _is_torch(pattern):
        import torch

        p = pattern.detach()
        if not p.is_floating_point():
            p = p.float()
        m = torch.as_tensor(mask, device=p.device, dtype=p.dtype)
        mass = (p * m).sum(dim=-1)  # [*head, query_pos]
        if n_valid == 0:
            return torch.full(mass.shape[:-1], float("nan"), dtype=p.dtype, device=p.device)
        v = torch.as_tensor(valid, device=p.device)
        return mass[..., v].mean(dim=-1)
    p = np.asarray(pattern)
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float32)
    mass = (p * mask).sum(axis=-1)
    if n_valid == 0:
        return np.full(mass.shape[:-1], np.nan, dtype=p.dtype)
    return mass[..., valid].mean(axis=-1)


def previous_token_score(pattern: Pattern, tokens: Tokens | None = None) -> Scores:
    """Mean over query positions ``q >= 1`` of ``pattern[..., q, q - 1]``.

    The BOS row (query 0) has no previous token and is left out; for query 1
    the previous token *is* the BOS, so attention to BOS counts there.
    ``tokens`` is accepted for a uniform signature and only checked for length.
    NaN when there are fewer than two positions.
    """
    n = _check(pattern, None if tokens is None else len(_tokens_np(tokens)))
    return _masked_score(pattern, previous_token_targets(n))


def induction_score(pattern: Pattern, tokens: Tokens) -> Scores:
    """Attention on "the token after an earlier occurrence of the current token".

    For query ``q`` the targets are keys ``k`` with ``1 <= k <= q - 1`` and
    ``tokens[k - 1] == tokens[q]`` (see :func:`induction_targets`); the score
    is the mass on all targets of a row, averaged over the rows that have at
    least one target.  Rows whose token has not occurred before (including the
    BOS row and, on ``[BOS] A A``, the whole first copy and the first token of
    the second) are left out.  NaN if no row has a target.
    """
    t = _tokens_np(tokens)
    _check(pattern, len(t))
    return _masked_score(pattern, induction_targets(t))


def duplicate_token_score(pattern: Pattern, tokens: Tokens) -> Scores:
    """Attention on earlier positions holding the same token as the query.

    Targets of query ``q`` are keys ``k < q`` with ``tokens[k] == tokens[q]``;
    the query itself is never a target.  Mass on all targets of a row,
    averaged over the rows that have at least one target (the BOS row never
    has one).  NaN if no row has a target.
    """
    t = _tokens_np(tokens)
    _check(pattern, len(t))
    return _masked_score(pattern, duplicate_token_targets(t))


def bos_sink_score(pattern: Pattern, tokens: Tokens | None = None) -> Scores:
    """Mean over query positions ``q >= 1`` of the attention on position 0 (the BOS sink).

    The BOS row itself (which can only attend to position 0) is left out. NaN when there are
    fewer than two positions.
    """
    n = _check(pattern, None if tokens is None else len(_tokens_np(tokens)))
    mask = np.zeros((n, n), dtype=bool)
    mask[1:, 0] = True
    return _masked_score(pattern, mask)


def entropy_score(pattern: Pattern, tokens: Tokens | None = None) -> Scores:
    """Mean normalized entropy of the rows ``q >= 1``, in [0, 1].

    Each row's entropy is divided by the log of the number of keys it can see: ``q + 1`` for a
    causal head (nothing above the diagonal), ``n`` otherwise. 0 means all attention on one key,
    1 means uniform over the visible keys. The BOS row is left out (one key in a causal head).
    Rows are renormalized first, so masked or truncated rows still compare.
    """
    n = _check(pattern, None if tokens is None else len(_tokens_np(tokens)))
    torch_in = _is_torch(pattern)
    p = pattern.detach().cpu().float().numpy() if torch_in else np.asarray(pattern, dtype=np.float32)
    if n < 2:
        out = np.full(p.shape[:-2], np.nan, dtype=np.float32)
    else:
        p = p / np.maximum(p.sum(-1, keepdims=True), np.float32(1e-30))
        plogp = p * np.log(np.maximum(p, np.float32(1e-30)))  # 0 where p == 0
        entropy = -plogp.sum(-1)[..., 1:]  # [*head, query_pos >= 1]
        causal = ~np.triu(p, 1).any(axis=(-1, -2))  # [*head]
        visible = np.where(causal[..., None], np.arange(2, n + 1), n).astype(np.float32)
        out = (entropy / np.log(visible)).mean(-1)
    if torch_in:
        import torch

        return torch.from_numpy(np.asarray(out, dtype=np.float32))
    return out


def template_targets(template: Any, tokens: Tokens, causal: bool = True) -> np.ndarray:
    """The boolean ``[query_pos, key_pos]`` target mask of a custom template.

    ``template`` is an array ``[query_pos, key_pos]`` (nonzero entries are targets) or a function
    of the token ids that returns one. With ``causal``, targets above the diagonal
    (``key_pos > query_pos``) are an error: a causal head cannot attend there.
    """
    t = _tokens_np(tokens)
    n = len(t)
    if callable(template):
        template = template(t)
    if _is_torch(template):
        template = template.detach().cpu().numpy()
    try:
        arr = np.asarray(template, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"a template must be a numeric [query_pos, key_pos] array: {exc}") from None
    if arr.shape != (n, n):
        raise ValueError(
            f"the template has shape {arr.shape}, but there are {n} tokens: "
            f"expected [query_pos, key_pos] = [{n}, {n}]"
        )
    if not np.isfinite(arr).all():
        raise ValueError("the template holds NaN or infinite values")
    mask = arr != 0
    if causal and np.triu(mask, 1).any():
        q, k = (int(i) for i in np.argwhere(np.triu(mask, 1))[0])
        raise ValueError(
            f"the template marks key_pos {k} for query_pos {q}, above the diagonal, where a causal "
            "head cannot attend; a template must be lower-triangular"
        )
    return mask


def custom_score(pattern: Pattern, tokens: Tokens, template: Any, causal: bool = True) -> Scores:
    """Attention mass on a custom template's targets, averaged over rows that have a target."""
    t = _tokens_np(tokens)
    _check(pattern, len(t))
    return _masked_score(pattern, template_targets(template, t, causal))


#: The built-in scores, in the order :func:`head_scores` returns them.
SCORE_NAMES = ("previous_token", "induction", "duplicate_token", "bos_sink", "entropy")


def head_scores(pattern: Pattern, tokens: Tokens) -> dict[str, Scores]:
    """The built-in scores, keyed ``previous_token``, ``induction``, ``duplicate_token``,
    ``bos_sink`` and ``entropy``."""
    return {
        "previous_token": previous_token_score(pattern, tokens),
        "induction": induction_score(pattern, tokens),
        "duplicate_token": duplicate_token_score(pattern, tokens),
        "bos_sink": bos_sink_score(pattern, tokens),
        "entropy": entropy_score(pattern, tokens),
    }


def detect_head_targets(tokens: Tokens) -> dict[str, np.ndarray]:
    """TransformerLens ``detect_head``'s detection patterns as boolean ``[query_pos, key_pos]`` masks.

    Previous-token and duplicate-token equal :func:`previous_token_targets` and
    :func:`duplicate_token_targets`; induction adds the query itself as a target when the token
    before it is the same token (``tokens[q - 1] == tokens[q]``).
    """
    t = _tokens_np(tokens)
    n = len(t)
    induction = induction_targets(t)
    if n >= 2:
        idx = np.arange(1, n)
        induction[idx, idx] = t[:-1] == t[1:]
    return {
        "previous_token": previous_token_targets(n),
        "induction": induction,
        "duplicate_token": duplicate_token_targets(t),
    }


def detect_head_scores(pattern: Pattern, tokens: Tokens) -> dict[str, Scores]:
    """TransformerLens ``detect_head(..., error_measure="mul")`` for every head at once.

    For each behaviour: the attention mass on its targets, summed over *all* query rows and
    divided by the head's total attention (``query_pos`` for rows that sum to one). Rows without
    a target, the BOS row among them, count as zeros. Keys ``previous_token``, ``induction`` and
    ``duplicate_token``.
    """
    t = _tokens_np(tokens)
    _check(pattern, len(t))
    masks = detect_head_targets(t)
    if _is_torch(pattern):
        import torch

        p = pattern.detach()
        if not p.is_floating_point():
            p = p.float()
        total = p.sum(dim=(-1, -2))
        return {
            name: (p * torch.as_tensor(m, device=p.device, dtype=p.dtype)).sum(dim=(-1, -2)) / total
            for name, m in masks.items()
        }
    p = np.asarray(pattern)
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float32)
    total = p.sum(axis=(-1, -2))
    return {name: (p * m).sum(axis=(-1, -2)) / total for name, m in masks.items()}


def layered_head_scores(
    layers: Any, tokens: Tokens, *, convention: str = "rows"
) -> dict[str, np.ndarray]:
    """:func:`head_scores` over a sequence of per-layer ``[head, query_pos, key_pos]`` patterns.

    Each layer is scored at once over its heads; layers go one at a time so that no
    ``[layer, head, query_pos, key_pos]`` copy of a long run is made. Returns float32
    ``[layer, head]`` arrays. ``convention="detect_head"`` gives :func:`detect_head_scores`
    instead (previous-token, induction and duplicate-token only).
    """
    if convention not in ("rows", "detect_head"):
        raise ValueError(f"unknown convention {convention!r}: expected 'rows' or 'detect_head'")
    score = head_scores if convention == "rows" else detect_head_scores
    per_layer = [score(layer, tokens) for layer in layers]
    return {
        name: np.stack([np.asarray(scores[name], dtype=np.float32) for scores in per_layer])
        for name in per_layer[0]
    }
