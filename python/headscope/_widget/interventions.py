"""Ablation and activation patching, run on the widget's model and shown in the widget."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._intervene import AblationResult, PatchResult, UnreliableEffectWarning, ablate, patch_heads
from .._run import AttentionRun
from .messages import Messages, error_text


class Interventions(Messages):
    """``w.ablate``, ``w.clear_ablation``, ``w.patch`` and the browser's requests for them."""

    def __init__(self, **kwargs: Any) -> None:
        self._ablation: AblationResult | None = None
        self._ablation_spec: tuple[Any, str, Any] | None = None
        self._patch: PatchResult | None = None
        super().__init__(**kwargs)

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
        with self._lock:
            model = self._need_model("ablation")
            result = self._guarded(lambda: self._ablate_run(model, self._unpark(), heads, method, reference))
            self._ablation_spec = (result.heads, method, reference)
            self._show_ablation(result)
            return result

    def clear_ablation(self) -> None:
        """Stop ablating: the token view goes back to attention only."""
        with self._lock:
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
        position, or ``metric="loss"`` (see :func:`headscope.patch_heads`). The widget keeps its
        own prompt and run; a click on a heatmap cell opens that head on it. ``patch_progress``
        reports the fraction of heads done while it runs. Returns the :class:`PatchResult`
        (``.effect`` is the ``[layer, head]`` array).
        """
        with self._lock:
            model = self._need_model("activation patching")
            self.patch_progress = 0.0
            try:
                result: PatchResult = self._guarded(
                    lambda: patch_heads(
                        model, clean, corrupted, answer=answer, metric=metric, batch_size=batch_size,
                        progress=lambda done, total: setattr(self, "patch_progress", done / total),
                    )
                )
            finally:
                self.patch_progress = -1.0
            self._patch = result
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
        model = getattr(self, "_model", None)
        if model is None:
            raise TypeError(
                f"{what} needs a model; this widget shows precomputed attention "
                "(use headscope.show(model, prompt) for a live widget)"
            )
        return model

    def _guarded(self, work: Any) -> Any:
        """Run ``work()`` with the status line at "running"; a failure shows in the widget."""
        self.status, self.error = "running", ""
        try:
            return work()
        except Exception as exc:
            self.status, self.error = "error", error_text(exc)
            raise

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

    def _follow_ablation(self, run: AttentionRun) -> None:
        """An active ablation follows a new run; if it cannot, it is cleared, saying why."""
        model = getattr(self, "_model", None)
        if self._ablation_spec is None or model is None:
            return
        heads, method, reference = self._ablation_spec
        try:
            result = self._ablate_run(model, run, heads, method, reference)
        except Exception as exc:
            self.clear_ablation()
            self.note = f"ablation cleared: {error_text(exc)}"
            return
        self._show_ablation(result)

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
            options: dict[str, Any] = {"metric": "loss"}
        elif metric == "logit_diff":
            answer = content.get("answer")
            if not isinstance(answer, list) or len(answer) != 2 or not all(isinstance(a, str) for a in answer):
                raise ValueError("a logit difference needs two answer tokens: the correct one and the wrong one")
            options = {"answer": (answer[0], answer[1])}
        else:
            raise ValueError(f"unknown patching metric {metric!r}; use 'logit_diff' or 'loss'")
        # from the browser, a tiny clean-corrupted gap is said in the panel (patch_summary), not
        # as a warning in the kernel's log, where nobody would see it
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnreliableEffectWarning)
            self.patch(clean, corrupted, **options)
