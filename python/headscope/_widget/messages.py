"""Browser requests, handled so that any message, from any number of threads, is safe.

JupyterLab 4.6 delivers widget messages on a kernel subshell by default, so two of one widget's
messages can be handled at the same time on two threads. Every request therefore takes the
widget's lock, and prompts go through a queue of one: a prompt that arrives while another runs
waits, a newer one replaces it, and a replaced prompt still goes into the history.

Views tell the kernel when they open and close. A widget with a model whose views are all gone
parks its run: it drops every head's pattern and the atlas, keeps the token ids, and computes
them again when a view or the API asks (docs/wire.md, "Views and memory").
"""

from __future__ import annotations

import base64
import threading
from typing import Any

import numpy as np
import traitlets

from .._adapters import run_token_ids
from .._run import AttentionRun, check_head
from .._wire import encode_atlas
from .state import BYTES_TRAITS, WidgetState

#: Request ids and view ids the browser sends are echoed back; longer ones are refused.
_MAX_ID = 64
#: At most this many open views are tracked (a page reload cannot say its views closed).
_MAX_VIEWS = 256


def _short_id(value: Any) -> str | int | None:
    """A request or view id as sent by the browser: a short string or an int, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and 0 < len(value) <= _MAX_ID):
        return value
    return None


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class Messages(WidgetState):
    """The widget's message handling: one lock, a prompt queue, views and parking."""

    def __init__(self, **kwargs: Any) -> None:
        self._lock = threading.RLock()
        self._queue_lock = threading.Lock()
        self._queued: tuple[str, Any] | None = None
        self._replaced: list[str] = []
        self._draining = False
        self._views: set[str | int] = set()
        self._parked: AttentionRun | None = None
        self._memory_budget: int | None = None
        super().__init__(**kwargs)
        self.on_msg(self._on_message)

    # --- delivery ------------------------------------------------------------------------
    def _handle_custom_msg(self, content: Any, buffers: Any = None) -> None:
        """ipywidgets' entry point for custom messages; ``w.on_msg`` callbacks all fire."""
        super()._handle_custom_msg(content, [] if buffers is None else buffers)

    def set_state(self, sync_data: Any) -> None:
        """An update from the browser. An invalid one is rolled back, and the browser is sent
        the values the kernel kept and an error that names the problem."""
        with self._lock:
            try:
                super().set_state(sync_data)
            except (traitlets.TraitError, TypeError, ValueError) as exc:
                names = [n for n in sync_data if n in self.keys] if isinstance(sync_data, dict) else []
                self.status, self.error = "error", f"rejected update: {exc}"
                if names:
                    self.send_state(names)

    def _on_message(self, _widget: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "run":
            self._queue_run(content)
            return
        handler = self._HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            return
        with self._lock:
            try:
                handler(self, content)
            except Exception as exc:  # the widget shows the error; the kernel lives on
                self.status, self.error = "error", error_text(exc)

    # --- the prompt queue ------------------------------------------------------------------
    def _queue_run(self, content: dict[str, Any]) -> None:
        """Run the prompt of a ``run`` message, or queue it behind the run in progress."""
        request_id = _short_id(content.get("request_id"))
        replaced = content.get("superseded")
        with self._queue_lock:
            if isinstance(replaced, list):
                self._replaced.extend(p for p in replaced[:20] if isinstance(p, str) and p)
            if self._queued is not None:
                prompt, old_id = self._queued
                if isinstance(prompt, str) and prompt:
                    self._replaced.append(prompt)
                self._send_run_done(old_id, ok=False, superseded=True)
            self._queued = (content.get("prompt"), request_id)
            if self._draining:
                return  # the thread that is running drains the queue
            self._draining = True
        while True:
            with self._queue_lock:
                item, self._queued = self._queued, None
                if item is None:
                    self._draining = False
                    return
            prompt, request_id = item
            with self._lock:
                ok = True
                try:
                    self.run(prompt)  # type: ignore[attr-defined]
                except Exception as exc:  # the widget shows the error; the kernel lives on
                    self.status, self.error = "error", error_text(exc)
                    ok = False
                self._remember_replaced()
                self._send_run_done(request_id, ok=ok)

    def _remember_replaced(self) -> None:
        """Prompts replaced in the queue go into the history (never lost, never run)."""
        with self._queue_lock:
            replaced, self._replaced = self._replaced, []
        if replaced:
            self.history = self._with_history(replaced)  # type: ignore[attr-defined]

    def _send_run_done(self, request_id: Any, *, ok: bool, superseded: bool = False) -> None:
        if request_id is None:
            return
        self.send({"type": "run_done", "request_id": request_id, "ok": ok, "superseded": superseded})

    # --- views and memory ------------------------------------------------------------------
    def _on_view(self, content: dict[str, Any]) -> None:
        """``{"type": "view", "view": id, "open": bool}``: a view opened or closed."""
        view = _short_id(content.get("view"))
        if view is None:
            return
        if content.get("open") is True:
            if len(self._views) < _MAX_VIEWS:
                self._views.add(view)
            self._unpark()
        elif view in self._views:
            self._views.discard(view)
            if not self._views:
                self._park()

    def _park(self) -> None:
        """Drop the heavy data of a run that no view shows; it is computed again when asked."""
        run = self._run
        if run is None or run.token_ids is None or getattr(self, "_model", None) is None:
            return  # precomputed attention cannot be computed again: it stays
        self._parked = run.parked()
        self._run = None
        with self.hold_sync():
            self.atlas, self.scores, self.scores_run_id = b"", b"", 0

    def _unpark(self) -> AttentionRun:
        """The current run, computed again (same tokens, same ``run_id``) if it was parked."""
        if self._run is not None:
            return self._run
        parked = self._parked
        if parked is None or parked.token_ids is None:
            raise RuntimeError("this widget was closed and holds no run; make a new one with headscope.show")
        run = run_token_ids(self._model, parked.token_ids, prompt=parked.prompt, memory_budget=self._memory_budget)  # type: ignore[attr-defined]
        size, atlas = encode_atlas(run)
        self._run, self._parked = run, None
        with self.hold_sync():
            self.thumb_size, self.atlas = size, atlas
        return run

    @property
    def parked(self) -> bool:
        """True while the run's patterns are dropped because no view shows the widget."""
        return self._run is None and self._parked is not None

    def _held_bytes(self) -> int:
        """Bytes of attention data the widget holds: patterns, atlas, scores, interventions."""
        run = self._run
        patterns = 0 if run is None else run.nbytes
        traits = [getattr(self, name) for name in BYTES_TRAITS]
        text = sum(len(v) for v in self.text_data.values() if isinstance(v, str))  # text transport
        return patterns + sum(len(t) for t in traits) + text

    # --- answers ---------------------------------------------------------------------------
    def _weight_scores(self) -> dict[str, Any]:
        """Scores from the model's weights (``_widget.ov``: copying); none here."""
        return {}

    def _on_probe(self, _content: dict[str, Any]) -> None:
        self.probe()  # type: ignore[attr-defined]

    def _on_request_scores(self, _content: dict[str, Any]) -> None:
        """Score every head of the current run (docs/wire.md: ``scores`` traits)."""
        if self.scores_run_id == self.run_id and self.scores:
            return
        run = self._unpark()
        try:
            scores = {**run.head_scores(), **self._weight_scores()}
        except Exception as exc:  # the panel shows it; the kernel lives on
            self.error = f"scores failed: {error_text(exc)}"
            return
        names = list(scores)
        stacked = np.stack([scores[name] for name in names]).astype("<f4")
        with self.hold_sync():
            self.score_names = names
            self.scores = stacked.tobytes()
            self.scores_run_id = self.run_id

    def _on_request_head(self, content: dict[str, Any]) -> None:
        """One head, quantized (docs/wire.md); the reply names the request, run, layer and head."""
        request_id = _short_id(content.get("request_id"))
        if request_id is None:
            self.send({"type": "head_error", "request_id": None, "message": "request_id must be a short string or an int"})
            return
        try:
            layer, head = check_head(content.get("layer"), content.get("head"), self.n_layers, self.n_heads)
            if content.get("selected") is True and (layer, head) != (self.layer, self.head):
                # asked for the selection, which has moved on (w.layer, w.head = 9, 4 sends two
                # updates, and the view asks after each): the later request gets the head
                self.send({"type": "head_superseded", "request_id": request_id, "layer": layer, "head": head})
                return
            run = self._unpark()
            packing, scales, values = run.encode_head(layer, head)
        except Exception as exc:
            self.send({"type": "head_error", "request_id": request_id, "message": str(exc)})
            return
        reply = {
            "type": "head",
            "request_id": request_id,
            "run_id": self.run_id,
            "layer": layer,
            "head": head,
            "seq_len": run.seq_len,
            "packing": packing,
        }
        if self.transport == "text":  # the host drops buffers: the same bytes as base64 in the JSON
            reply["scales_b64"] = base64.b64encode(scales).decode("ascii")
            reply["values_b64"] = base64.b64encode(values).decode("ascii")
            self.send(reply)
        else:
            self.send(reply, [scales, values])

    def _on_transport(self, content: dict[str, Any]) -> None:
        """``{"type": "transport", "mode": "text"}``: a view's host drops binary buffers."""
        if content.get("mode") == "text" and self.transport != "text":
            self.use_text_transport()

    def _on_intervention(self, content: dict[str, Any]) -> None:
        self._intervene(content["type"], content)  # type: ignore[attr-defined]

    _HANDLERS: dict[str, Any] = {
        "request_head": _on_request_head,
        "request_scores": _on_request_scores,
        "probe": _on_probe,
        "ablate": _on_intervention,
        "clear_ablation": _on_intervention,
        "patch": _on_intervention,
        "view": _on_view,
        "transport": _on_transport,
    }
