"""The static fallback in every widget output: a PNG of the shown head and script-free HTML.

Notebook viewers without a kernel or widget JavaScript (nbconvert, GitHub, nbviewer) drop a
widget view whose state was not saved and show the next entry of the output's mimebundle. The
widget's bundle therefore carries, next to the widget view:

* ``image/png``: the head's pattern in the widget's light colour table (``js/renderers/lut.ts``),
  with the tokens on both axes, a title and a colour legend (:func:`picture`);
* ``text/html``: the model name, the prompt, the layer and head, the tokens as escaped text and
  the same PNG inline (a ``data:`` URI), without any script, event handler or external URL
  (:func:`page`).

Up to :data:`LABEL_ALL` tokens every token is labelled, in cells of at least 8 pixels; above
that the labels thin out to every k-th token (``position:token``) and, above :data:`MAX_SIDE`
tokens, each pixel shows the largest weight of a block of tokens. The picture says which.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from . import font
from .png import encode_indexed

#: The widget's light colour stops (js/renderers/lut.ts, ``STOPS.light``).
LIGHT_STOPS: tuple[tuple[float, str], ...] = (
    (0.0, "#f8fafc"),
    (0.2, "#c7d7fe"),
    (0.45, "#7c8cf6"),
    (0.7, "#4338ca"),
    (1.0, "#1e1457"),
)

#: Up to this many tokens, every token gets a label on both axes.
LABEL_ALL = 128
#: The pattern is at most this many pixels on a side; longer prompts are max-pooled.
MAX_SIDE = 256
#: The smallest cell (pixels a token) at which every token is labelled: the font's height.
MIN_LABELLED_CELL = font.HEIGHT
#: The largest cell, for short prompts.
MAX_CELL = 24
#: The side short prompts are magnified to (about).
TARGET_SIDE = 512
#: Characters of a token label (longer ones end in "…").
LABEL_CHARS = 12

PAD = 6
LINE = font.HEIGHT + 4
GAP = 3  # between labels and the pattern's frame
TEXT = 255  # palette index of text and the frame: the table's darkest colour
BACKGROUND = 0  # the table's lightest colour, as a weight of 0 in the widget


def build_lut(stops: Sequence[tuple[float, str]] = LIGHT_STOPS) -> np.ndarray:
    """256 RGB colours, entry ``i`` for weight ``i / 255``: ``buildLut`` of lut.ts, rounding
    halves up as JavaScript's ``Math.round`` does."""
    rgb = [tuple(int(h[i : i + 2], 16) for i in (1, 3, 5)) for _, h in stops]
    lut = np.zeros((256, 3), dtype=np.uint8)
    seg = 0
    for i in range(256):
        t = i / 255
        while seg < len(stops) - 2 and t > stops[seg + 1][0]:
            seg += 1
        t0, t1 = stops[seg][0], stops[seg + 1][0]
        f = (t - t0) / (t1 - t0)
        for c in range(3):
            lut[i, c] = math.floor(rgb[seg][c] + (rgb[seg + 1][c] - rgb[seg][c]) * f + 0.5)
    return lut


PALETTE = build_lut()


