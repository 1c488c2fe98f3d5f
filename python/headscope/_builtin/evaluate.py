"""Acceptance measurements of the built-in model (run at the end of training and by the tests).

Held-out data, from a seed that training never uses:

* **Repeated random bytes.**  ``[BOS] S S`` where ``S`` is ``L`` distinct
  bytes drawn from all 256 (no byte repeated inside a segment), for
  ``L`` in 10, 50 and 100, ``batch`` rows each.  Measured: every head's
  induction and previous-token scores (:mod:`headscope._scores`), and the mean
  next-byte loss on the first copy (targets at positions ``1..L``) and on the
  second copy (targets ``L+1..2L``).
* **English.**  Hand-written English paragraphs (:data:`EVAL_ENGLISH`, not from
  the training word list's generator) and, separately, generated English-like
  text: every head's previous-token score.
* **Repeated English sentence.**  ``[BOS] (S + " ") (S + " ")`` for each
  sentence of :data:`EVAL_SENTENCES`.  For the induction head, the query at
  offset ``i`` of the second copy should peak (argmax over keys) on offset
  ``i + 1`` of the first copy, the token after its first occurrence.  Measured:
  the fraction of second-copy positions where it does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from headscope._builtin.data import DataRecipe, english_text
from headscope._builtin.tokenizer import BOS_ID
from headscope._scores import induction_score, previous_token_score

if TYPE_CHECKING:
    from transformer_lens import TransformerBridge

EVAL_SEED = 20250101
LENGTHS = (10, 50, 100)

EVAL_ENGLISH: tuple[str, ...] = (
    "The river runs past the old mill and under the stone bridge. In spring the water "
    "rises, and the children watch the boats go by from the bank. Nobody remembers who "
    "built the mill, but everyone in the village knows its name.",
    "She opened the letter slowly, read the first line twice, and then put it down on "
    "the kitchen table. Outside, the rain had stopped and the street was quiet. It would "
    "be a long evening, she thought.",
    "Attention heads are small parts of a transformer. Each head reads the tokens before "
    "it and decides where to look; some heads look at the previous token, and others "
    "copy what came next the last time.",
)

EVAL_SENTENCES: tuple[str, ...] = (
    "The cat sat on the mat and the dog slept by the door.",
    "Mary and John went to the market to buy fresh bread.",
    "A quick brown fox jumps over the lazy dog at noon.",
)

# Acceptance thresholds of the built-in model.
MIN_INDUCTION = 0.7
MAX_LOSS_RATIO = 1 / 3
MIN_PREV_RANDOM = 0.8
MIN_PREV_ENGLISH = 0.7
MIN_PEAK_FRACTION = 0.5


def _patterns_and_logits(
    model: TransformerBridge, tokens: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Patterns ``[batch, layer, head, q, k]`` and logits ``[batch, pos, vocab]``."""
    from headscope._adapters import capture_patterns

    logits, patterns = capture_patterns(model, tokens)
    return torch.stack(patterns, 1).float().cpu(), logits.float().cpu()


