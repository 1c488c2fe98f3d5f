"""The static fallback where no widget can run: an executed notebook exported by nbconvert to
HTML and opened in Chromium with JavaScript off shows each widget's picture and tokens, and
headscope's output holds no script.

The notebook is executed by nbclient in a real kernel (the path `headscope demo` takes) without
saving widget state, as JupyterLab saves notebooks by default: nbconvert then drops the widget
views and shows the next entry of each output's mimebundle.
"""

from __future__ import annotations

import base64
import re
import struct
import zlib
from pathlib import Path
from typing import Any, Iterator

import nbformat
import numpy as np
import pytest

pytestmark = pytest.mark.browser

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PROMPT = "The cat sat on the mat. The cat sat on the mat."
HOSTILE = ["<bos>", "</script><script>alert(1)</script>", "<!--", "\u202eevil", '" onerror="alert(2)', " cat"]


def read_rgb(data: bytes) -> np.ndarray:
    """Pixels ``[height, width, 3]`` of an 8-bit RGB, RGBA or indexed PNG (all five filters), as
    Chromium writes screenshots and headscope its pictures."""
    at, chunks = 8, []
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        chunks.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
        at += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and interlace == 0 and colour in (2, 3, 6)
    channels = {2: 3, 3: 1, 6: 4}[colour]
    raw = zlib.decompress(b"".join(p for k, p in chunks if k == b"IDAT"))
    stride = width * channels
    out = np.zeros((height, stride), dtype=np.int32)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        up = out[y - 1] if y else np.zeros(stride, np.int32)
        row = np.zeros(stride, np.int32)
        for x in range(stride):
            a = row[x - channels] if x >= channels else 0
            b = up[x]
            c = up[x - channels] if x >= channels else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = a
            elif kind == 2:
                pred = b
            elif kind == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            row[x] = (line[x] + pred) % 256
        out[y] = row
    pixels = out.reshape(height, width, channels).astype(np.uint8)
    if colour == 3:
        palette = np.frombuffer(dict(chunks)[b"PLTE"], np.uint8).reshape(-1, 3)
        return palette[pixels[..., 0]]
    return pixels[..., :3]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, nbformat.NotebookNode]]:
    """(nbconvert's HTML, the executed notebook) of two widgets: the built-in model's induction
    head, and precomputed attention on hostile tokens."""
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    from headscope.__main__ import kernel_config

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"import headscope\nw = headscope.show(None, {PROMPT!r}, layer=1, head=0)\nw"),
        nbformat.v4.new_code_cell(
            "import numpy as np\n"
            f"tokens = {HOSTILE!r}\n"
            "n = len(tokens)\n"
            "a = np.tril(np.arange(1, n * n + 1, dtype=np.float32).reshape(n, n))\n"
            "headscope.show_attention(tokens, a / a.sum(-1, keepdims=True))"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    sockets = tmp_path_factory.mktemp("kernel")
    NotebookClient(nb, timeout=300, kernel_name="python3", config=kernel_config(sockets), store_widget_state=False).execute()
    body, _ = HTMLExporter().from_notebook_node(nb)
    yield body, nb


def test_nbconvert_html_shows_each_widgets_picture_and_tokens_without_javascript(
    browser: Any, exported: tuple[str, nbformat.NotebookNode], tmp_path: Path
) -> None:
    from headscope._export import fallback as fb

    body, nb = exported
    outputs = [o for c in nb.cells for o in c.outputs if WIDGET_VIEW in o.get("data", {})]
    assert len(outputs) == 2 and all({"image/png", "text/html"} <= set(o.data) for o in outputs)
    # nbconvert dropped the widget views (no state saved) and used the fallback's HTML
    assert WIDGET_VIEW not in body and body.count('<div class="headscope-static">') == 2
    for part in body.split('<div class="headscope-static">')[1:]:
        # from headscope's output to the next cell (or the end of the notebook): no script
        area = re.split(r'<div class="jp-Cell |</main>', part)[0]
        assert "<script" not in area.lower() and "data:image/png;base64," in area

    page_file = tmp_path / "exported.html"
    page_file.write_text(body, encoding="utf-8")
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1400, "height": 900})
    context.route(re.compile(r"^(?!file:|data:)"), lambda route: route.abort())  # no network
    try:
        page = context.new_page()
        page.goto(page_file.as_uri())
        areas = page.locator(".jp-OutputArea-output:has(.headscope-static)")
        assert areas.count() == 2
        for i in range(2):
            assert areas.nth(i).locator("script").count() == 0  # nothing of headscope's runs

        # the built-in model's picture, at its natural size: the pattern's pixels are the head's
        first = areas.nth(0)
        img = first.locator("img")
        img.wait_for(state="visible")
        png = base64.b64decode(outputs[0].data["image/png"])
        width, height = struct.unpack(">II", png[16:24])
        box = img.bounding_box()
        assert box is not None and (round(box["width"]), round(box["height"])) == (width, height)
        # the image lands on whole pixels somewhere near its (fractional) box: find where
        left, top = int(box["x"]) - 1, int(box["y"]) - 1
        page_shot = read_rgb(page.screenshot(clip={"x": left, "y": top, "width": width + 3, "height": height + 3}))
        expected = read_rgb(png)
        match, dy, dx = max(
            ((page_shot[dy : dy + height, dx : dx + width] == expected).all(axis=-1).mean(), dy, dx)
            for dy in range(3)
            for dx in range(3)
        )
        assert match > 0.99, match  # the picture is drawn pixel for pixel, not a broken-image icon
        shot = page_shot[dy : dy + height, dx : dx + width]
        import headscope

        run = headscope.show(None, PROMPT).run_result
        pic = fb.picture(run.tokens, run.head(1, 0), title="x", extra="y")
        n, cell = len(run.tokens), pic.plan.cell
        levels = fb.levels(run.head(1, 0))
        for q, k in [(0, 0), (n - 1, 0), (n - 1, n - 1), (30, 10), (5, 40)]:
            y, x = pic.y + q * cell + cell // 2, pic.x + k * cell + cell // 2
            assert shot[y, x].tolist() == fb.PALETTE[levels[q, k]].tolist(), (q, k)
        header = first.locator("p").first.inner_text()
        assert header == "headscope: headscope-builtin, layer 1, head 0, 48 tokens"
        assert first.locator("pre").inner_text() == PROMPT
        chips = first.locator("bdi").all_inner_texts()[2:]
        assert chips == [fb._visible(t, spaces=True) for t in run.tokens]
        assert first.locator("bdi", has_text="·").first.is_visible()

        # hostile tokens stay text: visible, escaped, and nothing ran
        second = areas.nth(1)
        second.locator("img").wait_for(state="visible")
        chips = second.locator("bdi").all_inner_texts()[2:]
        assert chips == ["<bos>", "</script><script>alert(1)</script>", "<!--", "‹RLO›evil", '"·onerror="alert(2)', "·cat"]
        for text in ("</script><script>alert(1)</script>", "‹RLO›evil", "<!--"):
            assert second.locator("bdi", has_text=text).first.is_visible()
        assert second.locator("img").count() == 1
    finally:
        context.close()


def test_with_javascript_on_headscopes_output_runs_nothing(browser: Any, exported: tuple[str, Any], tmp_path: Path) -> None:
    """The same page with JavaScript on (nbconvert's own scripts fail offline): no dialog opens,
    and the hostile tokens are still text."""
    body, _ = exported
    page_file = tmp_path / "exported.html"
    page_file.write_text(body, encoding="utf-8")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.route(re.compile(r"^(?!file:|data:)"), lambda route: route.abort())
    dialogs: list[str] = []
    try:
        page = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(page_file.as_uri())
        second = page.locator(".jp-OutputArea-output:has(.headscope-static)").nth(1)
        second.locator("bdi", has_text="‹RLO›evil").wait_for(state="visible")
        assert page.evaluate("document.querySelectorAll('.headscope-static script').length") == 0
        assert page.evaluate("document.querySelectorAll('.headscope-static img').length") == 2
        assert page.evaluate(
            "[...document.querySelectorAll('.headscope-static *')]"
            ".flatMap(e => [...e.attributes].map(a => a.name)).filter(n => n.startsWith('on')).length"
        ) == 0
        assert dialogs == []
    finally:
        context.close()
