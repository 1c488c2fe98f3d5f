"""The static fallback in the widget's mimebundle: a PNG of the shown head and script-free HTML."""

from __future__ import annotations

import base64
import html
import re
import struct
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import headscope
from headscope._export import fallback as fb
from headscope._export import font
from headscope._export.png import SIGNATURE, encode_indexed

from conftest import causal_attention

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
ROOT = Path(__file__).resolve().parents[2]
#: The fallback's budget at 1024 tokens: the PNG's base64 text plus the HTML, as a notebook saves them.
BUDGET = 150_000

HOSTILE = [
    "</script><script>alert(1)</script>",
    "<!--",
    "-->",
    '" onerror="alert(1)',
    "<img src=x onerror=alert(1)>",
    "\u202eevil",
    "\u2066x",
    "https://example.com/a.png",
    "&amp;",
    "\x00\x1b",
    "שלום",
]


# --- a PNG reader, written for the tests -------------------------------------------------
def read_png(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(pixels uint8 [height, width] as palette indices, palette uint8 [colours, 3]) of an
    8-bit indexed PNG, checking every chunk's CRC and undoing filters None, Sub and Up."""
    assert data[:8] == SIGNATURE
    at, chunks = 8, []
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, payload = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + payload) & 0xFFFFFFFF == crc, kind
        chunks.append((kind, payload))
        at += 12 + length
    assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 3, 0)
    palette = np.frombuffer(dict(chunks)[b"PLTE"], dtype=np.uint8).reshape(-1, 3)
    raw = np.frombuffer(zlib.decompress(b"".join(p for k, p in chunks if k == b"IDAT")), dtype=np.uint8)
    raw = raw.reshape(height, width + 1)
    pixels = np.zeros((height, width), dtype=np.uint8)
    for y in range(height):
        kind, row = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 1:
            row = np.cumsum(row) % 256
        elif kind == 2:
            row = (row + (pixels[y - 1] if y else 0)) % 256
        else:
            assert kind == 0, f"filter {kind}"
        pixels[y] = row
    return pixels, palette


def ihdr_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == SIGNATURE and png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.comments: list[str] = []
        self.text: list[str] = []
        self.bdi: list[str] = []
        self._in_bdi = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "bdi":
            self._in_bdi += 1
            self.bdi.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "bdi":
            self._in_bdi -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_bdi:
            self.bdi[-1] += data

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def assert_script_free(page: str) -> Tags:
    parsed = Tags()
    parsed.feed(page)
    parsed.close()
    assert not parsed.comments
    for tag, attrs in parsed.tags:
        assert tag not in ("script", "iframe", "object", "embed", "link", "meta", "style", "base", "form")
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name)
            if name in ("src", "href", "srcset", "action", "xlink:href"):
                assert (value or "").startswith("data:image/png;base64,"), (tag, name, value)
            assert "url(" not in (value or "").lower() and "javascript:" not in (value or "").lower()
    assert "<script" not in page.lower() and "<!--" not in page
    return parsed


def decode_bundle(data: dict[str, Any]) -> bytes:
    png = base64.b64decode(data["image/png"], validate=True)
    inline = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', data["text/html"])
    assert inline is not None and base64.b64decode(inline.group(1)) == png
    return png


# --- the PNG writer and the font -----------------------------------------------------------
def test_png_writer_round_trips_through_an_independent_reader() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 7, size=(13, 29), dtype=np.uint8)
    pixels[5:9] = pixels[4]  # repeated rows take the Up filter
    palette = rng.integers(0, 256, size=(7, 3), dtype=np.uint8)
    png = encode_indexed(pixels, palette)
    got, got_palette = read_png(png)
    assert ihdr_size(png) == (29, 13)
    np.testing.assert_array_equal(got, pixels)
    np.testing.assert_array_equal(got_palette, palette)
    assert encode_indexed(pixels, palette) == png  # deterministic
    with pytest.raises(ValueError, match="outside the 7-colour palette"):
        encode_indexed(pixels + 1, palette)
    with pytest.raises(ValueError, match="palette"):
        encode_indexed(pixels, np.zeros((300, 3), np.uint8))


