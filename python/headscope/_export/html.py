"""The offline HTML export: one self-contained file that opens in a browser without a kernel.

The file holds the widget's own front end (``static/export.js``, the same code as the widget,
bundled as one classic script, and ``static/widget.css``), the traits the kernel would sync, and
the heads, compressed, all inline: it makes no network request of any kind. A head is decoded in
the page only when it is first shown. Without a kernel, hover, zoom, the atlas, known heads,
scores and both token modes work; the prompt box, the probe, ablation and patching are off, and
the page says so ("static export: no kernel").

Layout of the file (docs/wire.md, "Offline export"):

- ``<script type="application/json" id="headscope-export-state">``: the export document (the
  JSON traits; the bytes traits raw-deflated in base64; the index of exported heads);
- ``<script type="application/octet-stream" id="headscope-head-L-H">``: one head in base64,
  three raw deflate streams one after the other: its float32 row scales as four byte planes, a
  bit mask of its packed values that are not 0, and those values;
- the front end, inline, after the first shown head and before the others, so that the widget
  starts while the browser still parses the rest.

Untrusted text (tokens, prompts, the model's name, roles, notes) only ever appears JSON-encoded
with ``<``, ``>``, ``&``, U+2028 and U+2029 and every other non-ASCII character escaped, inside
a script element that is not executed, or HTML-escaped in the title. A Content-Security-Policy
allows exactly the one inline script (by its hash) and no requests.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .._run import AttentionRun, check_head
from .._widget.state import bundle

__all__ = ["export_html", "save_html", "NO_KERNEL"]

FORMAT = "headscope-export"
VERSION = 1
#: What the page says about the controls that need a kernel.
NO_KERNEL = "static export: no kernel"
STATE_ID = "headscope-export-state"

#: (level, strategy) pairs tried for every stream; the smallest output is kept. Any of them
#: inflates the same way in the browser. Huffman-only and RLE cost about a millisecond for a
#: 1024-token head and win on diffuse heads (their values are close to random, where LZ77
#: matches cost more than they save); the filtered strategy wins on structured heads (previous
#: token, induction), whose rows repeat.
_STRATEGIES = (
    (9, zlib.Z_HUFFMAN_ONLY),
    (9, zlib.Z_RLE),
    (9, zlib.Z_FILTERED),
)
#: Traits the export carries as JSON, as the kernel syncs them (docs/wire.md).
_JSON_TRAITS = (
    "tokens", "n_layers", "n_heads", "layer", "head", "thumb_size", "run_id", "prompt", "history",
    "model_name", "known_heads", "ablation_heads", "ablation_method", "ablation_label",
    "ablation_run_id", "ablation_top_k", "ablation_top_tokens", "patch_clean", "patch_corrupted",
    "patch_metric", "patch_id", "patch_summary", "generated_from", "bos_first",
)  # fmt: skip
#: Bytes traits carried compressed (``scores`` comes from the run, exact).
_BYTES_TRAITS = ("atlas", "ablation_loss", "ablation_top_ids", "ablation_top_probs", "patch_effect")
#: Characters that must not appear raw inside a <script> element's JSON (HTML's parser reacts to
#: ``<``; ``>`` and ``&`` are escaped as well so that no ``-->`` or entity-like text appears;
#: U+2028 and U+2029 end lines in older JavaScript).
_SCRIPT_UNSAFE = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
#: Bidirectional controls (embeddings, overrides, isolates, marks), dropped from the page title.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_FORBIDDEN_SCRIPT = re.compile(r"</script|<!--", re.IGNORECASE)
_FORBIDDEN_STYLE = re.compile(r"</style|<!--", re.IGNORECASE)


class ExportError(RuntimeError):
    """The front end cannot be inlined safely (it would end its element early)."""


def script_json(value: Any) -> str:
    """``value`` as JSON that is safe as the text of a ``<script>`` element: ASCII only, with
    ``<``, ``>``, ``&``, U+2028 and U+2029 escaped as ``\\uXXXX`` (``JSON.parse`` reads them
    back unchanged)."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: _SCRIPT_UNSAFE[m.group(0)], text)


