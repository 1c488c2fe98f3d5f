"""The widget's synced state: every trait of docs/wire.md, validated in one place."""

from __future__ import annotations

import functools
import pathlib
from typing import Any

import anywidget
import traitlets
from ipywidgets.widgets.trait_types import bytes_serialization

from .._known import check_known_heads
from .._run import AttentionRun, check_head

STATIC = pathlib.Path(__file__).parent.parent / "static"


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

    #: the run on screen; ``None`` before the first, or while parked (see ``messages``)
    _run: AttentionRun | None = None
    #: True while a run's traits are being replaced together (validation would see a mix)
    _applying = False

    def __init__(self, **kwargs: Any) -> None:
        # anywidget turns these attributes into its _esm/_css traits
        self._esm = bundle("widget.js")
        self._css = bundle("widget.css")
        super().__init__(**kwargs)

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
