"""Heads with known roles, for the side panel's "Known heads" list.

A known head is ``{"role": str, "layer": int, "head": int}``. Within a role the heads go
strongest first: the side panel marks the first head of a role that has several as the
strongest. The role is shown as given.

The built-in model's heads come from its card (``card["roles"]``, measured at the end of
training), ordered by the card's own scores (:data:`BUILTIN_STRENGTH`): four previous-token
heads in layer 0, head 6 the strongest, and one induction head. GPT-2 Small's are the heads
that every source names (previous-token 4.11; induction 5.5 and 6.9: Wang et al. 2022, the
IOI paper, and the TransformerLens demos). 5.5 is listed first, so the panel marks it as the
stronger induction head: a public TransformerLens run of the induction score on repeated
random tokens gives about 0.93 for 5.5 and 0.91 for 6.9 (not checked here: GPT-2's weights
cannot be had offline). Other sources add more (induction 5.1, 7.2, 7.10 on repeated random
tokens), so the list is a starting point, not a census: head scores and the induction probe
find the rest. For any other model the list starts empty, and ``widget.known_heads`` can be
set from Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any

import numpy as np

from ._adapters import as_adapter

__all__ = ["BUILTIN_STRENGTH", "GPT2_SMALL_HEADS", "builtin_strength", "check_known_heads", "known_heads_of"]

#: How the built-in model's card measures each role's strength, ``[layer, head]`` arrays from
#: ``card["eval"]``: a previous-token head must hold on random bytes *and* on English, so its
#: strength is the smaller of the two; an induction head's is its mean induction score on
#: repeated random bytes. These are the measures the card's roles were picked by (score >= 0.5).
BUILTIN_STRENGTH: dict[str, tuple[str, ...]] = {
    "previous_token": ("previous_token_random_mean", "previous_token_english"),
    "induction": ("induction_mean",),
}

#: ``(role, layer, head)`` of GPT-2 Small's best-known heads.
GPT2_SMALL_HEADS: tuple[tuple[str, int, int], ...] = (
    ("previous_token", 4, 11),
    ("induction", 5, 5),
    ("induction", 6, 9),
)
_GPT2_SMALL_NAMES = frozenset({"gpt2", "gpt2-small"})


def known_heads_of(model: Any) -> list[dict[str, Any]]:
    """The known heads of ``model`` (or its adapter): the built-in model's card roles, GPT-2
    Small's (a TransformerLens or Hugging Face model named ``gpt2``, of GPT-2 Small's geometry),
    or none."""
    from ._builtin import builtin_card, is_builtin

    adapter = as_adapter(model)
    if is_builtin(adapter.model):
        card = builtin_card()
        out = []
        for role, heads in card["roles"].items():
            strength = builtin_strength(card, role)
            if strength is not None:  # strongest first; ties keep the card's order
                heads = sorted(heads, key=lambda lh: -strength[lh[0], lh[1]])
            out += [{"role": role, "layer": int(layer), "head": int(head)} for layer, head in heads]
        return out
    short = adapter.name.rsplit("/", 1)[-1].lower()
    if short in _GPT2_SMALL_NAMES and adapter.n_layers == 12 and adapter.n_heads == 12:
        return [{"role": role, "layer": layer, "head": head} for role, layer, head in GPT2_SMALL_HEADS]
    return []


def builtin_strength(card: Mapping[str, Any], role: str) -> np.ndarray | None:
    """``[layer, head]`` strength of every head of the built-in model for ``role``, from its card
    (:data:`BUILTIN_STRENGTH`); ``None`` for a role the card has no measure of."""
    keys = BUILTIN_STRENGTH.get(role)
    if keys is None or not all(k in card.get("eval", {}) for k in keys):
        return None
    return np.minimum.reduce([np.asarray(card["eval"][k], dtype=np.float64) for k in keys])


def check_known_heads(value: Any, n_layers: int, n_heads: int) -> list[dict[str, Any]]:
    """Validate a list of known heads against the model's geometry; return a clean copy.

    Each entry is a mapping with exactly the keys ``role`` (a non-empty string), ``layer`` and
    ``head`` (integers in range). Raises ``TypeError`` or ``ValueError`` naming the entry.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"known_heads must be a list of {{'role', 'layer', 'head'}} dicts, got {type(value).__name__}")
    out = []
    for i, entry in enumerate(value):
        if not isinstance(entry, Mapping) or set(entry) != {"role", "layer", "head"}:
            raise ValueError(
                f"known_heads[{i}] must be a dict with exactly the keys 'role', 'layer' and 'head', got {entry!r}"
            )
        role, layer, head = entry["role"], entry["layer"], entry["head"]
        if not isinstance(role, str) or not role.strip():
            raise ValueError(f"known_heads[{i}]: role must be a non-empty string, got {role!r}")
        for name, v, size in (("layer", layer, n_layers), ("head", head, n_heads)):
            if isinstance(v, bool) or not isinstance(v, Integral):
                raise ValueError(f"known_heads[{i}]: {name} must be an integer, got {v!r}")
            if not 0 <= v < size:
                raise ValueError(f"known_heads[{i}]: {name} {v} is out of range; the model has {size} {name}s")
        out.append({"role": role, "layer": int(layer), "head": int(head)})
    return out
