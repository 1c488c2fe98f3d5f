"""Loading models by name: the built-in model, or TransformerLens models from the HF cache/hub."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any, Iterator
from urllib.parse import urlparse

#: Seconds to wait for the model hub before treating it as unreachable.
HUB_PROBE_TIMEOUT = 3.0


class ModelUnavailableError(OSError):
    """A model's weights are neither in the local cache nor reachable on the hub."""


def _hub_endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT) -> bool:
    """Whether a TCP connection to the model hub opens within ``timeout`` seconds."""
    url = urlparse(_hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _offline_hub() -> Iterator[None]:
    """Make huggingface_hub (and transformers, which asks it) use the local cache only."""
    from huggingface_hub import constants

    saved = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = saved


def _unavailable(name: str, offline_reason: str) -> ModelUnavailableError:
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HF_HOME") or "~/.cache/huggingface"
    return ModelUnavailableError(
        f"cannot load {name!r}: its weights are not in the local Hugging Face cache ({cache}) "
        f"and {offline_reason}. To get them, run headscope.load_model({name!r}) once on a "
        "machine that can reach the hub (it fills the cache), then copy the cache folder here; "
        "or load the model yourself from local files and pass it to headscope.show. "
        "headscope.load_model('builtin') needs no download"
    )


def load_model(name: str = "builtin", **kwargs: Any) -> Any:
    """Load a model for :func:`headscope.show`.

    ``"builtin"`` returns headscope's own small model (shipped with the package, no download).
    Any other name goes to TransformerLens's ``TransformerBridge.boot_transformers`` (keyword
    arguments are passed on), which reads the local Hugging Face cache and the hub. When the hub
    cannot be reached, only the cache is tried, and a missing model fails at once with
    :class:`ModelUnavailableError`.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty model name, got {name!r}")
    if name == "builtin":
        if kwargs:
            raise TypeError(f"the built-in model takes no options, got {sorted(kwargs)}")
        from ._builtin import load_builtin

        return load_builtin()

    from huggingface_hub import constants
    from transformer_lens import TransformerBridge

    reason = ""
    context: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if constants.HF_HUB_OFFLINE:
        reason = "HF_HUB_OFFLINE is set"
    elif not hub_reachable():
        reason = f"the hub ({_hub_endpoint()}) cannot be reached"
        context = _offline_hub()
    with context:
        try:
            model = TransformerBridge.boot_transformers(name, **kwargs)
        except OSError as exc:  # transformers raises OSError for files missing from the cache
            if reason:
                raise _unavailable(name, reason) from exc
            raise
    model.eval()
    return model