def test_palette_is_the_widgets_light_colour_table() -> None:
    source = (ROOT / "js" / "renderers" / "lut.ts").read_text(encoding="utf-8")
    light = re.search(r"light: \[(.*?)\],\n  dark", source, re.S).group(1)
    stops = [(float(p), h) for p, h in re.findall(r'\[([0-9.]+), "(#[0-9a-f]{6})"\]', light)]
    assert tuple(stops) == fb.LIGHT_STOPS
    lut = fb.PALETTE
    assert lut.shape == (256, 3)
    assert lut[0].tolist() == [0xF8, 0xFA, 0xFC] and lut[255].tolist() == [0x1E, 0x14, 0x57]
    assert lut[51].tolist() == [0xC7, 0xD7, 0xFE]  # 51 / 255 = 0.2, a stop
    # JavaScript's Math.round(x) is floor(x + 0.5): entry 1 of the red channel, 248 + (199-248)/51
    assert lut[1, 0] == int(np.floor(248 + (199 - 248) / 51 + 0.5))
    np.testing.assert_array_equal(fb.levels(np.array([0, 0.5 / 255, 1.49 / 255, 1, 1.2, -0.1, np.nan])),
                                  [0, 1, 1, 255, 255, 0, 0])


def test_font_covers_printable_ascii_and_stands_in_for_the_rest() -> None:
    assert font.GLYPHS.shape == (len(font.CHARS), font.HEIGHT, font.WIDTH)
    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    assert font.CHARS.startswith(printable)
    shapes = {font.GLYPHS[i].tobytes() for i in range(len(font.CHARS))}
    assert len(shapes) == len(font.CHARS)  # no two glyphs alike
    assert font.drawable(" a\n\tb") == "·a⏎→b"
    assert font.drawable("a b", spaces=False) == "a b"
    assert font.drawable("\x00\x1b\x7f\x85\u202e\u200d") == "‹NUL›‹ESC›‹DEL›‹0x85›‹RLO›‹ZWJ›"
    assert font.drawable("café “ok” – naïve") == 'café'.replace("é", "e") + '·"ok"·-·naive'
    assert font.drawable("日\u00a0") == "□␣"
    assert font.clip("abcdef", 4) == "abc…" and font.clip("abc", 4) == "abc"
    assert font.render("Hi").shape == (font.HEIGHT, 2 * font.ADVANCE)


# --- the layout -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "block", "cell", "step"),
    [(1, 1, 24, 1), (48, 1, 10, 1), (128, 1, 8, 1), (129, 1, 1, 25), (256, 1, 1, 25), (512, 2, 1, 50),
     (1024, 4, 1, 100), (4096, 16, 1, 500)],
)
def test_layout_labels_every_token_up_to_128_and_pools_long_prompts(n: int, block: int, cell: int, step: int) -> None:
    plan = fb.layout(n)
    assert (plan.block, plan.cell, plan.step) == (block, cell, step)
    assert plan.side <= max(fb.MAX_SIDE, 128 * fb.MIN_LABELLED_CELL)
    # labels never closer than the font's height
    assert plan.step * plan.cell / plan.block >= font.HEIGHT
    if n <= fb.LABEL_ALL:
        assert plan.notes() == ["every token labelled"]
    else:
        assert plan.notes()[0] == f"every {step}th token labelled (position:token)"
        assert (len(plan.notes()) == 2) == (block > 1)


# --- the widget's bundle --------------------------------------------------------------------
def test_bundle_keeps_anywidgets_view_and_metadata_and_adds_the_fallback(monkeypatch) -> None:
    import anywidget._util

    colab = {WIDGET_VIEW: {"colab": {"custom_widget_manager": {"url": "https://example.invalid/manager.js"}}}}
    monkeypatch.setattr(anywidget._util, "get_repr_metadata", lambda: colab)
    w = headscope.show(None, "The cat sat on the mat. The cat sat on the mat.", layer=1, head=0)
    try:
        data, metadata = w._repr_mimebundle_()
        assert metadata == colab
        assert set(data) == {"text/plain", WIDGET_VIEW, "image/png", "text/html"}
        assert data[WIDGET_VIEW]["model_id"] == w.model_id
        png = decode_bundle(data)
        run = w.run_result
        pic = fb.picture(run.tokens, run.head(1, 0), title="x", extra="prompt")
        assert ihdr_size(png)[1] == pic.height  # same layout as the function the widget calls
        # IPython's formatter passes include/exclude; an excluded fallback is not built
        data, _ = w._repr_mimebundle_(exclude={"image/png", "text/html"})
        assert set(data) == {"text/plain", WIDGET_VIEW}
        data, _ = w._repr_mimebundle_(include={"image/png"})
        assert "image/png" in data and "text/html" not in data
    finally:
        w.close()


