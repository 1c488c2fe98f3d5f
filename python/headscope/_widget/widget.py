"""The attention widget: kernel side of the anywidget (see docs/wire.md for the protocol)."""

from __future__ import annotations

import html
from typing import Any

import traitlets

from .._adapters import as_adapter, run_model, run_token_ids
from .._export.fallback import fallback
from .._known import known_heads_of
from .._probe import ProbeResult, induction_probe
from .._run import AttentionRun
from .._scores import SCORE_NAMES
from .._wire import encode_atlas
from .generation import Generation
from .value_weighted import ValueWeighted
from .messages import error_text
from .ov import OVViews

#: The fallback's mime types (``headscope._export.fallback``), shown by viewers without widgets.
FALLBACK_TYPES = ("image/png", "text/html")

HISTORY_SIZE = 20
#: Default length of the induction probe's random segment.
PROBE_LENGTH = 50


class AttentionWidget(OVViews, Generation, ValueWeighted):
    """Hoverable views of every attention head of one run, with a side panel.

    Build one with :func:`headscope.show` (a model and a prompt) or
    :func:`headscope.show_attention` (precomputed attention). ``w.layer``, ``w.head`` and
    ``w.prompt`` can be set from Python; the view follows. ``w.close()`` ends the widget and
    frees what it holds; a widget that no view shows (its cell was run again, its output
    cleared) already drops its patterns and computes them again when it is shown.
    """

    def __init__(
        self,
        run: AttentionRun,
        model: Any = None,
        *,
        memory_budget: int | None = None,
        tokenizer: Any = None,
        **kwargs: Any,
    ) -> None:
        # the model behind its adapter (headscope._adapters): every run and intervention goes through it
        adapter = None if model is None else as_adapter(model, tokenizer=tokenizer)
        if adapter is not None:
            adapter.check()
        self._model = adapter
        super().__init__(**kwargs)
        self._memory_budget = memory_budget
        self.can_run = model is not None
        self.score_names = list(SCORE_NAMES)
        self._apply(run)
        if adapter is not None:
            self.known_heads = known_heads_of(adapter)
        self._init_ov()

    # --- public API -------------------------------------------------------------------
    @property
    def run_result(self) -> AttentionRun:
        """The current :class:`AttentionRun` (tokens and every head's pattern)."""
        with self._lock:
            return self._unpark()

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
        with self._lock:
            self._apply(self._compute(prompt))

    def probe(self, length: int | None = None, seed: int = 0) -> ProbeResult:
        """Run the induction probe on the widget's model and show its first sequence.

        The views switch to the probe's tokens (BOS + ``length`` random tokens, twice) and to
        the probe's best induction head; the status line gives the loss on each copy. ``length``
        defaults to 50, or to the longest probe the model's context holds if that is shorter.
        Returns the :class:`ProbeResult`.
        """
        if self._model is None:
            raise TypeError(
                "the induction probe needs a model; this widget shows precomputed attention"
            )
        if length is None:
            n_ctx = self._model.n_ctx
            length = min(PROBE_LENGTH, (n_ctx - 1) // 2) if n_ctx else PROBE_LENGTH
        with self._lock:
            self.status, self.error = "running", ""
            try:
                result = induction_probe(self._model, length=length, seed=seed)
                run = run_token_ids(self._model, result.tokens, memory_budget=self._memory_budget)
            except Exception as exc:
                self.status, self.error = "error", error_text(exc)
                raise
            layer, head, _ = result.top_heads("induction", 1)[0]
            self._apply(run, note=result.summary(), select=(layer, head))
            return result

    def save_html(self, path: Any, heads: Any = "all") -> Any:
        """Write this widget's run to ``path`` as one self-contained HTML file and return its path.

        The file opens in a browser without a kernel or a network: hover, zoom, the atlas, known
        heads, scores and both token modes work; prompts, the probe, ablation and patching are
        off. ``heads`` is ``"all"`` or a list of ``(layer, head)`` pairs to include (fewer heads,
        a smaller file). Each head is compressed; 144 heads of 1024 tokens take about 17 MB.
        """
        from .._export.html import save_html

        with self._lock:
            return save_html(self, path, heads)

    def close(self) -> None:
        """Close the widget: its views go blank and it drops its run and results."""
        with self._lock:
            self._run = self._parked = None
            self._ablation = self._patch = None
            super().close()

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """anywidget's bundle (the widget view, and its metadata, which carries Colab's widget
        manager switch) plus a static fallback of the head on screen: ``image/png`` and
        script-free ``text/html`` (``headscope._export.fallback``). Hosts with widgets show the
        widget view; nbconvert, GitHub and nbviewer drop a view whose state is not saved and show
        the fallback. Built here, once per display, never on a trait change."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        include, exclude = kwargs.get("include"), kwargs.get("exclude")
        wanted = [t for t in FALLBACK_TYPES if (not include or t in include) and not (exclude and t in exclude)]
        if wanted:
            extra = self._static_fallback()
            data = {**data, **{t: v for t, v in extra.items() if t in wanted}}
        return data, metadata

    # --- internals --------------------------------------------------------------------
    def _static_fallback(self) -> dict[str, Any]:
        """The fallback entries for the run and head on screen now; none for a closed widget.
        A picture that cannot be made must not hide the widget: its error goes in the HTML."""
        with self._lock:
            if self._run is None and self._parked is None:
                return {}  # closed
            try:
                run = self._unpark()
                layer, head = self.layer, self.head
                return fallback(
                    tokens=run.tokens,
                    weights=run.head(layer, head),
                    model_name=run.model_name,
                    prompt=run.prompt,
                    layer=layer,
                    head=head,
                )
            except Exception as exc:
                text = html.escape(f"headscope: no static picture ({error_text(exc)})", quote=True)
                return {"text/html": f"<p>{text}</p>"}

    def _compute(self, prompt: str) -> AttentionRun:
        self.status, self.error = "running", ""
        try:
            return run_model(self._model, prompt, memory_budget=self._memory_budget)
        except Exception as exc:
            self.status, self.error = "error", error_text(exc)
            raise

    def _with_history(self, earlier: list[str]) -> list[str]:
        """The history with ``earlier`` prompts in front (newest first), without the current
        prompt or repeats, at most ``HISTORY_SIZE`` long."""
        current = self.prompt
        out: list[str] = []
        for p in [*reversed(earlier), *self.history]:
            if p and p != current and p not in out:
                out.append(p)
        return out[:HISTORY_SIZE]

    def _apply(
        self, run: AttentionRun, note: str = "", select: tuple[int, int] | None = None, generated_from: int = -1
    ) -> None:
        """Show ``run``: its tokens, atlas and ``run_id`` change together, in one message."""
        size, atlas = encode_atlas(run)
        shown = self._run or self._parked
        earlier = [shown.prompt] if shown is not None and shown.prompt and shown.prompt != run.prompt else []
        self._run, self._parked = run, None
        self._applying = True
        try:
            with self.hold_sync():
                self.tokens = run.tokens
                self.n_layers, self.n_heads = run.n_layers, run.n_heads
                layer, head = select if select is not None else (self.layer, self.head)
                self.layer = min(layer, run.n_layers - 1)
                self.head = min(head, run.n_heads - 1)
                self.thumb_size, self.atlas = size, atlas
                self.prompt = run.prompt
                self.history = self._with_history(earlier)
                self.model_name = run.model_name
                self.generated_from, self.bos_first = generated_from, self._bos_first(run)
                self.run_id += 1
                self.status, self.error, self.note = "ready", "", note
        finally:
            self._applying = False
        self._follow_ablation(run)
        self._follow_value_weighting()

    @traitlets.validate("prompt")
    def _valid_prompt(self, proposal: Any) -> str:
        value = proposal["value"]
        if self._applying or (self._run is None and self._parked is None):
            return str(value)
        # w.prompt = "..." from Python: run now; on failure the old prompt and view stay.
        self.run(value)
        return str(value)
