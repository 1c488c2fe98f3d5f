"""Loading models by name: clear, fast failures when the hub is out of reach."""

from __future__ import annotations

import socket
from typing import Any

import pytest

import headscope
from headscope import _loading


def test_offline_env_fails_with_a_clear_message() -> None:
    with pytest.raises(headscope.ModelUnavailableError) as info:
        headscope.load_model("gpt2")
    message = str(info.value)
    assert "'gpt2'" in message and "local Hugging Face cache" in message
    assert "HF_HUB_OFFLINE is set" in message and "load_model('builtin')" in message


def test_unreachable_hub_uses_the_cache_only(monkeypatch) -> None:
    """Without HF_HUB_OFFLINE, an unreachable hub must not be retried: the cache alone is read."""
    from huggingface_hub import constants

    lookups: list[Any] = []

    def no_network(*args: Any, **kwargs: Any) -> Any:
        lookups.append(args)
        raise OSError("network is off in tests")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(_loading, "hub_reachable", lambda timeout=3.0: False)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(headscope.ModelUnavailableError, match="cannot be reached"):
        headscope.load_model("gpt2")
    assert lookups == []  # no connection was even attempted
    assert constants.HF_HUB_OFFLINE is False  # restored


def test_hub_probe_reports_unreachable(monkeypatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    assert _loading.hub_reachable(timeout=0.1) is False


@pytest.mark.parametrize("name", [None, "", 3])
def test_bad_names(name: Any) -> None:
    with pytest.raises(TypeError, match="non-empty model name"):
        headscope.load_model(name)


def test_builtin_takes_no_options() -> None:
    with pytest.raises(TypeError, match="takes no options"):
        headscope.load_model("builtin", device="cpu")