def levels(weights: np.ndarray) -> np.ndarray:
    """Colour-table indices of weights, as the widget computes them: ``round(255 · weight)``,
    clamped to [0, 255]."""
    w = np.nan_to_num(np.asarray(weights, dtype=np.float32), nan=0.0)
    return np.clip(np.floor(w * np.float32(255) + np.float32(0.5)), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Layout:
    """How ``n`` tokens map to pixels: ``block`` tokens per pixel (max-pooled), ``cell`` pixels
    per block, a label every ``step`` tokens."""

    n: int
    block: int
    cell: int
    step: int

    @property
    def side(self) -> int:
        return -(-self.n // self.block) * self.cell

    def notes(self) -> list[str]:
        """How the picture shows the tokens, in words (one line each)."""
        out = ["every token labelled" if self.step == 1 else f"every {self.step}th token labelled (position:token)"]
        if self.block > 1:
            out.append(f"1 pixel = {self.block}x{self.block} tokens, their largest weight")
        return out


def layout(n: int) -> Layout:
    """The picture's scale for ``n`` tokens (see the module docstring)."""
    if n <= 0:
        raise ValueError("a picture needs at least one token")
    if n <= LABEL_ALL:
        return Layout(n, 1, max(MIN_LABELLED_CELL, min(MAX_CELL, TARGET_SIDE // n)), 1)
    block = -(-n // MAX_SIDE)
    cell = max(1, MAX_SIDE // -(-n // block))
    per_token = cell / block  # pixels a token
    # labels at least two text lines apart, on a round step
    step = next(s for s in _round_steps() if s * per_token >= 2 * LINE)
    return Layout(n, block, cell, step)


def _round_steps():  # 1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, ...
    scale = 1
    while True:
        for s in (1, 2, 5) if scale == 1 else (1, 2, 2.5, 5):
            yield int(s * scale)
        scale *= 10


def _labels(tokens: Sequence[str], plan: Layout) -> list[tuple[int, str]]:
    out = []
    for i in range(0, plan.n, plan.step):
        text = font.clip(font.drawable(tokens[i]), LABEL_CHARS)
        out.append((i, text if plan.step == 1 else f"{i}:{text}"))
    return out


def _blit(img: np.ndarray, bitmap: np.ndarray, top: int, left: int, colour: int = TEXT) -> None:
    """Ink ``bitmap`` into ``img`` at (top, left), clipped to the image."""
    h, w = bitmap.shape
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + h, img.shape[0]), min(left + w, img.shape[1])
    if t1 <= t0 or l1 <= l0:
        return
    region = img[t0:t1, l0:l1]
    region[bitmap[t0 - top : t1 - top, l0 - left : l1 - left]] = colour


@dataclass(frozen=True)
class Picture:
    """A head's PNG, its layout, and where the pattern's top-left pixel is (``x``, ``y``)."""

    png: bytes
    plan: Layout
    x: int
    y: int
    width: int
    height: int


def picture(tokens: Sequence[str], weights: np.ndarray, *, title: str = "", extra: str = "") -> Picture:
    """The PNG of one head (``weights`` ``[query_pos, key_pos]``), with its geometry.

    ``title`` and ``extra`` are the first text lines (drawn with the font's stand-ins, clipped
    to the picture's width); then the token count and how the tokens are labelled, then a
    colour legend. Rows are query positions (labels on the left), columns key positions
    (labels below, turned to read downwards).
    """
    n = len(tokens)
    weights = np.asarray(weights)
    if weights.shape != (n, n):
        raise ValueError(f"weights must be [{n}, {n}] for {n} tokens, got shape {weights.shape}")
    plan = layout(n)
    lv = levels(weights)
    if plan.block > 1:
        m = -(-n // plan.block)
        padded = np.zeros((m * plan.block, m * plan.block), dtype=np.uint8)
        padded[:n, :n] = lv
        lv = padded.reshape(m, plan.block, m, plan.block).max(axis=(1, 3))
    cells = np.repeat(np.repeat(lv, plan.cell, axis=0), plan.cell, axis=1)

    labels = _labels(tokens, plan)
    label_px = max(len(t) for _, t in labels) * font.ADVANCE
    # the title lines are clipped to the picture; the lines that say how to read it are not
    titles = [t for t in (font.drawable(title, spaces=False), font.drawable(extra, spaces=False)) if t]
    lines = [f"{n} tokens; rows: query, columns: key", *plan.notes()]
    side = plan.side
    x0 = PAD + label_px + GAP + 1
    y0 = PAD + (len(titles) + len(lines) + 1) * LINE + GAP + 1
    width = max(x0 + side + 1 + PAD, 2 * PAD + max(len(t) for t in lines) * font.ADVANCE)
    height = y0 + side + 1 + GAP + label_px + PAD
    max_chars = (width - 2 * PAD) // font.ADVANCE
    lines = [font.clip(t, max_chars) for t in titles] + lines
    img = np.full((height, width), BACKGROUND, dtype=np.uint8)

    for row, text in enumerate(lines):
        _blit(img, font.render(text), PAD + row * LINE, PAD)
    # legend: "weight 0 [the colour table] 1"
    legend_y = PAD + len(lines) * LINE
    _blit(img, font.render("weight 0"), legend_y, PAD)
    bar_x = PAD + 9 * font.ADVANCE
    bar = np.linspace(0, 255, 128).round().astype(np.uint8)
    img[legend_y : legend_y + font.HEIGHT - 1, bar_x : bar_x + bar.size] = bar
    img[legend_y - 1, bar_x - 1 : bar_x + bar.size + 1] = TEXT
    img[legend_y + font.HEIGHT - 1, bar_x - 1 : bar_x + bar.size + 1] = TEXT
    img[legend_y - 1 : legend_y + font.HEIGHT, bar_x - 1] = TEXT
    img[legend_y - 1 : legend_y + font.HEIGHT, bar_x + bar.size] = TEXT
    _blit(img, font.render("1"), legend_y, bar_x + bar.size + 3)

    # the pattern in a one-pixel frame
    img[y0 : y0 + side, x0 : x0 + side] = cells
    img[y0 - 1, x0 - 1 : x0 + side + 1] = TEXT
    img[y0 + side, x0 - 1 : x0 + side + 1] = TEXT
    img[y0 - 1 : y0 + side + 1, x0 - 1] = TEXT
    img[y0 - 1 : y0 + side + 1, x0 + side] = TEXT
    per_token = plan.cell / plan.block
    for i, text in labels:
        centre = int((i // plan.block) * plan.cell + per_token / 2)
        bitmap = font.render(text)
        # query labels, right-aligned against the frame
        _blit(img, bitmap, y0 + centre - font.HEIGHT // 2 + 1, x0 - 1 - GAP - bitmap.shape[1])
        # key labels, turned a quarter clockwise: they read downwards from the frame
        turned = np.rot90(bitmap, k=-1)
        _blit(img, turned, y0 + side + 1 + GAP, x0 + centre - font.HEIGHT // 2)
    return Picture(encode_indexed(img, PALETTE), plan, x0, y0, width, height)


# --- HTML --------------------------------------------------------------------------------


def _visible(text: str, *, spaces: bool) -> str:
    """Text with whitespace and invisible characters made visible, as the widget shows tokens:
    ``·`` for a space (``spaces``), ``⏎`` and ``→`` for a newline and a tab, ``‹NAME›`` for a
    control or bidirectional formatting character. Other characters stay as they are."""
    out = []
    for ch in text:
        if spaces and ch in font.WHITESPACE:
            out.append(font.WHITESPACE[ch])
            continue
        name = None if ch in "\n\t" else font.control_name(ch)
        out.append(ch if name is None else f"‹{name}›")
    return "".join(out)


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def page(
    *,
    model_name: str,
    prompt: str,
    tokens: Sequence[str],
    layer: int,
    head: int,
    png: bytes,
    plan: Layout,
    width: int | None = None,
) -> str:
    """Script-free HTML: what was shown, the tokens and the picture (see the module docstring).

    Every piece of text is escaped (``html.escape`` with ``quote=True``); each token and the
    prompt sit in their own ``<bdi>``, and bidirectional formatting characters show as their
    names, so no text can reorder the page around it.
    """
    uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    model = _esc(_visible(model_name, spaces=False)) or "a model"
    chips = " ".join(f"<bdi>{_esc(_visible(t, spaces=True))}</bdi>" for t in tokens)
    alt = _esc(f"Attention pattern of layer {layer}, head {head} ({len(tokens)} tokens; {'; '.join(plan.notes())})")
    size = "" if width is None else f' width="{width}"'
    style = "max-width:none" + ("" if width is None else ";image-rendering:pixelated")
    return (
        '<div class="headscope-static">'
        f"<p><strong>headscope</strong>: <bdi>{model}</bdi>, layer {layer}, head {head}, "
        f"{len(tokens)} tokens</p>"
        '<p>Prompt:</p><pre style="white-space:pre-wrap;overflow-wrap:anywhere">'
        f"<bdi>{_esc(_visible(prompt, spaces=False))}</bdi></pre>"
        f'<div style="overflow-x:auto"><img src="{uri}"{size} alt="{alt}" style="{style}"></div>'
        f'<p>Tokens (a space shows as ·):</p><p style="font-family:monospace;line-height:1.6">{chips}</p>'
        "<p><small>A static picture of the head on screen when the widget was displayed. "
        "The interactive widget needs a running kernel: run the cell again.</small></p>"
        "</div>"
    )


def fallback(
    *, tokens: Sequence[str], weights: np.ndarray, model_name: str, prompt: str, layer: int, head: int
) -> dict[str, Any]:
    """The mimebundle entries ``image/png`` (base64, as notebooks store it) and ``text/html``."""
    pic = picture(
        tokens,
        weights,
        title=f"{model_name or 'attention'}: layer {layer}, head {head}",
        extra=f"prompt: {prompt}" if prompt else "",
    )
    # long prompts make a small picture (the pattern at most MAX_SIDE pixels): the page shows
    # it twice as large, pixels kept sharp
    scale = 2 if pic.plan.block > 1 or pic.plan.cell < MIN_LABELLED_CELL else 1
    return {
        "image/png": base64.b64encode(pic.png).decode("ascii"),
        "text/html": page(
            model_name=model_name, prompt=prompt, tokens=tokens, layer=layer, head=head,
            png=pic.png, plan=pic.plan, width=pic.width * scale if scale > 1 else None,
        ),
    }


def bundle_bytes(entries: dict[str, Any]) -> int:
    """Bytes the fallback adds to a saved notebook: the PNG's base64 text and the HTML (UTF-8)."""
    return sum(len(str(v).encode("utf-8")) for v in entries.values())
