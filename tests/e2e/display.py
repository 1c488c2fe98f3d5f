"""The widget's display transform for token text (js/renderers/text.ts), for test expectations."""

from __future__ import annotations

import re

C0 = (
    "NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI "
    "DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC FS GS RS US"
).split()
WHITESPACE = {"\n": "⏎", "\t": "→"}


def glyph(ch: str, spaces: bool) -> str:
    code = ord(ch)
    if ch in WHITESPACE:
        return WHITESPACE[ch]
    if code < 0x20:
        return f"‹{C0[code]}›"
    if code == 0x7F:
        return "‹DEL›"
    if 0x80 <= code < 0xA0:
        return f"‹0x{code:X}›"
    if ch == " ":
        return "·" if spaces else " "
    if re.match(r"\s", ch):
        return "␣"
    return ch


def display_token(token: str, spaces: bool = True) -> str:
    """A token as the widget writes it in plain text (tokens without bidi controls)."""
    return "".join(glyph(ch, spaces) for ch in token)


def quote_token(token: str) -> str:
    """A token in running text: quoted, spaces kept."""
    return f'"{display_token(token, spaces=False)}"'