def _deflate(data: bytes) -> bytes:
    """The smallest raw deflate stream of ``data`` over :data:`_STRATEGIES`."""
    best: bytes | None = None
    for level, strategy in _STRATEGIES:
        packer = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
        out = packer.compress(data) + packer.flush()
        if best is None or len(out) < len(best):
            best = out
    assert best is not None
    return best


def _packed(data: bytes) -> dict[str, Any]:
    return {"size": len(data), "data": base64.b64encode(_deflate(data)).decode("ascii")}


def _split_head(scales: bytes, values: bytes) -> tuple[bytes, bytes, bytes, int]:
    """A head's three streams before compression: the scales' byte planes, the mask of values
    that are not 0 (LSB first) and those values; plus how many there are."""
    planes = np.frombuffer(scales, dtype=np.uint8).reshape(-1, 4).T.tobytes()
    v = np.frombuffer(values, dtype=np.uint8)
    nonzero = v != 0
    mask = np.packbits(nonzero, bitorder="little").tobytes()
    return planes, mask, v[nonzero].tobytes(), int(nonzero.sum())


def _encode_head(packing: str, scales: bytes, values: bytes) -> tuple[dict[str, Any], str]:
    """One head's index entry (without its position) and its base64 text."""
    planes, mask, nonzero, count = _split_head(scales, values)
    parts = [_deflate(planes), _deflate(mask), _deflate(nonzero)]
    entry = {"packing": packing, "nonzero": count, "parts": [len(p) for p in parts]}
    return entry, base64.b64encode(b"".join(parts)).decode("ascii")


def check_heads(heads: Any, n_layers: int, n_heads: int) -> list[tuple[int, int]]:
    """``"all"`` or ``[(layer, head), …]`` as a sorted list of distinct pairs; errors name the
    problem and the valid range."""
    if isinstance(heads, str):
        if heads == "all":
            return [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
        raise ValueError(f'heads must be "all" or a list of (layer, head) pairs, got the string {heads!r}')
    if not isinstance(heads, Iterable) or isinstance(heads, (bytes, dict)):
        raise TypeError(f'heads must be "all" or a list of (layer, head) pairs, got {type(heads).__name__}')
    out: set[tuple[int, int]] = set()
    for i, pair in enumerate(heads):
        if isinstance(pair, (str, bytes)) or not isinstance(pair, Iterable):
            raise TypeError(f"heads[{i}] must be a (layer, head) pair, got {type(pair).__name__}")
        items = list(pair)
        if len(items) != 2:
            raise ValueError(f"heads[{i}] must be a (layer, head) pair, got {len(items)} values")
        try:
            out.add(check_head(items[0], items[1], n_layers, n_heads))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"heads[{i}]: {exc}") from None
    if not out:
        raise ValueError('heads is empty: name at least one (layer, head) pair, or pass heads="all"')
    return sorted(out)


def _inline(name: str, forbidden: re.Pattern[str]) -> str:
    text = bundle(name)
    hit = forbidden.search(text)
    if hit is not None:
        raise ExportError(
            f"{name} contains {hit.group(0)!r} at {hit.start()}: it cannot be inlined into an HTML "
            "file; rebuild the front end (`npm run build`) and report this"
        )
    if not text.isascii():
        raise ExportError(f"{name} is not ASCII; rebuild the front end (`npm run build`)")
    return text


def _title(model_name: str, n_tokens: int) -> str:
    name = " ".join(_BIDI.sub("", model_name).split()) or "attention"
    name = name if len(name) <= 80 else name[:79] + "\u2026"
    text = html.escape(f"headscope: {name} ({n_tokens} tokens)", quote=True)
    return text.encode("ascii", "xmlcharrefreplace").decode("ascii")


_PAGE_CSS = """
html { color-scheme: light dark; }
body { margin: 16px; background: #ffffff; color: #1f2330; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.hs-export-bar { max-width: 1040px; margin: 0 0 10px; font-size: 13px; color: #5f6678; }
.hs-export-bar strong { color: #1f2330; }
.hs-export-note { display: inline-block; margin-right: 6px; padding: 1px 8px; border-radius: 999px; background: #eef0f4; color: #1f2330; font-weight: 600; }
.hs-export-error { white-space: pre-wrap; color: #c62828; }
@media (prefers-color-scheme: dark) {
  body { background: #12141a; color: #e6e8ee; }
  .hs-export-bar { color: #a3a9b8; }
  .hs-export-bar strong, .hs-export-note { color: #e6e8ee; }
  .hs-export-note { background: #2c3140; }
  .hs-export-error { color: #ff8a80; }
}
"""


