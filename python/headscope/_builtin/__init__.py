"""The built-in offline model: a tiny byte-level transformer with known heads.

A 2-layer attention-only TransformerLens 4.x model (``TransformerBridge``
built by ``boot_native``) whose weights ship inside the package, so headscope
can show real previous-token and induction heads with no download.  See
``docs/builtin-model.md`` for the recipe and the measured scores.

>>> from headscope._builtin import load_builtin, builtin_card
>>> model = load_builtin()
>>> model.to_str_tokens("héllo")
['<|bos|>', 'h', 'é', '⋯', 'l', 'l', 'o']
>>> layer, head = builtin_card()["roles"]["induction"][0]   # the main induction head
"""

from __future__ import annotations

import functools
import json
import threading
from importlib import resources
from typing import TYPE_CHECKING, Any

from headscope._builtin.tokenizer import (
    BOS,
    BOS_ID,
    CONTINUATION,
    ByteTokenizer,
    display_tokens,
)

if TYPE_CHECKING:
    from transformer_lens import TransformerBridge

__all__ = [
    "BOS",
    "BOS_ID",
    "CONTINUATION",
    "ByteTokenizer",
    "builtin_card",
    "builtin_weights_path",
    "display_tokens",
    "is_builtin",
    "load_builtin",
]

WEIGHTS_NAME = "builtin.safetensors"
CARD_NAME = "card.json"

_lock = threading.Lock()
_cache: dict[str, TransformerBridge] = {}


def builtin_weights_path() -> Any:
    """Path (a ``Traversable``) of the shipped safetensors file."""
    return resources.files(__name__).joinpath(WEIGHTS_NAME)


@functools.lru_cache(maxsize=1)
def _card_text() -> str:
    return resources.files(__name__).joinpath(CARD_NAME).read_text(encoding="utf-8")


def builtin_card() -> dict[str, Any]:
    """The model card (config, seed, recipe, training time, measured scores, head roles).

    ``card["roles"]`` maps a role to ``[layer, head]`` pairs, strongest first,
    e.g. ``{"previous_token": [[0, 3]], "induction": [[1, 2], [1, 5]]}``.
    A fresh dict on every call, so callers may modify it.
    """
    return json.loads(_card_text())


def load_builtin(device: str | None = None) -> TransformerBridge:
    """The built-in model as a TransformerLens ``TransformerBridge``, in eval mode.

    Built once per device and cached; every call returns the cached model put
    back in eval mode.  Needs no network: the weights and the byte tokenizer
    are inside the package.  Treat the returned model as shared (do not train
    it in place; build your own with :func:`headscope._builtin.model.build_model`).
    """
    from headscope._builtin.model import ModelSpec, build_model, load_weights

    key = str(device or "cpu")
    with _lock:
        model = _cache.get(key)
        if model is None:
            spec = ModelSpec.from_dict(builtin_card()["architecture"])
            model = build_model(spec, device=key)
            with resources.as_file(builtin_weights_path()) as path:
                load_weights(model, path)
            _cache[key] = model
        model.eval()
        return model


def is_builtin(model: Any) -> bool:
    """Whether ``model`` is the shipped built-in model (returned by :func:`load_builtin`).

    A model built with the same architecture but other weights is not: the card's head roles
    describe the shipped weights only.
    """
    with _lock:
        return any(model is cached for cached in _cache.values())
