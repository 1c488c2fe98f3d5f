"""The offline HTML export (``w.save_html``): the file's structure, its data read back exactly,
byte budgets, untrusted text, and the ``heads`` argument."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import headscope
from benchmarks.export import peaked_layers
from headscope._export import html as _export
from headscope._run import make_run
from headscope._widget import AttentionWidget

from conftest import causal_attention

TOKENS = ["<bos>", "The", " cat", " sat", " on", " the", " mat", "."]
HOSTILE = [
    "</script><script>window.pwned=1</script>",
    "<!--",
    "<img src=x onerror=window.pwned=2>",
    "a\u2028b\u2029c",
    "\u202eevil\u202c",
    "&amp; & </SCRIPT >",
    "-->",
    "\u2066isolate",
]


# --- reading an export back, as the page does -----------------------------------------------


class Page(HTMLParser):
    """Every element's tag, attributes and text (script and style text is raw)."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None], str]] = []
        self._open: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("meta", "link"):
            self.elements.append((tag, dict(attrs), ""))
        else:
            self._open.append((tag, dict(attrs), []))

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            name, attrs, text = self._open.pop()
            self.elements.append((name, attrs, "".join(text)))

    def scripts(self) -> list[tuple[dict[str, str | None], str]]:
        return [(attrs, text) for tag, attrs, text in self.elements if tag == "script"]

    def by_id(self, element_id: str) -> str:
        found = [text for _, attrs, text in self.elements if attrs.get("id") == element_id]
        assert len(found) == 1, f"{len(found)} elements with id {element_id}"
        return found[0]


def inflate(data: bytes) -> bytes:
    out = zlib.decompressobj(-15)
    raw = out.decompress(data) + out.flush()
    assert out.eof and not out.unused_data
    return raw


def document(page: Page) -> dict[str, Any]:
    return json.loads(page.by_id(_export.STATE_ID))


def head_bytes(page: Page, entry: dict[str, Any], n: int) -> tuple[bytes, bytes]:
    """Decode one head as boot.ts does: (scales, values) of the kernel's ``head`` message."""
    blob = base64.b64decode(page.by_id(f"headscope-head-{entry['layer']}-{entry['head']}"), validate=True)
    a, b, c = entry["parts"]
    assert a + b + c == len(blob)
    planes, mask, nonzero = inflate(blob[:a]), inflate(blob[a : a + b]), inflate(blob[a + b :])
    scales = np.frombuffer(planes, np.uint8).reshape(4, n).T.tobytes()
    size = n * (n + 1) // 2 if entry["packing"] == "tril" else n * n
    bits = np.unpackbits(np.frombuffer(mask, np.uint8), bitorder="little")[:size].astype(bool)
    values = np.zeros(size, np.uint8)
    values[bits] = np.frombuffer(nonzero, np.uint8)
    assert len(nonzero) == entry["nonzero"] == int(bits.sum())
    return scales, values.tobytes()


def trait_bytes(doc: dict[str, Any], name: str) -> bytes:
    packed = doc["bytes"][name]
    raw = inflate(base64.b64decode(packed["data"]))
    assert len(raw) == packed["size"]
    return raw


# --- structure and exact data ----------------------------------------------------------------


