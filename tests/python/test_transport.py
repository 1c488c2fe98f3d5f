"""The text transport (docs/wire.md, "Transport"): for hosts that drop binary buffers."""

from __future__ import annotations

import base64

import numpy as np
import pytest

import headscope
from headscope._widget.state import BINARY_PROBE, BYTES_TRAITS

from conftest import Recorder


@pytest.fixture
def widget(make_attention, recorder: Recorder):
    w = headscope.show_attention(["<bos>", "a", "b", "a", "b"], make_attention(2, 3, 5))
    w.send = recorder
    return w


def test_binary_by_default_with_a_constant_probe(widget) -> None:
    assert widget.transport == "binary" and widget.text_data == {}
    assert widget.binary_probe == BINARY_PROBE == b"hs\x01\xff"
    assert widget.get_state()["binary_probe"] == BINARY_PROBE


def test_text_mode_mirrors_every_bytes_trait_and_follows_changes(widget, recorder: Recorder) -> None:
    widget._handle_custom_msg({"type": "transport", "mode": "text", "reason": "test"}, [])
    assert widget.transport == "text"
    assert set(widget.text_data) == set(BYTES_TRAITS)
    assert base64.b64decode(widget.text_data["atlas"]) == widget.atlas and widget.atlas
    widget._handle_custom_msg({"type": "request_scores"}, [])
    assert widget.scores and base64.b64decode(widget.text_data["scores"]) == widget.scores


def test_a_head_under_text_mode_carries_its_bytes_as_base64(widget, recorder: Recorder, make_attention) -> None:
    widget._handle_custom_msg({"type": "request_head", "request_id": "x-1", "layer": 1, "head": 2, "selected": False}, [])
    binary, buffers = recorder.last
    assert len(buffers) == 2 and "scales_b64" not in binary
    widget._handle_custom_msg({"type": "transport", "mode": "text"}, [])
    widget._handle_custom_msg({"type": "request_head", "request_id": "x-2", "layer": 1, "head": 2, "selected": False}, [])
    text, none = recorder.last
    assert none == [] and text["request_id"] == "x-2"
    assert base64.b64decode(text["scales_b64"]) == buffers[0]
    assert base64.b64decode(text["values_b64"]) == buffers[1]
    scales = np.frombuffer(base64.b64decode(text["scales_b64"]), "<f4")
    assert scales.shape == (5,) and np.all(scales > 0)


def test_other_transport_messages_change_nothing(widget) -> None:
    for content in ({"type": "transport", "mode": "binary"}, {"type": "transport"}, {"type": "transport", "mode": ["text"]}):
        widget._handle_custom_msg(content, [])
        assert widget.transport == "binary" and widget.status == "ready"
    widget.set_state({"transport": "carrier pigeon"})
    assert widget.transport == "binary" and "transport must be 'binary' or 'text'" in widget.error
