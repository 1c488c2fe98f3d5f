"""The widget's synced state: every trait of docs/wire.md, validated in one place."""

from __future__ import annotations

import base64
import functools
import pathlib
from typing import Any

import anywidget
import traitlets
from ipywidgets.widgets.trait_types import bytes_serialization

from .._known import check_known_heads
from .._run import AttentionRun, check_head

STATIC = pathlib.Path(__file__).parent.parent / "static"
#: The bytes traits (docs/wire.md); under the text transport each is mirrored in ``text_data``.
BYTES_TRAITS = ("atlas", "scores", "ablation_loss", "ablation_top_ids", "ablation_top_probs", "patch_effect",
                "value_norms", "atlas_value_weighted")
#: A constant bytes trait: a view that does not receive exactly these bytes is in a host that
#: drops binary state (docs/wire.md, "Transport").
BINARY_PROBE = b"hs\x01\xff"


@functools.lru_cache(maxsize=2)
def bundle(name: str) -> str:
    path = STATIC / name
    if not path.is_file():
        raise RuntimeError(
            f"headscope's front end is not built ({path} is missing). Install the package with "
            "`pip install .` (or `pip install -e .`), which runs the JS build, or run "
            "`npm install && npm run build` in a source checkout"
        )
    return path.read_text(encoding="utf-8")


class InvalidStateError(traitlets.TraitError, ValueError):
    """A value a trait cannot take. A ``TraitError``, so traitlets rolls the change back (also
    for an update from the browser), and a ``ValueError``, as the API promises for bad input."""


class WidgetState(anywidget.AnyWidget):  # type: ignore[misc]
    """The traits synced with the front end (docs/wire.md) and their validation."""

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
    # why the OV views and the copying score are unavailable (docs/ov.md); "" when they work
    ov_unavailable = traitlets.Unicode("").tag(sync=True)
    # heads with known roles, listed in the side panel: [{"role", "layer", "head"}, ...]
    known_heads = traitlets.List().tag(sync=True)
    # value-weighted attention (docs/value-weighted.md): the toggle (both ways), why it is off
    # limits ("" when it is not), the selected layer's value norms and the weighted atlas
    value_weighted = traitlets.Bool(False).tag(sync=True)
    value_weighted_reason = traitlets.Unicode("").tag(sync=True)
    value_norms = traitlets.Bytes(b"").tag(sync=True, **bytes_serialization)
    value_norms_layer = traitlets.Int(-1).tag(sync=True)
    value_norms_run_id = traitlets.Int(0).tag(sync=True)
    atlas_value_weighted = traitlets.Bytes(b"").tag(sync=True, **bytes_serialization)
    atlas_value_weighted_run_id = traitlets.Int(0).tag(sync=True)
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
    # generation (docs/wire.md): position of the first generated token, -1 when none
    generated_from = traitlets.Int(-1).tag(sync=True)
    # whether token 0 is the BOS the model prepends (the view's "hide BOS" needs it)
    bos_first = traitlets.Bool(False).tag(sync=True)
    # transport (docs/wire.md): "binary", or "text" once a view reports that its host drops
    # binary buffers; then every bytes trait is mirrored in text_data as base64
    binary_probe = traitlets.Bytes(BINARY_PROBE).tag(sync=True, **bytes_serialization)
    transport = traitlets.Unicode("binary").tag(sync=True)
    text_data = traitlets.Dict().tag(sync=True)

    #: the run on screen; ``None`` before the first, or while parked (see ``messages``)
    _run: AttentionRun | None = None
    #: True while a run's traits are being replaced together (validation would see a mix)
    _applying = False

    def __init__(self, **kwargs: Any) -> None:
        # anywidget turns these attributes into its _esm/_css traits
        self._esm = bundle("widget.js")
        self._css = bundle("widget.css")
        super().__init__(**kwargs)

    def use_text_transport(self) -> None:
        """Mirror every bytes trait as base64 in ``text_data`` from now on (one update)."""
        with self.hold_sync():
            self.transport = "text"
            self.text_data = {name: base64.b64encode(getattr(self, name)).decode("ascii") for name in BYTES_TRAITS}

    @traitlets.observe(*BYTES_TRAITS)
    def _mirror_as_text(self, change: Any) -> None:
        if self.transport == "text":
            self.text_data = {**self.text_data, change["name"]: base64.b64encode(change["new"]).decode("ascii")}

    @traitlets.validate("transport")
    def _check_transport(self, proposal: Any) -> str:
        if proposal["value"] not in ("binary", "text"):
            raise InvalidStateError(f"transport must be 'binary' or 'text', got {proposal['value']!r}")
        return str(proposal["value"])

    @traitlets.validate("known_heads")
    def _check_known_heads(self, proposal: Any) -> list[dict[str, Any]]:
        try:
            return check_known_heads(proposal["value"], self.n_layers, self.n_heads)
        except (TypeError, ValueError) as exc:
            raise InvalidStateError(str(exc)) from exc

    @traitlets.validate("layer", "head")
    def _valid_head(self, proposal: Any) -> int:
        name = proposal["trait"].name
        value = proposal["value"]
        if self._applying or self.n_layers == 0:
            return int(value)
        layer = value if name == "layer" else self.layer
        head = value if name == "head" else self.head
        try:
            check_head(layer, head, self.n_layers, self.n_heads)
        except (TypeError, ValueError) as exc:
            raise InvalidStateError(str(exc)) from exc
        return int(value)
