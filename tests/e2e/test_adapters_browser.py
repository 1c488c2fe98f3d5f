"""Tier A with a Hugging Face model behind the widget: hover, head switch and a re-run, each
answered by the real kernel side through the transformers adapter."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import headscope
from display import display_token
from test_host_page import Host, host, parse_pair  # noqa: F401  (host is a fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
from hf_tiny import make_model, make_tokenizer  # noqa: E402

pytestmark = pytest.mark.browser


def test_a_hugging_face_model_hovers_switches_heads_and_runs_again(host: Host) -> None:
    tok = make_tokenizer()
    model = make_model("llama")
    w = headscope.show(model, "The cat sat on the mat. The cat sat", tokenizer=tok)
    root = host.mount("a", w)
    assert root.locator(".hs-tok").all_text_contents() == [display_token(t, spaces=False) for t in w.tokens]
    assert w.model_name == "LlamaForCausalLM" and "LlamaForCausalLM" in root.inner_text()

    # hover: the tooltip gives the weight of the head's own row, within the wire's precision
    host.page.hover("#slot-a .hs-tok[data-index='6']")
    query, key, shown = parse_pair(host.tooltip("a"))
    row = w.run_result.head(0, 0)[6]
    assert query == 6 and key == int(np.argmax(row)) and abs(shown - float(row[key])) <= 1 / 255

    # head switch from the keyboard: the kernel follows, and the new head is drawn
    root.locator(".hs-atlas-canvas").focus()
    host.page.keyboard.press("ArrowDown")
    host.page.keyboard.press("ArrowRight")
    host.page.wait_for_function("() => window.hsModels.a.get('layer') === 1 && window.hsModels.a.get('head') === 1")
    assert (w.layer, w.head) == (1, 1)
    host.wait_loaded("a")
    host.page.hover("#slot-a .hs-tok[data-index='4']")
    query, key, shown = parse_pair(host.tooltip("a"))
    row = w.run_result.head(1, 1)[4]
    assert query == 4 and abs(shown - float(row[key])) <= 1 / 255

    # a new prompt runs the model again through the adapter; the user's attention is untouched
    box = root.locator(".hs-prompt-input")
    box.fill("Mary gave a book to John")
    box.press("Enter")
    host.page.wait_for_function(
        "() => window.hsModels.a.get('prompt') === 'Mary gave a book to John' && window.hsModels.a.get('status') === 'ready'"
    )
    host.wait_loaded("a")
    assert root.locator(".hs-tok").all_text_contents() == [display_token(t, spaces=False) for t in w.tokens]
    assert w.tokens[0] == tok.bos_token and "".join(w.tokens[1:]) == "Mary gave a book to John"
    assert model.config._attn_implementation == "sdpa"