def test_the_png_shows_the_heads_weights_in_the_widgets_colours() -> None:
    tokens = ["<bos>", "A", " cat", " sat", " on", " the", " mat", "."]
    attention = causal_attention(2, 3, len(tokens), seed=3)
    w = headscope.show_attention(tokens, attention, layer=1, head=2)
    try:
        data, _ = w._repr_mimebundle_()
        png = decode_bundle(data)
        pixels, palette = read_png(png)
        np.testing.assert_array_equal(palette, fb.PALETTE)
        run = w.run_result
        weights = run.head(1, 2)
        pic = fb.picture(tokens, weights, title="attention: layer 1, head 2")
        assert ihdr_size(png) == (pic.width, pic.height)
        cell = pic.plan.cell
        for q in range(len(tokens)):
            for k in range(len(tokens)):
                y, x = pic.y + q * cell + cell // 2, pic.x + k * cell + cell // 2
                level = int(np.floor(weights[q, k] * 255 + 0.5))
                assert pixels[y, x] == level, (q, k)
                assert palette[pixels[y, x]].tolist() == fb.PALETTE[level].tolist()
                # the whole cell has that colour
                block = pixels[pic.y + q * cell : pic.y + (q + 1) * cell, pic.x + k * cell : pic.x + (k + 1) * cell]
                assert (block == level).all()
        assert weights[0, 0] == pytest.approx(1.0) and pixels[pic.y, pic.x] == 255
        assert (pixels[pic.y, pic.x + cell : pic.x + len(tokens) * cell] == 0).all()  # above the diagonal
        # the query labels are drawn in ink left of the pattern, the key labels below it
        assert (pixels[pic.y : pic.y + len(tokens) * cell, : pic.x - 2] == 255).any()
        assert (pixels[pic.y + len(tokens) * cell + 2 :, pic.x : pic.x + len(tokens) * cell] == 255).any()
    finally:
        w.close()


def test_the_fallback_shows_the_head_on_screen_at_display_and_is_built_only_then(monkeypatch) -> None:
    from headscope._widget import widget as widget_module

    tokens = [f" t{i}" for i in range(10)]
    w = headscope.show_attention(tokens, causal_attention(2, 4, 10, seed=1))
    calls: list[tuple[int, int]] = []
    real = widget_module.fallback

    def counting(**kwargs: Any) -> dict[str, Any]:
        calls.append((kwargs["layer"], kwargs["head"]))
        return real(**kwargs)

    monkeypatch.setattr(widget_module, "fallback", counting)
    try:
        first, _ = w._repr_mimebundle_()
        for layer in range(2):
            for head in range(4):
                w.layer, w.head = layer, head
        w.note = "a note"  # any other trait change: still nothing built
        assert calls == [(0, 0)]
        w.layer, w.head = 1, 3
        second, _ = w._repr_mimebundle_()
        assert calls == [(0, 0), (1, 3)]
        assert "layer 1, head 3" in second["text/html"] and "layer 0, head 0" in first["text/html"]
        run = w.run_result
        expected = fb.picture(tokens, run.head(1, 3), title="attention: layer 1, head 3", extra="")
        assert base64.b64decode(second["image/png"]) == expected.png
        assert second["image/png"] != first["image/png"]
    finally:
        w.close()


def test_a_closed_widget_displays_without_error() -> None:
    from IPython.core.formatters import DisplayFormatter

    w = headscope.show_attention(["a", "b"], causal_attention(1, 1, 2))
    formatter = DisplayFormatter()
    assert "image/png" in formatter.format(w)[0]
    w.close()
    data, _ = formatter.format(w)  # ipywidgets drops the bundle of a closed widget: plain text
    assert set(data) == {"text/plain"}
    assert w._static_fallback() == {}


def test_a_picture_that_fails_leaves_the_widget_view_and_says_why(monkeypatch) -> None:
    w = headscope.show_attention(["a", "b"], causal_attention(1, 1, 2))
    try:
        def broken(*args: Any) -> Any:
            raise RuntimeError("no <head> here")

        monkeypatch.setattr(w.run_result, "head", broken)
        data, _ = w._repr_mimebundle_()
        assert WIDGET_VIEW in data and "image/png" not in data
        assert data["text/html"] == "<p>headscope: no static picture (RuntimeError: no &lt;head&gt; here)</p>"
    finally:
        w.close()


def test_a_parked_widget_computes_its_run_again_for_the_picture(tiny_model) -> None:
    w = headscope.show(tiny_model, "ab cd ab cd", layer=1, head=3)
    try:
        before, _ = w._repr_mimebundle_()
        w._park()
        assert w._run is None
        after, _ = w._repr_mimebundle_()
        assert after["image/png"] == before["image/png"]
    finally:
        w.close()


