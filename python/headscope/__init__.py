"""headscope: look inside a transformer's attention heads from a notebook.

>>> import headscope
>>> w = headscope.show(None, "The cat sat on the mat. The cat sat on the mat.")  # built-in model
>>> w.layer, w.head = 1, 2
"""

from __future__ import annotations

from typing import Any, Sequence

from ._loading import ModelUnavailableError, load_model
from ._run import AttentionRun
from ._widget import AttentionWidget

__version__ = "0.1.0"


def show(model: Any, prompt: str, *, layer: int = 0, head: int = 0) -> AttentionWidget:
    """Run ``model`` on ``prompt`` and return a widget of every head's attention.

    ``model`` is a TransformerLens ``TransformerBridge`` (or any model with ``to_tokens``,
    ``to_str_tokens``, ``run_with_cache`` and hooks ``blocks.{layer}.attn.hook_pattern``), a
    name for :func:`load_model`, or ``None`` for headscope's built-in model.
    """
    from ._adapters import check_model, run_model

    if model is None or isinstance(model, str):
        model = load_model(model or "builtin")
    check_model(model)
    widget = AttentionWidget(run_model(model, prompt), model=model)
    widget.layer, widget.head = layer, head
    return widget


def show_attention(
    tokens: Sequence[str], attention: Any, *, layer: int = 0, head: int = 0
) -> AttentionWidget:
    """Show precomputed attention.

    ``attention`` is a numpy array or torch tensor of shape ``[layer, head, query_pos, key_pos]``,
    ``[head, query_pos, key_pos]`` or ``[query_pos, key_pos]``, or a list of per-layer
    ``[head, query_pos, key_pos]`` arrays (a leading batch dimension of 1 is dropped), with
    ``query_pos`` and ``key_pos`` equal to ``len(tokens)``.
    """
    from ._run import make_run

    widget = AttentionWidget(make_run(tokens, attention))
    widget.layer, widget.head = layer, head
    return widget


__all__ = [
    "AttentionRun",
    "AttentionWidget",
    "ModelUnavailableError",
    "load_model",
    "show",
    "show_attention",
    "__version__",
]
