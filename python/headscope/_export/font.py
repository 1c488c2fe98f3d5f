"""A 5 x 8 bitmap font for the static picture's labels (printable ASCII and a few stand-ins).

Each glyph is 5 pixels wide and 8 high: capitals and digits use rows 0-6, lowercase letters rows
2-6, and descenders reach row 7. Text advances 6 pixels a character. The sheet below lists the
glyphs in bands of 16, in the order of :data:`CHARS`, one string per pixel row, glyphs separated
by a space (``#`` on, ``.`` off).

:func:`drawable` maps any text onto these glyphs: a space, a newline and a tab get the widget's
stand-ins (``·``, ``⏎``, ``→``), control and bidirectional formatting characters their names
(``‹NUL›``, ``‹RLO›``), accented Latin letters their base letter, and anything else a box
(``□``).
"""

from __future__ import annotations

import functools
import unicodedata

import numpy as np

WIDTH, HEIGHT, ADVANCE = 5, 8, 6

#: The glyphs of :data:`SHEET`, in order.
CHARS = ' !"#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~·⏎→…‹›␣□'

SHEET = (
    #       !     "     #     $     %     &     '     (     )     *     +     ,     -     .     /
    "..... ..#.. .#.#. .#.#. ..#.. ##..# .##.. ..#.. ...#. .#... ..... ..... ..... ..... ..... ....#",
    "..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#.. ..... ..... ..... ....#",
    "..... ..#.. ..... ##### #.#.. ...#. #.#.. ..... .#... ...#. #.#.# ..#.. ..... ..... ..... ...#.",
    "..... ..#.. ..... .#.#. .###. ..#.. .#... ..... .#... ...#. .###. ##### ..... ##### ..... ..#..",
    "..... ..#.. ..... ##### ..#.# .#... #.#.# ..... .#... ...#. #.#.# ..#.. ..... ..... ..... .#...",
    "..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#.. .##.. ..... .##.. #....",
    "..... ..#.. ..... .#.#. ..#.. #..## .##.# ..... ...#. .#... ..... ..... ..#.. ..... .##.. #....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .#... ..... ..... .....",

    # 0     1     2     3     4     5     6     7     8     9     :     ;     <     =     >     ?
    ".###. ..#.. .###. ##### ...#. ##### ..##. ##### .###. .###. ..... ..... ...#. ..... .#... .###.",
    "#...# .##.. #...# ...#. ..##. #.... .#... ....# #...# #...# .##.. .##.. ..#.. ..... ..#.. #...#",
    "#..## ..#.. ....# ..#.. .#.#. ####. #.... ...#. #...# #...# .##.. .##.. .#... ##### ...#. ....#",
    "#.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#.. .###. .#### ..... ..... #.... ..... ....# ...#.",
    "##..# ..#.. ..#.. ....# ##### ....# #...# .#... #...# ....# .##.. .##.. .#... ##### ...#. ..#..",
    "#...# ..#.. .#... #...# ...#. #...# #...# .#... #...# ...#. .##.. ..#.. ..#.. ..... ..#.. .....",
    ".###. .###. ##### .###. ...#. .###. .###. .#... .###. .##.. ..... .#... ...#. ..... .#... ..#..",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",

    # @     A     B     C     D     E     F     G     H     I     J     K     L     M     N     O
    ".###. .###. ####. .###. ###.. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###.",
    "#...# #...# #...# #...# #..#. #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...#",
    "#.### #...# #...# #.... #...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#",
    "#.#.# ##### ####. #.... #...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#",
    "#.### #...# #...# #.... #...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...#",
    "#.... #...# #...# #...# #..#. #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...#",
    ".###. #...# ####. .###. ###.. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###.",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... .....",

    # P     Q     R     S     T     U     V     W     X     Y     Z     [     \     ]     ^     _
    "####. .###. ####. .#### ##### #...# #...# #...# #...# #...# ##### .###. #.... .###. ..#.. .....",
    "#...# #...# #...# #.... ..#.. #...# #...# #...# #...# #...# ....# .#... #.... ...#. .#.#. .....",
    "#...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. .#.#. ...#. .#... .#... ...#. #...# .....",
    "####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. ..#.. ..#.. .#... ..#.. ...#. ..... .....",
    "#.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... .#... ...#. ...#. ..... .....",
    "#.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.# #...# ..#.. #.... .#... ....# ...#. ..... .....",
    "#.... .##.# #...# ####. ..#.. .###. ..#.. .#.#. #...# ..#.. ##### .###. ....# .###. ..... .....",
    "..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... ..... #####",

    # `     a     b     c     d     e     f     g     h     i     j     k     l     m     n     o
    ".#... ..... #.... ..... ....# ..... ..##. ..... #.... ..#.. ...#. #.... .##.. ..... ..... .....",
    "..#.. ..... #.... ..... ....# ..... .#..# ..... #.... ..... ..... #.... ..#.. ..... ..... .....",
    "..... .###. ####. .###. .#### .###. .#... .#### #.##. .##.. ..##. #..#. ..#.. ##.#. #.##. .###.",
    "..... ....# #...# #.... #...# #...# ###.. #...# ##..# ..#.. ...#. #.#.. ..#.. #.#.# ##..# #...#",
    "..... .#### #...# #.... #...# ##### .#... #...# #...# ..#.. ...#. ##... ..#.. #.#.# #...# #...#",
    "..... #...# #...# #...# #...# #.... .#... .#### #...# ..#.. ...#. #.#.. ..#.. #...# #...# #...#",
    "..... .#### ####. .###. .#### .###. .#... ....# #...# .###. #..#. #..#. .###. #...# #...# .###.",
    "..... ..... ..... ..... ..... ..... ..... .###. ..... ..... .##.. ..... ..... ..... ..... .....",

    # p     q     r     s     t     u     v     w     x     y     z     {     |     }     ~     ·
    "..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ...## ..#.. ##... ..... .....",
    "..... ..... ..... ..... .#... ..... ..... ..... ..... ..... ..... ..#.. ..#.. ..#.. ..... .....",
    "####. .#### #.##. .#### ###.. #...# #...# #...# #...# #...# ##### ..#.. ..#.. ..#.. .#... .....",
    "#...# #...# ##..# #.... .#... #...# #...# #...# .#.#. #...# ...#. .#... ..#.. ...#. #.#.# .....",
    "#...# #...# #.... .###. .#... #...# #...# #.#.# ..#.. #...# ..#.. ..#.. ..#.. ..#.. ...#. ..#..",
    "####. .#### #.... ....# .#..# #..## .#.#. #.#.# .#.#. .#### .#... ..#.. ..#.. ..#.. ..... .....",
    "#.... ....# #.... ####. ..##. .##.# ..#.. .#.#. #...# ....# ##### ...## ..#.. ##... ..... .....",
    "#.... ....# ..... ..... ..... ..... ..... ..... ..... .###. ..... ..... ..... ..... ..... .....",

    # ⏎     →     …     ‹     ›     ␣     □
    "....# ..... ..... ..... ..... ..... #####",
    "....# ..#.. ..... ..... ..... ..... #...#",
    "..#.# ...#. ..... ...#. .#... ..... #...#",
    ".#..# ##### ..... ..#.. ..#.. ..... #...#",
    "##### ...#. ..... .#... ...#. ..... #...#",
    ".#... ..#.. ..... ..#.. ..#.. #...# #...#",
    "..#.. ..... #.#.# ...#. .#... ##### #####",
    "..... ..... ..... ..... ..... ..... .....",
)

