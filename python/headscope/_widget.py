"""The attention widget: kernel side of the anywidget (see docs/wire.md for the protocol)."""

from __future__ import annotations

import functools
import pathlib
from typing import Any

import anywidget
import numpy as np
import traitlets
from ipywidgets.widgets.trait_types import bytes_serialization

from ._adapters import check_model, run_model, run_token_ids
from ._probe import ProbeResult, induction_probe
from ._run import AttentionRun, check_head
from ._scores import SCORE_NAMES, layered_head_scores
from ._wire import encode_atlas, encode_head

STATIC = pathlib.Path(__file__).parent / "static"
HISTORY_SIZE = 20
#: Default length of the induction probe's random segment.
PROBE_LENGTH = 50


@functools.lru_cache(maxsize=2)
def _bundle(name: str) -> str:
    path = STATIC / name
    if not path.is_file():
        raise RuntimeError(
            f"headscope's front end is not built ({path} is missing). Install the package with "
            "`pip install .` (or `pip install -e .`), which runs the JS build, or run "
            "`npm install && npm run build` in a source checkout"
        )
    return path.read_text(encoding="utf-8")


class AttentionWidget(anywidget.AnyWidget):  # type: ignore[misc]
    """Hoverable views of every attention head of one run, with a side panel.

    Build one with :func:`headscope.show` (a model and a prompt) or
    :func:`headscope.show_attention` (precomputed attention). ``w.layer``, ``w.head`` and
    ``w.prompt`` can be set from Python; the view follows.
    """

    tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    n_layers = traitlets.Int(0).tag(sync=True)
    n_heads = traitlets.Int(0).tag(sync=True)
    layer = traitlets.Int(0).tag(sync=True)
    head = traitlets.Int(0).tag(sync=True)
    thumb_size = traitlets.Int(0).tag(sync=True)
    atlas = traitlets.Bytes(b"").tag(sync=True, **bytes_serialization)
    run_id = traitlets.Int(0).tag(sync=True)
    prompt = traitlets.Unicode("").tag(sync=True)
    history = traitlets.List(traitlets.Unicode()).tag(sync=True)
    status = traitlets.Unicode("ready").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    can_run = traitlets.Bool(False).tag(sync=True)
    model_name = traitlets.Unicode("").tag(sync=True)
    score_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    scores = traitlets.Bytes(b"").tag(sync=True, **bytes_serialization)
    scores_run_id = traitlets.Int(0).tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)

    def __init__(self, run: AttentionRun, model: Any = None, **kwargs: Any) -> None:
        self._model = model
        self._run: AttentionRun | None = None
        self._applying = False
        # anywidget turns these attributes into its _esm/_css traits
        self._esm = _bundle("widget.js")
        self._css = _bundle("widget.css")
        super().__init__(**kwargs)
        if model is not None:
            check_model(model)
        self.can_run = model is not None
        self.score_names = list(SCORE_NAMES)
        self._apply(run)
        self.on_msg(self._handle_custom_msg)

    # --- public API -------------------------------------------------------------------
    @property
    def run_result(self) -> AttentionRun:
        """The current :class:`AttentionRun` (tokens and every head's pattern)."""
        assert self._run is not None
        return self._run

    def run(self, prompt: str) -> None:
        """Re-run the model on ``prompt`` and show the result.

        Raises ``TypeError``/``ValueError`` on bad input (the widget shows the same message and
        keeps the last good view).
        """
        if self._model is None:
            raise TypeError(
                "this widget shows precomputed attention and has no model to re-run; "
                "use headscope.show(model, prompt) for a live widget"
            )
        self._apply(self._compute(prompt))

    def probe(self, length: int | None = None, seed: int = 0) -> ProbeResult:
        """Run the induction probe on the widget's model and show its first sequence.

        The views switch to the probe's tokens (BOS + ``length`` random tokens, twice); the
        status line gives the loss on each copy. ``length`` defaults to 50, or to the longest
        probe the model's context holds if that is shorter. Returns the :class:`ProbeResult`.
        """
        if self._model is None:
            raise TypeError(
                "the induction probe needs a model; this widget shows precomputed attention"
            )
        if length is None:
            n_ctx = int(getattr(self._model.cfg, "n_ctx", 0) or 0)
            length = min(PROBE_LENGTH, (n_ctx - 1) // 2) if n_ctx else PROBE_LENGTH
        self.status, self.error = "running", ""
        try:
            result = induction_probe(self._model, length=length, seed=seed)
            run = run_token_ids(self._model, result.tokens)
        except Exception as exc:
            self.status, self.error = "error", f"{type(exc).__name__}: {exc}"
            raise
        self._apply(run, note=result.summary())
        return result

    # --- internals --------------------------------------------------------------------
    def _compute(self, prompt: str) -> AttentionRun:
        self.status, self.error = "running", ""
        try:
            return run_model(self._model, prompt)
        except Exception as exc:
            self.status, self.error = "error", f"{type(exc).__name__}: {exc}"
            raise

    def _apply(self, run: AttentionRun, note: str = "") -> None:
        size, atlas = encode_atlas(run)
        history = list(self.history)
        if self._run is not None and self._run.prompt and self._run.prompt != run.prompt:
            history = [self._run.prompt] + [p for p in history if p != self._run.prompt]
        history = [p for p in history if p != run.prompt][:HISTORY_SIZE]
        self._run = run
        self._applying = True
        try:
            with self.hold_sync():
                self.tokens = run.tokens
                self.n_layers, self.n_heads = run.n_layers, run.n_heads
                self.layer = min(self.layer, run.n_layers - 1)
                self.head = min(self.head, run.n_heads - 1)
                self.thumb_size, self.atlas = size, atlas
                self.prompt = run.prompt
                self.history = history
                self.model_name = run.model_name
                self.run_id += 1
                self.status, self.error, self.note = "ready", "", note
        finally:
            self._applying = False

    @traitlets.validate("layer", "head")
    def _valid_head(self, proposal: Any) -> int:
        name = proposal["trait"].name
        value = proposal["value"]
        if self._run is None or self._applying:
            return int(value)
        layer = value if name == "layer" else self.layer
        head = value if name == "head" else self.head
        check_head(layer, head, self._run.n_layers, self._run.n_heads)
        return int(value)

    @traitlets.validate("prompt")
    def _valid_prompt(self, proposal: Any) -> str:
        value = proposal["value"]
        if self._applying or self._run is None:
            return str(value)
        # w.prompt = "..." from Python: run now; on failure the old prompt and view stay.
        if self._model is None:
            raise TypeError(
                "this widget shows precomputed attention and cannot re-run a prompt; "
                "use headscope.show(model, prompt) for a live widget"
            )
        self._apply(self._compute(value))
        return str(value)

    def _handle_custom_msg(self, content: Any, buffers: Any = None, *_: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "request_head":
            self._answer_head(content)
        elif kind == "request_scores":
            self._answer_scores()
        elif kind == "probe":
            try:
                self.probe()
            except Exception as exc:  # the widget shows the error; the kernel lives on
                self.status, self.error = "error", f"{type(exc).__name__}: {exc}"
        elif kind == "run":
            try:
                self.run(content.get("prompt"))  # type: ignore[arg-type]
            except Exception as exc:  # the widget shows the error; the kernel lives on
                self.status, self.error = "error", f"{type(exc).__name__}: {exc}"

    def _answer_scores(self) -> None:
        """Score every head of the current run (docs/wire.md: ``scores`` traits)."""
        run = self.run_result
        if self.scores_run_id == self.run_id:
            return
        try:
            scores = layered_head_scores(run.layers, run.score_ids())
        except Exception as exc:  # the panel shows it; the kernel lives on
            self.error = f"scores failed: {type(exc).__name__}: {exc}"
            return
        names = list(scores)
        stacked = np.stack([scores[name] for name in names]).astype("<f4")
        with self.hold_sync():
            self.score_names = names
            self.scores = stacked.tobytes()
            self.scores_run_id = self.run_id

    def _answer_head(self, content: dict[str, Any]) -> None:
        request_id = content.get("request_id")
        try:
            run = self.run_result
            layer, head = check_head(
                content.get("layer"), content.get("head"), run.n_layers, run.n_heads
            )
            packing, scales, values = encode_head(run.head(layer, head))
        except Exception as exc:
            self.send({"type": "head_error", "request_id": request_id, "message": str(exc)})
            return
        self.send(
            {
                "type": "head",
                "request_id": request_id,
                "run_id": self.run_id,
                "layer": layer,
                "head": head,
                "seq_len": run.seq_len,
                "packing": packing,
            },
            [scales, values],
        )

