"""Generation: extend a run's token ids with tokens the model picks, through the adapter only.

A plain loop of full forward passes (no KV cache): generation here serves inspection, where the
sequences are short and the final run (every head's pattern over the whole sequence) costs one
more pass anyway. Each step asks :meth:`ModelAdapter.capture` for the logits with no layer
captured, picks the next id from the last position, and appends it. The ids never go through
text: the run shown afterwards is built from them (:func:`run_token_ids`), so a decoded text
that would tokenize differently cannot change what is shown.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ._adapters import ModelAdapter, as_adapter, check_token_ids


def check_generate_args(max_new_tokens: Any, temperature: Any, seed: Any) -> tuple[int, float, int | None]:
    """``max_new_tokens`` an int >= 1, ``temperature`` a finite number >= 0, ``seed`` an int or
    ``None``; raises ``TypeError``/``ValueError`` naming the argument."""
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)):
        raise TypeError(f"max_new_tokens must be a whole number (an int), got {type(max_new_tokens).__name__} {max_new_tokens!r}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {int(max_new_tokens)}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)):
        raise TypeError(f"temperature must be a number, got {type(temperature).__name__} {temperature!r}")
    if not math.isfinite(float(temperature)) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0: greedy), got {float(temperature)}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__} {seed!r}")
    return int(max_new_tokens), float(temperature), None if seed is None else int(seed)


def check_room(adapter: ModelAdapter, length: int, max_new_tokens: int) -> None:
    """Raise ``ValueError`` when ``length + max_new_tokens`` tokens pass the model's context."""
    n_ctx = adapter.n_ctx
    if n_ctx and length + max_new_tokens > n_ctx:
        room = n_ctx - length
        fits = f"at most {room} more fit" if room > 0 else "no more fit"
        raise ValueError(
            f"max_new_tokens={max_new_tokens} would make the sequence {length + max_new_tokens} tokens long, "
            f"but the model's context holds {n_ctx} ({adapter.n_ctx_source}); the sequence has {length} tokens, "
            f"so {fits}"
        )


def generate_ids(
    model: Any,
    token_ids: Any,
    max_new_tokens: int = 20,
    *,
    temperature: float = 0.0,
    seed: int | None = None,
) -> torch.Tensor:
    """``token_ids`` ``[pos]`` followed by ``max_new_tokens`` ids the model picks, one at a time.

    ``temperature == 0`` takes the most likely id at each step (greedy, deterministic); above 0
    it samples from ``softmax(logits / temperature)`` with a ``torch.Generator`` seeded by
    ``seed`` (``None``: a fresh random seed). Only ids of the model's vocabulary are picked
    (logits past it, padding of the unembedding, are ignored). Generation does not stop at an
    end-of-text token: it makes exactly ``max_new_tokens``. Raises ``ValueError`` when the
    result would pass the model's context (nothing is generated then).
    """
    max_new_tokens, temperature, seed = check_generate_args(max_new_tokens, temperature, seed)
    adapter = as_adapter(model)
    adapter.check()
    ids = check_token_ids(adapter, token_ids, what="token ids").reshape(-1).cpu()
    if ids.numel() == 0:
        raise ValueError("token ids must be one non-empty sequence to generate from")
    check_room(adapter, int(ids.numel()), max_new_tokens)
    vocab, _ = adapter.vocab_size()
    generator = torch.Generator(device="cpu")
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    out = ids.tolist()
    with adapter.inference():
        for _ in range(max_new_tokens):
            logits, _kept = adapter.capture(torch.tensor([out], dtype=torch.long, device=adapter.device), [], _nothing)
            if logits is None:
                raise TypeError(f"{adapter.name} returned no logits")
            last = logits[0, -1].detach().to("cpu", torch.float64)
            if vocab:
                last = last[:vocab]
            if temperature == 0.0:
                out.append(int(torch.argmax(last)))
            else:
                probs = torch.softmax(last / temperature, dim=-1)
                out.append(int(torch.multinomial(probs, 1, generator=generator)))
    return torch.tensor(out, dtype=torch.long)


def _nothing(layer: int, pattern: torch.Tensor) -> None:
    return None
