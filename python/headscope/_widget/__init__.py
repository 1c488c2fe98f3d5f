"""The attention widget, split by concern.

- ``state``: the synced traits and their validation (docs/wire.md);
- ``messages``: browser requests, serialized per widget, the prompt queue, views and memory;
- ``interventions``: ablation and activation patching shown in the widget;
- ``widget``: :class:`AttentionWidget`, runs and the probe.
"""

from .widget import AttentionWidget

__all__ = ["AttentionWidget"]