# --- untrusted text -----------------------------------------------------------------------
def test_hostile_tokens_prompt_and_model_name_stay_text() -> None:
    tokens = ["<bos>", *HOSTILE]
    entries = fb.fallback(
        tokens=tokens,
        weights=causal_attention(1, 1, len(tokens))[0, 0],
        model_name='</script><img src="https://example.com/x" onload=alert(1)>\u202e',
        prompt="".join(HOSTILE) + "\n<!-- end",
        layer=0,
        head=0,
    )
    page = entries["text/html"]
    parsed = assert_script_free(page)
    assert [t for t, _ in parsed.tags].count("img") == 1
    for control in ("\u202e", "\u2066", "\x00", "\x1b"):
        assert control not in page  # shown by name, never as the character
    # each token in its own <bdi>, its text exactly the widget's visible form of the token
    token_chips = parsed.bdi[2:]
    assert len(token_chips) == len(tokens)
    assert token_chips == [fb._visible(t, spaces=True) for t in tokens]
    assert "‹RLO›evil" in token_chips and "‹NUL›‹ESC›" in token_chips and "שלום" in token_chips
    # model name and prompt: escaped text
    assert parsed.bdi[0] == '</script><img src="https://example.com/x" onload=alert(1)>‹RLO›'
    assert parsed.bdi[1] == fb._visible("".join(HOSTILE) + "\n<!-- end", spaces=False)
    assert html.escape("</script>", quote=True) in page


def test_a_widget_with_hostile_tokens_has_a_safe_bundle() -> None:
    tokens = ["<bos>", *HOSTILE]
    w = headscope.show_attention(tokens, causal_attention(1, 2, len(tokens)), head=1)
    try:
        data, _ = w._repr_mimebundle_()
        assert_script_free(data["text/html"])
        pixels, _ = read_png(decode_bundle(data))
        assert pixels.shape[0] > len(tokens) * fb.MIN_LABELLED_CELL
    finally:
        w.close()


# --- size ---------------------------------------------------------------------------------
def test_fallback_fits_the_budget_at_1024_tokens() -> None:
    """At most 150 KB (PNG as base64 plus HTML) at 1024 tokens: a model's run, and random
    peaked attention (which compresses worse than real heads)."""
    from headscope._builtin.model import ModelSpec, build_model

    model = build_model(ModelSpec(n_layers=1, n_heads=2, d_model=32, d_head=16, n_ctx=1024), seed=0)
    model.eval()
    prompt = ("The quick brown fox jumps over the lazy dog. " * 23)[:1023]
    w = headscope.show(model, prompt, head=1)
    words = ["<bos>", *(f" w{i % 211}" for i in range(1023))]
    v = headscope.show_attention(words, causal_attention(1, 1, 1024, seed=5))
    try:
        for widget in (w, v):
            assert len(widget.tokens) == 1024
            data, _ = widget._repr_mimebundle_()
            entries = {k: data[k] for k in ("image/png", "text/html")}
            png = decode_bundle(data)
            assert fb.bundle_bytes(entries) <= BUDGET, fb.bundle_bytes(entries)
            width, height = ihdr_size(png)
            assert width < 600 and height < 600  # pooled to at most 256 pixels a side, plus labels
            assert "every 100th token labelled" in data["text/html"]
            assert "1 pixel = 4x4 tokens" in data["text/html"]
    finally:
        w.close()
        v.close()


def test_pooling_keeps_each_blocks_largest_weight() -> None:
    n = 1024
    weights = np.zeros((n, n), np.float32)
    weights[np.arange(n), np.arange(n)] = 1.0
    weights[700, 3] = 0.5  # alone in its 4 x 4 block
    pic = fb.picture([f"t{i}" for i in range(n)], weights)
    pixels, _ = read_png(pic.png)
    side = pic.plan.side
    pattern = pixels[pic.y : pic.y + side, pic.x : pic.x + side]
    assert (np.diag(pattern) == 255).all()
    assert pattern[700 // 4, 3 // 4] == 128
    assert pattern[1, 0] == 0


# --- the picture in the docs ---------------------------------------------------------------
DOCS_PICTURE = ROOT / "docs" / "img" / "fallback.png"
DOCS_PROMPT = "The cat sat on the mat. The cat sat on the mat."


def test_docs_pictures_show_the_builtin_models_fallback() -> None:
    """docs/img/fallback.png is the fallback of ``headscope.show(None, DOCS_PROMPT)`` on the
    induction head (layer 1, head 0), pixel for pixel. ``HEADSCOPE_UPDATE_SCREENSHOT=1`` writes
    it again."""
    import os

    w = headscope.show(None, DOCS_PROMPT, layer=1, head=0)
    try:
        png = base64.b64decode(w._repr_mimebundle_()[0]["image/png"])
    finally:
        w.close()
    if os.environ.get("HEADSCOPE_UPDATE_SCREENSHOT") == "1":
        DOCS_PICTURE.write_bytes(png)
    pixels, palette = read_png(png)
    saved, saved_palette = read_png(DOCS_PICTURE.read_bytes())
    np.testing.assert_array_equal(saved, pixels)
    np.testing.assert_array_equal(saved_palette, palette)
