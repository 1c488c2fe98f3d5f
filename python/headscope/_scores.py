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
    "duplicate_token_score",
    "duplicate_token_targets",
    "head_scores",
    "induction_score",
    "induction_targets",
    "previous_token_score",
    "previous_token_targets",
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


def head_scores(pattern: Pattern, tokens: Tokens) -> dict[str, Scores]:
    """All three scores, keyed ``previous_token``, ``induction``, ``duplicate_token``."""
    return {
        "previous_token": previous_token_score(pattern, tokens),
        "induction": induction_score(pattern, tokens),
        "duplicate_token": duplicate_token_score(pattern, tokens),
    }
