"""The induction probe (Olsson et al. 2022): random tokens repeated once, whatever the prompt.

A head that attends from each token of the second copy to the token after its first occurrence
is an induction head; the model's loss on the second copy, far below the first, shows the
circuit at work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from jaxtyping import Float

from ._adapters import ModelAdapter, as_adapter, capture_patterns
from ._scores import induction_score, previous_token_score


@dataclass(frozen=True)
class ProbeResult:
    """What the probe measured, averaged over its batch of random sequences."""

    #: the first row of the probe, ``[1 + 2 * length]`` token ids (BOS, segment, segment)
    tokens: torch.Tensor
    length: int
    batch: int
    seed: int
    induction: Float[np.ndarray, "layer head"]
    previous_token: Float[np.ndarray, "layer head"]
    #: loss of predicting position p + 1 from position p, ``[2 * length]`` (BOS row excluded)
    loss: Float[np.ndarray, " pos"]

    @property
    def first_half_loss(self) -> float:
        """Mean loss on the first copy (these tokens are unpredictable)."""
        return float(self.loss[: self.length].mean())

    @property
    def second_half_loss(self) -> float:
        """Mean loss on the second copy (an induction circuit predicts these)."""
        return float(self.loss[self.length :].mean())

    def summary(self) -> str:
        """One line for a status bar: the loss halves and the best induction head."""
        layer, head, value = self.top_heads("induction", 1)[0]
        return (
            f"Induction probe ({self.batch} x {self.length} random tokens, repeated): loss "
            f"{self.first_half_loss:.2f} on the first copy, {self.second_half_loss:.2f} on the "
            f"second; best induction head L{layer} H{head}, induction score {value:.2f} over the "
            f"{self.batch} probe sequences"
        )

    def top_heads(self, score: str = "induction", k: int = 5) -> list[tuple[int, int, float]]:
        """The ``k`` best heads by ``score`` as ``(layer, head, value)``, best first."""
        values = getattr(self, score)
        order = np.argsort(values, axis=None)[::-1][:k]
        return [(int(i // values.shape[1]), int(i % values.shape[1]), float(values.flat[i])) for i in order]


def _bos_id(model: ModelAdapter) -> int:
    bos = model.bos_id()
    if bos is None:
        raise ValueError("the model's tokenizer adds no BOS token; the probe needs one")
    return bos


def induction_probe(
    model: Any, *, length: int = 50, batch: int = 4, seed: int = 0, tokenizer: Any = None
) -> ProbeResult:
    """Run the probe: ``batch`` rows of BOS + ``length`` random distinct tokens, repeated once.

    Tokens are drawn from the model's vocabulary (without its BOS) by a seeded generator, so the
    same seed gives the same probe. Raises ``ValueError`` if ``1 + 2 * length`` exceeds the
    model's context, naming the longest length that fits.
    """
    model = as_adapter(model, tokenizer=tokenizer)
    model.check()
    n_ctx = model.n_ctx
    if isinstance(length, bool) or not isinstance(length, int) or length < 2:
        raise ValueError(f"length must be an int of at least 2, got {length!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive int, got {batch!r}")
    positions = 1 + 2 * length
    if n_ctx and positions > n_ctx:
        raise ValueError(
            f"a probe of length {length} needs {positions} positions (BOS + 2 x {length}), but the "
            f"model's context holds {n_ctx}; use length <= {(n_ctx - 1) // 2}"
        )
    bos = _bos_id(model)
    vocab = np.setdiff1d(np.arange(model.vocab_size()[0]), [bos])
    if length > len(vocab):
        raise ValueError(f"length {length} exceeds the {len(vocab)} distinct tokens of the vocabulary")
    rng = np.random.default_rng(seed)
    segments = np.stack([rng.choice(vocab, size=length, replace=False) for _ in range(batch)])
    tokens = torch.as_tensor(
        np.concatenate([np.full((batch, 1), bos), segments, segments], axis=1), dtype=torch.long
    )

    logits, patterns = capture_patterns(model, tokens.to(model.device))
    pattern = torch.stack(patterns, 1).float().cpu()  # [batch, layer, head, q, k]
    induction = torch.stack([induction_score(pattern[b], tokens[b]) for b in range(batch)])
    previous = torch.stack([previous_token_score(pattern[b], tokens[b]) for b in range(batch)])
    log_probs = torch.log_softmax(logits.float().cpu(), dim=-1)
    loss = -log_probs[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
    return ProbeResult(
        tokens=tokens[0],
        length=length,
        batch=batch,
        seed=seed,
        induction=induction.mean(0).numpy(),
        previous_token=previous.mean(0).numpy(),
        loss=loss.mean(0).numpy(),
    )
