"""The attention widget: kernel side of the anywidget (see docs/wire.md for the protocol)."""

from __future__ import annotations

import functools
import pathlib
from typing import Any

import anywidget
import numpy as np
import torch
import traitlets
from ipywidgets.widgets.trait_types import bytes_serialization

from ._adapters import check_model, run_model, run_token_ids
from ._intervene import AblationResult, PatchResult, ablate, patch_heads
from ._known import check_known_heads, known_heads_of
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
    # heads with known roles, listed in the side panel: [{"role", "layer", "head"}, ...]
    known_heads = traitlets.List().tag(sync=True)
    # ablation (docs/wire.md): the heads, and the result on the current run
    ablation_heads = traitlets.List(traitlets.List(traitlets.Int())).tag(sync=True)
    ablation_method = traitlets.Unicode("").tag(sync=True)
    ablation_label = traitlets.Unicode("").tag(sync=True)
    ablation_run_id = traitlets.Int(0).tag(sync=True)
    ablation_loss = traitlets.Bytes(b"").tag(sync=True, **bytes_serialization)
    ablation_top_k = traitlets.Int(0).tag(sync=True)
    ablation_top_tokens = traitlets.List(traitlets.Unicode()).tag(sync=True)
    ablation_top_ids = traitlets.Bytes(b"").tag(sync=True, **bytes_serialization)
    ablation_top_probs = traitlets.Bytes(b"").tag(sync=True, **bytes_serialization)
    # activation patching (docs/wire.md)
    patch_clean = traitlets.Unicode("").tag(sync=True)
    patch_corrupted = traitlets.Unicode("").tag(sync=True)
    patch_metric = traitlets.Unicode("").tag(sync=True)
    patch_effect = traitlets.Bytes(b"").tag(sync=True, **bytes_serialization)
    patch_id = traitlets.Int(0).tag(sync=True)
    patch_progress = traitlets.Float(-1.0).tag(sync=True)
    patch_summary = traitlets.Unicode("").tag(sync=True)

    def __init__(self, run: AttentionRun, model: Any = None, **kwargs: Any) -> None:
        self._model = model
        self._run: AttentionRun | None = None
        self._ablation: AblationResult | None = None
        self._ablation_spec: tuple[Any, str, Any] | None = None
        self._patch: PatchResult | None = None
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
        if model is not None:
            self.known_heads = known_heads_of(model)
        self.on_msg(self._handle_custom_msg)

    @traitlets.validate("known_heads")
    def _check_known_heads(self, proposal: Any) -> list[dict[str, Any]]:
        return check_known_heads(proposal["value"], self.n_layers, self.n_heads)

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

    @property
    def ablation_result(self) -> AblationResult | None:
        """The ablation shown on the current run (``None`` when there is none)."""
        return self._ablation

    @property
    def patch_result(self) -> PatchResult | None:
        """The last activation-patching result (``None`` before the first)."""
        return self._patch

    def ablate(self, heads: Any, method: str = "zero", reference: Any = None) -> AblationResult:
        """Ablate ``heads`` (``[(layer, head), …]``) on the current prompt and show the effect.

        ``method`` is ``"zero"`` or ``"mean"`` (over the prompt's positions, or over
        ``reference``: a prompt or a list of prompts). The token view can then colour tokens by
        their loss change; the status line gives the total. The ablation follows later runs
        until :meth:`clear_ablation`. Returns the :class:`AblationResult` (see
        :func:`headscope.ablate`); on bad input raises ``ValueError`` and the widget shows it.
        """
        model = self._need_model("ablation")
        result = self._guarded(lambda: self._ablate_run(model, self.run_result, heads, method, reference))
        self._ablation_spec = (result.heads, method, reference)
        self._show_ablation(result)
        return result

    def clear_ablation(self) -> None:
        """Stop ablating: the token view goes back to attention only."""
        self._ablation = None
        self._ablation_spec = None
        with self.hold_sync():
            self.ablation_heads, self.ablation_method, self.ablation_label = [], "", ""
            self.ablation_loss, self.ablation_top_ids, self.ablation_top_probs = b"", b"", b""
            self.ablation_top_tokens, self.ablation_top_k = [], 0
            self.ablation_run_id = 0
            if self.status == "error":
                self.status, self.error = "ready", ""

    def patch(
        self,
        clean: str,
        corrupted: str,
        *,
        answer: Any = None,
        metric: Any = None,
        batch_size: int | None = None,
    ) -> PatchResult:
        """Patch every head's output from ``clean`` into ``corrupted`` and show the heatmap.

        The metric is a logit difference between ``answer = (correct, wrong)`` at the last
        position, or ``metric="loss"`` (see :func:`headscope.patch_heads`). The view switches to
        the clean prompt, so a click on a heatmap cell opens that head's pattern on it.
        ``patch_progress`` reports the fraction of heads done while it runs. Returns the
        :class:`PatchResult` (``.effect`` is the ``[layer, head]`` array).
        """
        model = self._need_model("activation patching")
        self.patch_progress = 0.0

        def work() -> tuple[PatchResult, AttentionRun | None]:
            result = patch_heads(
                model, clean, corrupted, answer=answer, metric=metric, batch_size=batch_size,
                progress=lambda done, total: setattr(self, "patch_progress", done / total),
            )
            same = isinstance(clean, str) and self._run is not None and clean == self._run.prompt
            return result, None if same else self._clean_run(model, clean)

        try:
            result, run = self._guarded(work)
        finally:
            self.patch_progress = -1.0
        self._patch = result
        if run is not None:
            self._apply(run)
        with self.hold_sync():
            self.patch_clean = clean if isinstance(clean, str) else ""
            self.patch_corrupted = corrupted if isinstance(corrupted, str) else ""
            self.patch_metric = result.metric
            self.patch_effect = result.effect.astype("<f4").tobytes()
            self.patch_summary = result.summary()
            self.patch_id += 1
            self.status, self.error = "ready", ""
        return result

    # --- internals --------------------------------------------------------------------
    def _need_model(self, what: str) -> Any:
        if self._model is None:
            raise TypeError(
                f"{what} needs a model; this widget shows precomputed attention "
                "(use headscope.show(model, prompt) for a live widget)"
            )
        return self._model

    def _guarded(self, work: Any) -> Any:
        """Run ``work()`` with the status line at "running"; a failure shows in the widget."""
        self.status, self.error = "running", ""
        try:
            return work()
        except Exception as exc:
            self.status, self.error = "error", f"{type(exc).__name__}: {exc}"
            raise

    @staticmethod
    def _clean_run(model: Any, clean: Any) -> AttentionRun:
        if isinstance(clean, str):
            return run_model(model, clean)
        return run_token_ids(model, torch.as_tensor(clean, dtype=torch.long).reshape(-1))

    @staticmethod
    def _ablate_run(model: Any, run: AttentionRun, heads: Any, method: str, reference: Any) -> AblationResult:
        if run.token_ids is None:
            raise TypeError("this run has no token ids to ablate on")
        return ablate(model, run.token_ids, heads, method=method, reference=reference)

    def _show_ablation(self, result: AblationResult) -> None:
        """Publish an ablation of the current run (docs/wire.md: ``ablation_*`` traits)."""
        n = len(result.tokens)
        loss = np.full((2, n), np.nan, dtype="<f4")
        loss[0, 1:], loss[1, 1:] = result.clean_loss, result.ablated_loss
        table = sorted(result.vocab)
        position = {token_id: i for i, token_id in enumerate(table)}
        ids = np.stack([result.clean_top_ids, result.ablated_top_ids])
        index = np.vectorize(position.__getitem__, otypes=[np.int64])(ids).astype("<i4")
        probs = np.stack([result.clean_top_probs, result.ablated_top_probs]).astype("<f4")
        self._ablation = result
        with self.hold_sync():
            self.ablation_heads = [[layer, head] for layer, head in result.heads]
            self.ablation_method = result.method
            self.ablation_label = result.label
            self.ablation_top_k = int(ids.shape[-1])
            self.ablation_top_tokens = [result.vocab[token_id] for token_id in table]
            self.ablation_top_ids = index.tobytes()
            self.ablation_top_probs = probs.tobytes()
            self.ablation_loss = loss.tobytes()
            self.ablation_run_id = self.run_id
            self.status, self.error = "ready", ""

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
        self._follow_ablation(run)

    def _follow_ablation(self, run: AttentionRun) -> None:
        """An active ablation follows a new run; if it cannot, it is cleared, saying why."""
        if self._ablation_spec is None or self._model is None:
            return
        heads, method, reference = self._ablation_spec
        try:
            result = self._ablate_run(self._model, run, heads, method, reference)
        except Exception as exc:
            self.clear_ablation()
            self.note = f"ablation cleared: {type(exc).__name__}: {exc}"
            return
        self._show_ablation(result)

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
        elif kind in ("ablate", "clear_ablation", "patch"):
            try:
                self._intervene(kind, content)
            except Exception as exc:  # the widget shows the error; the kernel lives on
                self.status, self.error = "error", f"{type(exc).__name__}: {exc}"
        elif kind == "run":
            try:
                self.run(content.get("prompt"))  # type: ignore[arg-type]
            except Exception as exc:  # the widget shows the error; the kernel lives on
                self.status, self.error = "error", f"{type(exc).__name__}: {exc}"

    def _intervene(self, kind: str, content: dict[str, Any]) -> None:
        """The browser's ``ablate``, ``clear_ablation`` and ``patch`` requests (docs/wire.md)."""
        if kind == "clear_ablation":
            self.clear_ablation()
            return
        if kind == "ablate":
            reference = content.get("reference")  # "" is an empty reference, an error
            if reference is not None and not isinstance(reference, str):
                raise TypeError(f"reference must be text, got {type(reference).__name__}")
            self.ablate(content.get("heads"), method=str(content.get("method") or "zero"), reference=reference)
            return
        clean, corrupted = content.get("clean"), content.get("corrupted")
        for name, value in (("clean", clean), ("corrupted", corrupted)):
            if not isinstance(value, str):
                raise TypeError(f"the {name} prompt must be text, got {type(value).__name__}")
        metric = content.get("metric")
        if metric == "loss":
            self.patch(clean, corrupted, metric="loss")
        elif metric == "logit_diff":
            answer = content.get("answer")
            if not isinstance(answer, list) or len(answer) != 2 or not all(isinstance(a, str) for a in answer):
                raise ValueError("a logit difference needs two answer tokens: the correct one and the wrong one")
            self.patch(clean, corrupted, answer=(answer[0], answer[1]))
        else:
            raise ValueError(f"unknown patching metric {metric!r}; use 'logit_diff' or 'loss'")

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

