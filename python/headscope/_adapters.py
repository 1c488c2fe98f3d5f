"""Model adapters: turn (model, prompt) into an :class:`AttentionRun`.

One adapter serves TransformerLens 4.x ``TransformerBridge`` and older ``HookedTransformer``s
alike, through the surface both share: ``to_tokens``, ``to_str_tokens``, ``run_with_hooks`` and
the hooks ``blocks.{layer}.attn.hook_pattern``. Nothing here imports a model class, so any model
with that surface works.

Patterns are captured by forward hooks on the pattern hook points alone (a cache of just those
hooks). On a TransformerBridge this costs what a plain forward pass costs, while
``run_with_cache`` with a names filter adds about 40 % (5.6 s against 3.9 s for GPT-2 Small
geometry at 1024 tokens on 2 CPU threads).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from ._run import AttentionRun, make_run

_REQUIRED = ("to_tokens", "to_str_tokens", "run_with_hooks")


def pattern_hook(layer: int) -> str:
    """The TransformerLens hook name of a layer's attention pattern."""
    return f"blocks.{layer}.attn.hook_pattern"


def model_name(model: Any) -> str:
    cfg = getattr(model, "cfg", None)
    name = getattr(cfg, "model_name", None) or type(model).__name__
    return str(name)


def check_model(model: Any) -> tuple[int, int]:
    """Check that ``model`` has the TransformerLens surface; return ``(n_layers, n_ctx)``."""
    missing = [m for m in _REQUIRED if not callable(getattr(model, m, None))]
    cfg = getattr(model, "cfg", None)
    if missing or cfg is None:
        what = ", ".join(missing + ([] if cfg is not None else ["cfg"]))
        raise TypeError(
            f"{type(model).__name__} is not a TransformerLens-style model: it lacks {what}. "
            "headscope.show needs a TransformerBridge (or a model with to_tokens, to_str_tokens, "
            "run_with_hooks, cfg and hooks blocks.{layer}.attn.hook_pattern); for attention you "
            "computed yourself, use headscope.show_attention(tokens, attention)"
        )
    n_layers = int(getattr(cfg, "n_layers", 0) or 0)
    if n_layers <= 0:
        raise TypeError(f"{type(model).__name__}.cfg.n_layers is {n_layers}: no attention layers")
    hooks = getattr(model, "hook_dict", None)
    if hooks is not None:
        absent = [pattern_hook(i) for i in range(n_layers) if pattern_hook(i) not in hooks]
        if absent:
            raise TypeError(
                f"{type(model).__name__} has no attention-pattern hook {absent[0]!r} "
                f"({len(absent)} of {n_layers} layers lack one); headscope reads attention from "
                "hooks named blocks.{layer}.attn.hook_pattern"
            )
    n_ctx = int(getattr(cfg, "n_ctx", 0) or 0)
    return n_layers, n_ctx


def run_model(model: Any, prompt: str) -> AttentionRun:
    """Run ``model`` on ``prompt`` and return every head's attention pattern.

    Runs under ``torch.no_grad()`` in eval mode (the model's mode is restored afterwards) and
    keeps only the pattern hooks' outputs.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    if prompt == "":
        raise ValueError("the prompt is empty: type some text to run the model on")
    _, n_ctx = check_model(model)

    token_ids = model.to_tokens(prompt, truncate=False)  # TransformerLens truncates by default
    if token_ids.ndim == 2:
        token_ids = token_ids[0]
    seq_len = int(token_ids.shape[-1])
    if n_ctx and seq_len > n_ctx:
        raise ValueError(
            f"the prompt is {seq_len} tokens long, but the model's context holds {n_ctx} "
            f"(cfg.n_ctx); shorten it by {seq_len - n_ctx} tokens"
        )
    return run_token_ids(model, token_ids, prompt=prompt)


@contextlib.contextmanager
def inference(model: Any) -> Iterator[None]:
    """``torch.no_grad()`` in eval mode; the model's train/eval flag is restored afterwards.

    Eval mode matters: dropout in attention would make pattern rows sum to more than 1.
    """
    was_training = bool(getattr(model, "training", False))
    if was_training:
        model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if was_training:
            model.train()


def capture_patterns(model: Any, token_ids: torch.Tensor) -> tuple[Any, list[torch.Tensor]]:
    """Run ``model`` on ``token_ids`` ``[batch, pos]``; return its output and every layer's
    pattern ``[batch, head, query_pos, key_pos]``.

    Runs under ``torch.no_grad()`` in eval mode (the model's mode is restored afterwards) and
    keeps only the pattern hooks' outputs.
    """
    n_layers, _ = check_model(model)
    captured: dict[str, torch.Tensor] = {}

    def keep(pattern: torch.Tensor, hook: Any) -> None:
        captured[hook.name] = pattern.detach()

    hooks = [(pattern_hook(i), keep) for i in range(n_layers)]
    with inference(model):
        output = model.run_with_hooks(token_ids, fwd_hooks=hooks)
    return output, [captured.pop(pattern_hook(i)) for i in range(n_layers)]


def run_token_ids(model: Any, token_ids: torch.Tensor, *, prompt: str = "") -> AttentionRun:
    """Run ``model`` on token ids ``[pos]`` (BOS included) and return every head's pattern."""
    str_tokens = [str(t) for t in model.to_str_tokens(token_ids)]
    _, patterns = capture_patterns(model, token_ids[None])
    layers = [p[0] if p.ndim == 4 else p for p in patterns]  # drop the batch dimension
    return make_run(
        str_tokens,
        layers,
        prompt=prompt,
        model_name=model_name(model),
        token_ids=token_ids.detach().cpu(),
        causal=is_causal(model),
        partial_rows=True,  # attention sinks (GPT-OSS) take a share of a row; more than 1 is still wrong
    )


def is_causal(model: Any) -> bool:
    """Whether the model's attention is causal: TransformerLens sets ``cfg.attention_dir`` to
    ``"bidirectional"`` for encoders (BERT), ``"causal"`` otherwise."""
    return str(getattr(getattr(model, "cfg", None), "attention_dir", "causal")) != "bidirectional"