def _token_losses(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Loss of predicting ``tokens[:, p]`` from position ``p - 1``: ``[batch, pos - 1]``."""
    logp = torch.log_softmax(logits[:, :-1], dim=-1)
    return -logp.gather(-1, tokens[:, 1:, None].to(logp.device))[..., 0]


def repeated_random_tokens(rng: np.random.Generator, length: int, batch: int) -> torch.Tensor:
    """``[batch, 1 + 2 * length]``: BOS, then ``length`` distinct random bytes, twice."""
    rows = []
    for _ in range(batch):
        seg = rng.permutation(256)[:length]
        rows.append(np.concatenate([[BOS_ID], seg, seg]))
    return torch.as_tensor(np.stack(rows), dtype=torch.long)


def _mean_scores(fn: Any, pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    return torch.stack([fn(pattern[b], tokens[b]) for b in range(tokens.shape[0])]).mean(0)


def evaluate(model: TransformerBridge, *, seed: int = EVAL_SEED, batch: int = 16) -> dict[str, Any]:
    """All measurements, as a JSON-ready dict (lists are ``[layer][head]``)."""
    device = next(model.parameters()).device
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"eval_seed": seed, "batch": batch, "random_repeats": {}}

    induction_by_len = []
    prev_random = []
    for length in LENGTHS:
        tokens = repeated_random_tokens(rng, length, batch)
        pattern, logits = _patterns_and_logits(model, tokens.to(device))
        ind = _mean_scores(induction_score, pattern, tokens)
        prev = _mean_scores(previous_token_score, pattern, tokens)
        losses = _token_losses(logits, tokens)  # index p-1 predicts position p
        first = losses[:, 0:length].mean().item()  # targets 1..L
        second = losses[:, length : 2 * length].mean().item()  # targets L+1..2L
        induction_by_len.append(ind)
        prev_random.append(prev)
        out["random_repeats"][str(length)] = {
            "induction": ind.tolist(),
            "previous_token": prev.tolist(),
            "loss_first_half": first,
            "loss_second_half": second,
            "loss_ratio": second / first,
        }

    prev_random_mean = torch.stack(prev_random).mean(0)
    english = [torch.tensor([[BOS_ID, *text.encode("utf-8")]]) for text in EVAL_ENGLISH]
    prev_en = torch.stack(
        [
            previous_token_score(_patterns_and_logits(model, t.to(device))[0][0], t[0])
            for t in english
        ]
    ).mean(0)
    gen = english_text(rng, 4 * 250, DataRecipe()).encode("utf-8")
    gen_rows = torch.tensor(
        [[BOS_ID, *gen[i * 250 : (i + 1) * 250]] for i in range(4)], dtype=torch.long
    )
    prev_gen = _mean_scores(
        previous_token_score, _patterns_and_logits(model, gen_rows.to(device))[0], gen_rows
    )

    ind_mean = torch.stack(induction_by_len).mean(0)
    n_heads = model.cfg.n_heads
    ind_head = divmod(int(ind_mean.argmax()), n_heads)
    # The previous-token head must do both jobs: rank by the weaker of the two.
    prev_head = divmod(int(torch.minimum(prev_random_mean, prev_en).argmax()), n_heads)

    peaks = []
    for sentence in EVAL_SENTENCES:
        seg = list((sentence + " ").encode("utf-8"))
        n = len(seg)
        t = torch.tensor([[BOS_ID, *seg, *seg]])
        p = _patterns_and_logits(model, t.to(device))[0][0, ind_head[0], ind_head[1]]
        q = torch.arange(n + 1, 2 * n + 1)  # second copy; offset i at n + 1 + i
        want = q - n + 1  # offset i + 1 of the first copy, at position i + 2
        peaks.append((p[q].argmax(-1) == want).float().mean().item())

    out["previous_token_random_mean"] = prev_random_mean.tolist()
    out["previous_token_english"] = prev_en.tolist()
    out["previous_token_english_like"] = prev_gen.tolist()
    out["induction_mean"] = ind_mean.tolist()
    out["induction_head"] = list(ind_head)
    out["previous_token_head"] = list(prev_head)
    out["repeated_sentence_peak_fraction"] = dict(zip(EVAL_SENTENCES, peaks))
    out["roles"] = roles(ind_mean, prev_random_mean, prev_en, ind_head, prev_head)
    out["summary"] = summary(out)
    return out


def roles(
    ind_mean: torch.Tensor,
    prev_random: torch.Tensor,
    prev_en: torch.Tensor,
    ind_head: tuple[int, int],
    prev_head: tuple[int, int],
) -> dict[str, list[list[int]]]:
    """Heads by role, strongest first: the acceptance head, then any other head scoring >= 0.5."""
    n_heads = ind_mean.shape[1]

    def pick(score: torch.Tensor, best: tuple[int, int]) -> list[list[int]]:
        order = torch.argsort(score.flatten(), descending=True).tolist()
        heads = [list(best)]
        for i in order:
            h = list(divmod(i, n_heads))
            if h != list(best) and float(score.flatten()[i]) >= 0.5:
                heads.append(h)
        return heads

    return {
        "previous_token": pick(torch.minimum(prev_random, prev_en), prev_head),
        "induction": pick(ind_mean, ind_head),
    }


def summary(report: dict[str, Any]) -> dict[str, Any]:
    """The acceptance numbers for the chosen heads, and whether each bar is met."""
    li, hi = report["induction_head"]
    lp, hp = report["previous_token_head"]
    rr = report["random_repeats"]
    ind = {k: rr[k]["induction"][li][hi] for k in rr}
    ratio = {k: rr[k]["loss_ratio"] for k in rr}
    prev_r = report["previous_token_random_mean"][lp][hp]
    prev_e = report["previous_token_english"][lp][hp]
    peaks = report["repeated_sentence_peak_fraction"]
    checks = {
        "induction_each_length": all(v >= MIN_INDUCTION for v in ind.values()),
        "loss_ratio_each_length": all(v <= MAX_LOSS_RATIO for v in ratio.values()),
        "previous_token_random": prev_r >= MIN_PREV_RANDOM,
        "previous_token_english": prev_e >= MIN_PREV_ENGLISH,
        "repeated_sentence_peaks": all(v > MIN_PEAK_FRACTION for v in peaks.values()),
    }
    return {
        "induction_head": [li, hi],
        "induction_by_length": ind,
        "loss_ratio_by_length": ratio,
        "previous_token_head": [lp, hp],
        "previous_token_random": prev_r,
        "previous_token_english": prev_e,
        "previous_token_english_like": report["previous_token_english_like"][lp][hp],
        "repeated_sentence_peak_fraction": peaks,
        "checks": checks,
        "passed": all(checks.values()),
    }