def export_html(widget: Any, heads: Any = "all") -> str:
    """The offline HTML export of ``widget``'s current run as text (see :func:`save_html`)."""
    run: AttentionRun = widget.run_result
    n_layers, n_heads, n = run.n_layers, run.n_heads, run.seq_len
    chosen = check_heads(heads, n_layers, n_heads)
    script = _inline("export.js", _FORBIDDEN_SCRIPT)
    css = _inline("widget.css", _FORBIDDEN_STYLE)

    traits = {name: _plain(getattr(widget, name)) for name in _JSON_TRAITS}
    traits.update(status="ready", error="", can_run=False, patch_progress=-1.0, scores_run_id=int(traits["run_id"]))
    note = str(widget.note or "")
    traits["note"] = f"{NO_KERNEL} · {note}" if note else NO_KERNEL
    selected = (int(traits["layer"]), int(traits["head"]))
    if selected not in chosen:  # show a head that is in the file
        selected = chosen[0]
        traits["layer"], traits["head"] = selected
    scores = run.head_scores()
    traits["score_names"] = list(scores)
    stacked = np.stack([scores[name] for name in scores]).astype("<f4") if scores else np.zeros(0, "<f4")

    raw_bytes = {name: bytes(getattr(widget, name) or b"") for name in _BYTES_TRAITS}
    raw_bytes["scores"] = stacked.tobytes()
    packed = {name: _packed(data) for name, data in raw_bytes.items() if data}

    # the first shown head first: it goes before the script, the others after it
    order = [selected] + [pair for pair in chosen if pair != selected]
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        # heads are read here, in turn (a run may compute a layer again); zlib works in the threads
        futures = [pool.submit(_encode_head, *run.encode_head(layer, head)) for layer, head in order]
        results = [f.result() for f in futures]
    index = []
    blocks = []
    for (layer, head), (entry, text) in zip(order, results):
        index.append({"layer": layer, "head": head, **entry})
        blocks.append(
            f'<script type="application/octet-stream" id="headscope-head-{layer}-{head}">{text}</script>\n'
        )
    document = {
        "format": FORMAT,
        "version": VERSION,
        "traits": traits,
        "bytes": packed,
        "seq_len": n,
        "heads": sorted(index, key=lambda e: (e["layer"], e["head"])),
        "total_heads": n_layers * n_heads,
    }
    script_hash = base64.b64encode(hashlib.sha256(script.encode("ascii")).digest()).decode("ascii")
    csp = (
        "default-src 'none'; "
        f"script-src 'sha256-{script_hash}'; "
        "style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
    )
    head_part = (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="generator" content="headscope">\n'
        f"<title>{_title(str(traits['model_name']), n)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        f"<style>{_PAGE_CSS}</style>\n<style>{css}</style>\n</head>\n<body>\n"
        '<header class="hs-export-bar"><span class="hs-export-note" role="note">'
        f"{NO_KERNEL}</span> Hover, zoom, the atlas, known heads and scores work here; running a "
        "prompt, the induction probe, ablation and patching need the notebook.</header>\n"
        '<div id="headscope-export-root"></div>\n'
        f'<script type="application/json" id="{STATE_ID}">{script_json(document)}</script>\n'
    )
    return "".join([head_part, blocks[0], f"<script>{script}</script>\n", *blocks[1:], "</body>\n</html>\n"])


def _plain(value: Any) -> Any:
    """A trait's value as plain JSON data (lists, dicts, str, int, float, bool)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def save_html(widget: Any, path: str | os.PathLike[str], heads: Any = "all") -> Path:
    """Write the offline HTML export of ``widget`` to ``path`` and return the path."""
    target = Path(path)
    text = export_html(widget, heads)
    target.write_text(text, encoding="ascii", newline="\n")
    return target
