"""The widget's value-weighted attention toggle (docs/value-weighted.md, docs/wire.md).

Nothing is computed until the toggle is on (``w.value_weighted = True`` or the side panel's
checkbox). Then the current run's value norms are computed once (one forward pass that reads
the value vectors) and the selected layer's ``[head, key_pos]`` slice is sent; the weighted
atlas follows (one more pass). A layer switch sends that layer's slice from the run's cache; a
new run computes its own while the toggle stays on.
"""

from __future__ import annotations

from typing import Any

import traitlets

from .._value_weighted import NO_MODEL
from .interventions import Interventions
from .messages import error_text
from .state import InvalidStateError


class ValueWeighted(Interventions):
    """``w.value_weighted`` and the traits that carry its data."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        model = getattr(self, "_model", None)
        self.value_weighted_reason = NO_MODEL if model is None else (model.weights_unavailable() or "")

    @traitlets.validate("value_weighted")
    def _valid_value_weighted(self, proposal: Any) -> bool:
        value = proposal["value"]
        if not isinstance(value, bool):
            raise InvalidStateError(f"value_weighted must be True or False, got {type(value).__name__}")
        if value and self.value_weighted_reason:
            raise InvalidStateError(f"value-weighted attention is unavailable: {self.value_weighted_reason}")
        return value

    @traitlets.observe("value_weighted")
    def _value_weighted_changed(self, change: Any) -> None:
        if change["new"]:
            with self._lock:
                self._follow_value_weighting()

    @traitlets.observe("layer")
    def _value_weighted_layer(self, _change: Any) -> None:
        if self.value_weighted and not self._applying:
            with self._lock:
                self._send_value_norms()

    def _park(self) -> None:
        """A parked run drops its value-weighting data too; it comes back with the run."""
        super()._park()  # type: ignore[misc]
        if self.parked:
            with self.hold_sync():
                self.value_norms, self.atlas_value_weighted = b"", b""
                self.value_norms_layer, self.value_norms_run_id, self.atlas_value_weighted_run_id = -1, 0, 0

    def _unpark(self) -> Any:
        was_parked = self.parked
        run = super()._unpark()  # type: ignore[misc]
        if was_parked and self.value_weighted:
            self._follow_value_weighting()
        return run

    def _follow_value_weighting(self) -> None:
        """With the toggle on: the current run's norms for the selected layer, then its
        weighted atlas (each computed once per run and cached on it)."""
        if not self.value_weighted or (self._run is None and self._parked is None):
            return
        try:
            run = self._unpark()
            self._send_value_norms()
            if self.atlas_value_weighted_run_id != self.run_id:
                thumbs = run.value_weighted_thumbs()
                with self.hold_sync():
                    self.atlas_value_weighted = thumbs.tobytes()
                    self.atlas_value_weighted_run_id = self.run_id
        except Exception as exc:  # the toggle goes off and the widget says why
            with self.hold_sync():
                self.value_weighted = False
                self.status, self.error = "error", f"value-weighted attention failed: {error_text(exc)}"

    def _send_value_norms(self) -> None:
        run = self._unpark()
        layer = min(self.layer, run.n_layers - 1)
        if (self.value_norms_run_id, self.value_norms_layer) == (self.run_id, layer):
            return
        norms = run._value_weighting().norms()  # cached on the run after the first call
        with self.hold_sync():
            self.value_norms = norms[layer].astype("<f4").tobytes()
            self.value_norms_layer = layer
            self.value_norms_run_id = self.run_id
