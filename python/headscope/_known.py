"""Heads with known roles, for the side panel's "Known heads" list.

A known head is ``{"role": str, "layer": int, "head": int}``. The built-in model's come from
its card (``card["roles"]``, measured at the end of training); GPT-2 Small's are the heads
that every source names (previous-token 4.11; induction 5.5 and 6.9: Wang et al. 2022, the
IOI paper, and the TransformerLens demos). Other sources add more (induction 5.1, 7.2, 7.10
on repeated random tokens), so the list is a starting point, not a census: head scores and
the induction probe find the rest. For any other model the list starts empty, and
``widget.known_heads`` can be set from Python.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral
from typing import Any

from ._adapters import model_name

__all__ = ["GPT2_SMALL_HEADS", "check_known_heads", "known_heads_of"]

#: ``(role, layer, head)`` of GPT-2 Small's best-known heads.
GPT2_SMALL_HEADS: tuple[tuple[str, int, int], ...] = (
    ("previous_token", 4, 11),
    ("induction", 5, 5),
    ("induction", 6, 9),
)
_GPT2_SMALL_NAMES = frozenset({"gpt2", "gpt2-small"})


def known_heads_of(model: Any) -> list[dict[str, Any]]:
    """The known heads of ``model``: the built-in model's card roles, GPT-2 Small's, or none."""
    from ._builtin import builtin_card, is_builtin

    if is_builtin(model):
        return [
            {"role": role, "layer": int(layer), "head": int(head)}
            for role, heads in builtin_card()["roles"].items()
            for layer, head in heads
        ]
    cfg = getattr(model, "cfg", None)
    short = model_name(model).rsplit("/", 1)[-1].lower()
    if short in _GPT2_SMALL_NAMES and getattr(cfg, "n_layers", None) == 12 and getattr(cfg, "n_heads", None) == 12:
        return [{"role": role, "layer": layer, "head": head} for role, layer, head in GPT2_SMALL_HEADS]
    return []


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