def test_export_holds_every_head_exactly_and_one_script(tmp_path: Path) -> None:
    w = headscope.show_attention(TOKENS, causal_attention(2, 3, len(TOKENS), seed=4), layer=1, head=2)
    path = w.save_html(tmp_path / "heads.html")
    assert path == tmp_path / "heads.html"
    text = path.read_text(encoding="ascii")  # ASCII through and through
    assert text.startswith("<!doctype html>")
    page = Page(text)
    doc = document(page)
    assert (doc["format"], doc["version"], doc["seq_len"], doc["total_heads"]) == ("headscope-export", 1, 8, 6)

    run = w.run_result
    assert [(e["layer"], e["head"]) for e in doc["heads"]] == [(l, h) for l in range(2) for h in range(3)]
    for entry in doc["heads"]:
        packing, scales, values = run.encode_head(entry["layer"], entry["head"])
        assert entry["packing"] == packing == "tril"
        assert head_bytes(page, entry, len(TOKENS)) == (scales, values)

    traits = doc["traits"]
    assert traits["tokens"] == TOKENS and (traits["layer"], traits["head"]) == (1, 2)
    assert traits["can_run"] is False and traits["status"] == "ready" and traits["error"] == ""
    assert traits["note"] == "static export: no kernel"
    assert trait_bytes(doc, "atlas") == w.atlas
    # the exact scores, for the atlas's score picker without a kernel
    scores = run.head_scores()
    assert traits["score_names"] == list(scores) and traits["scores_run_id"] == traits["run_id"] == w.run_id
    got = np.frombuffer(trait_bytes(doc, "scores"), "<f4").reshape(len(scores), 2, 3)
    np.testing.assert_array_equal(got, np.stack(list(scores.values())).astype("<f4"))

    # exactly one script runs: the front end, allowed by its hash in the page's CSP
    scripts = page.scripts()
    classic = [body for attrs, body in scripts if "type" not in attrs]
    assert len(classic) == 1 and all("src" not in attrs for attrs, _ in scripts)
    assert {attrs.get("type") for attrs, _ in scripts} == {None, "application/json", "application/octet-stream"}
    csp = next(a["content"] for tag, a, _ in page.elements if tag == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    digest = base64.b64encode(hashlib.sha256(classic[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in str(csp) and "default-src 'none'" in str(csp)
    # the selected head comes before the script (the first paint needs nothing after it)
    order = [attrs.get("id") for attrs, _ in scripts]
    assert order.index("headscope-head-1-2") < order.index(None) < order.index("headscope-head-0-0")


def test_nothing_in_the_page_loads_from_anywhere() -> None:
    w = headscope.show_attention(TOKENS, causal_attention(1, 2, len(TOKENS)))
    page = Page(_export.export_html(w))
    for tag, attrs, _ in page.elements:
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            value = attrs.get(name)
            assert value is None or value.startswith("data:"), (tag, name, value)
    styles = " ".join(text for tag, _, text in page.elements if tag == "style")
    assert "@import" not in styles and not re.search(r"url\((?!['\"]?data:)", styles)
    assert not re.search(r"\bfetch\(|XMLHttpRequest|WebSocket|importScripts|sendBeacon", page.scripts()[-1][1] + _export.bundle("export.js"))


def test_a_model_run_exports_and_keeps_its_note_after_the_no_kernel_one(tmp_path: Path) -> None:
    w = headscope.show(None, "ab ab ab")
    w.note = "probe: loss 1.2 then 0.3"
    doc = document(Page(w.save_html(tmp_path / "m.html").read_text()))
    assert doc["traits"]["note"] == "static export: no kernel · probe: loss 1.2 then 0.3"
    assert doc["traits"]["model_name"] == w.model_name and doc["traits"]["prompt"] == "ab ab ab"
    assert doc["traits"]["known_heads"] == w.known_heads
    assert w.note == "probe: loss 1.2 then 0.3" and w.can_run  # the widget itself is untouched


# --- budgets (byte counts are deterministic) -------------------------------------------------


def test_budget_144_heads_of_1024_tokens_under_24_mb() -> None:
    n = 1024
    w = headscope.show_attention([f" t{i}" for i in range(n)], peaked_layers(12, 12, n))
    size = len(_export.export_html(w))
    assert size <= 24_000_000, f"{size:,} bytes"


def test_budget_builtin_model_256_tokens_under_1_mb() -> None:
    w = headscope.show(None, ("The cat sat on the mat and then it ran away. " * 6)[:255])
    assert len(w.tokens) == 256 and w.n_layers * w.n_heads == 16
    size = len(_export.export_html(w))
    assert size <= 1_000_000, f"{size:,} bytes"


# --- untrusted text --------------------------------------------------------------------------


def hostile_widget() -> AttentionWidget:
    run = make_run(HOSTILE, causal_attention(2, 2, len(HOSTILE), seed=1),
                   prompt="</script><!-- " + "".join(HOSTILE), model_name="</title><script>x()</script>\u202e\u2028")
    w = AttentionWidget(run)
    w.known_heads = [{"role": role, "layer": 1, "head": 0} for role in HOSTILE[:3]]
    w.note = "<!-- </script> \u2029"
    w.history = HOSTILE[:4]
    return w


def test_hostile_text_stays_data() -> None:
    w = hostile_widget()
    text = _export.export_html(w)
    assert text.isascii()
    assert "<!--" not in text and "-->" not in text
    page = Page(text)
    scripts = page.scripts()
    # every "</script" in the file closes one of the file's own script elements
    assert len(re.findall(r"</script", text, re.IGNORECASE)) == len(scripts)
    assert text.count("<script") == len(scripts)
    assert "<img" not in text.lower() and "<title>" in text and text.count("</title>") == 1
    for attrs, body in scripts:
        if attrs.get("type") == "application/json":
            assert not re.search("[<>&\u2028\u2029]", body)
    traits = document(page)["traits"]
    assert traits["tokens"] == HOSTILE
    assert traits["prompt"] == w.prompt and traits["model_name"] == w.model_name
    assert [k["role"] for k in traits["known_heads"]] == HOSTILE[:3] and traits["history"] == HOSTILE[:4]
    assert traits["note"].endswith(w.note)
    title = next(body for tag, _, body in page.elements if tag == "title")
    assert title == "headscope: </title><script>x()</script> (8 tokens)"  # bidi controls dropped


def test_script_json_escapes_what_ends_a_script() -> None:
    value = {"t": "</script><!--\u2028\u2029&>\u202e"}
    text = _export.script_json(value)
    assert text.isascii() and not re.search("[<>&]", text)
    assert json.loads(text) == value


@pytest.mark.parametrize("bad", ["x</script>y", "x</SCRIPT y", "a<!--b"])
def test_a_bundle_that_would_end_its_element_is_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    w = headscope.show_attention(TOKENS, causal_attention(1, 1, len(TOKENS)))
    real = _export.bundle
    monkeypatch.setattr(_export, "bundle", lambda name: bad if name == "export.js" else real(name))
    with pytest.raises(_export.ExportError, match="cannot be inlined"):
        _export.export_html(w)


# --- the heads argument ----------------------------------------------------------------------


def test_a_list_of_heads_exports_those_and_selects_one_of_them() -> None:
    w = headscope.show_attention(TOKENS, causal_attention(3, 4, len(TOKENS)), layer=0, head=0)
    page = Page(_export.export_html(w, heads=[(2, 3), (np.int64(1), 0), [2, 3]]))
    doc = document(page)
    assert [(e["layer"], e["head"]) for e in doc["heads"]] == [(1, 0), (2, 3)]
    assert (doc["traits"]["layer"], doc["traits"]["head"]) == (1, 0)  # (0, 0) is not in the file
    ids = [a.get("id") for a, _ in page.scripts() if a.get("type") == "application/octet-stream"]
    assert ids == ["headscope-head-1-0", "headscope-head-2-3"]
    assert doc["total_heads"] == 12


@pytest.mark.parametrize(
    ("heads", "error", "message"),
    [
        ("some", ValueError, 'heads must be "all" or a list'),
        (5, TypeError, 'heads must be "all" or a list'),
        ([], ValueError, "heads is empty"),
        ([(0, 0), (3, 0)], ValueError, r"heads\[1\]: layer 3 is out of range: the model has 3 layers \(0-2\)"),
        ([(0, 4)], ValueError, r"heads\[0\]: head 4 is out of range"),
        ([(0, -1)], ValueError, "head -1 is out of range"),
        ([(True, 0)], TypeError, r"heads\[0\]: layer must be an int, got bool"),
        ([(0, 1.0)], TypeError, "head must be an int, got float"),
        ([(0, 1, 2)], ValueError, r"heads\[0\] must be a \(layer, head\) pair, got 3 values"),
        (["01"], TypeError, r"heads\[0\] must be a \(layer, head\) pair, got str"),
        ([0, 1], TypeError, r"heads\[0\] must be a \(layer, head\) pair, got int"),
    ],
)
def test_bad_heads_are_refused_with_a_clear_error(tmp_path: Path, heads: Any, error: type, message: str) -> None:
    w = headscope.show_attention(TOKENS, causal_attention(3, 4, len(TOKENS)))
    with pytest.raises(error, match=message):
        w.save_html(tmp_path / "x.html", heads=heads)
    assert not (tmp_path / "x.html").exists()


def test_attention_that_is_not_causal_exports_whole_rows() -> None:
    rng = np.random.default_rng(2)
    logits = rng.normal(scale=3.0, size=(1, 2, len(TOKENS), len(TOKENS)))
    attn = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    w = headscope.show_attention(TOKENS, attn, causal=False)
    page = Page(_export.export_html(w))
    doc = document(page)
    for entry in doc["heads"]:
        packing, scales, values = w.run_result.encode_head(entry["layer"], entry["head"])
        assert entry["packing"] == packing == "full"
        assert head_bytes(page, entry, len(TOKENS)) == (scales, values)