#: Names shown for control characters (C0, as Unicode abbreviates them) and for the
#: bidirectional and zero-width formatting characters, which would otherwise be invisible.
C0_NAMES = (
    "NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI "
    "DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC FS GS RS US"
).split()
FORMAT_NAMES = {
    "\u061c": "ALM", "\u200b": "ZWSP", "\u200c": "ZWNJ", "\u200d": "ZWJ", "\u200e": "LRM",
    "\u200f": "RLM", "\u202a": "LRE", "\u202b": "RLE", "\u202c": "PDF", "\u202d": "LRO",
    "\u202e": "RLO", "\u2066": "LRI", "\u2067": "RLI", "\u2068": "FSI", "\u2069": "PDI",
    "\ufeff": "BOM",
}
#: Stand-ins for whitespace, as the widget shows it in token chips and axis labels.
WHITESPACE = {" ": "·", "\n": "⏎", "\t": "→"}
#: Typographic punctuation drawn as its ASCII look-alike.
LOOKALIKES = {
    "\u2018": "'", "\u2019": "'", "\u201a": ",", "\u2032": "'", "\u201c": '"', "\u201d": '"',
    "\u201e": '"', "\u2033": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u00a0": "␣",
    "\u00b7": "·", "\u2026": "…", "\u00ab": "<", "\u00bb": ">",
}
UNKNOWN = "□"


def control_name(ch: str) -> str | None:
    """The name shown for a control or formatting character, or None for any other."""
    code = ord(ch)
    if code < 0x20:
        return C0_NAMES[code]
    if code == 0x7F:
        return "DEL"
    if 0x80 <= code < 0xA0:
        return f"0x{code:X}"
    return FORMAT_NAMES.get(ch)


@functools.lru_cache(maxsize=4096)
def _char(ch: str, spaces: bool) -> str:
    if ch in WHITESPACE and (spaces or ch != " "):
        return WHITESPACE[ch]
    if ch in _INDEX:
        return ch
    name = control_name(ch)
    if name is not None:
        return f"‹{name}›"
    if ch in LOOKALIKES:
        return LOOKALIKES[ch]
    if ch.isspace():
        return "␣"
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    if base and all(c in _INDEX and c not in "·⏎→…‹›␣□" for c in base):
        return base
    return UNKNOWN


def drawable(text: str, *, spaces: bool = True) -> str:
    """``text`` in characters the font has (see the module's docstring). ``spaces``: whether a
    plain space shows as ``·`` (token labels) or stays a space (titles)."""
    return "".join(_char(ch, spaces) for ch in text)


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters of drawable text, ending in ``…`` when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def _parse() -> np.ndarray:
    glyphs = np.zeros((len(CHARS), HEIGHT, WIDTH), dtype=bool)
    for band in range(0, len(SHEET), HEIGHT):
        for row, line in enumerate(SHEET[band : band + HEIGHT]):
            for i, cells in enumerate(line.split(" ")):
                glyphs[band // HEIGHT * 16 + i, row] = [c == "#" for c in cells]
    return glyphs


GLYPHS = _parse()
_INDEX = {ch: i for i, ch in enumerate(CHARS)}


def render(text: str) -> np.ndarray:
    """Drawable ``text`` as a bool bitmap ``[HEIGHT, ADVANCE * len(text)]`` (True: ink)."""
    out = np.zeros((HEIGHT, ADVANCE * len(text)), dtype=bool)
    for i, ch in enumerate(text):
        out[:, i * ADVANCE : i * ADVANCE + WIDTH] = GLYPHS[_INDEX.get(ch, _INDEX[UNKNOWN])]
    return out
