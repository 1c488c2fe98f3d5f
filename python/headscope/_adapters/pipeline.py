"""Runs through any adapter: a prompt to an :class:`AttentionRun`, reduced layer by layer."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from .._run import DEFAULT_MEMORY_BUDGET, AttentionRun
from .base import ModelAdapter, check_budget, check_token_ids


def _adapter(source: Any, tokenizer: Any = None) -> ModelAdapter:
    from . import as_adapter

    return as_adapter(source, tokenizer=tokenizer)


def run_model(
    model: Any, prompt: str, *, memory_budget: int | None = None, tokenizer: Any = None
) -> AttentionRun:
    """Run ``model`` (a model any adapter takes, or an adapter) on ``prompt`` and return every
    head's attention pattern.

    Runs under ``torch.no_grad()`` in eval mode (the model's mode is restored afterwards) and
    keeps only each layer's reduction (see :func:`run_token_ids`, ``memory_budget``).
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
    if prompt == "":
        raise ValueError("the prompt is empty: type some text to run the model on")
    adapter = _adapter(model, tokenizer)
    token_ids = adapter.to_ids(prompt)
    check_length(adapter, int(token_ids.numel()), "prompt")
    return run_token_ids(adapter, token_ids, prompt=prompt, memory_budget=memory_budget)


def check_length(adapter: ModelAdapter, length: int, what: str) -> None:
    """Raise ``ValueError`` when ``length`` tokens pass the model's context."""
    n_ctx = adapter.n_ctx
    if n_ctx and length > n_ctx:
        verb = "are" if what.endswith("ids") else "is"
        raise ValueError(
            f"the {what} {verb} {length} tokens long, but the model's context holds {n_ctx} "
            f"({adapter.n_ctx_source}); shorten it by {length - n_ctx} tokens"
        )


def capture_patterns(model: Any, token_ids: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Run ``model`` on ``token_ids`` ``[batch, pos]``; return its logits and every layer's
    pattern ``[batch, head, query_pos, key_pos]``.

    Runs under ``torch.no_grad()`` in eval mode (the model's mode is restored afterwards) and
    keeps every layer's float pattern: for small batches only (the probe, tests).
    """
    adapter = _adapter(model)
    adapter.check()
    token_ids = check_token_ids(adapter, token_ids, what="token ids")
    with adapter.inference():
        logits, captured = adapter.capture(
            token_ids.to(adapter.device), range(adapter.n_layers), lambda layer, pattern: pattern.detach().clone()
        )
    assert logits is not None
    return logits, [captured.pop(i) for i in range(adapter.n_layers)]


def capture_reduced(
    adapter: ModelAdapter,
    token_ids: torch.Tensor,
    reducer: Any,
    layers: Sequence[int],
    keep: Callable[[int], bool],
    qk: Any = None,
) -> dict[int, Any]:
    """Run the model on ``token_ids`` ``[1, pos]`` and reduce the pattern of each of ``layers``
    on the spot (``reducer.reduce``, on the layer's device), keeping no float pattern.
    ``keep(layer)`` says whether the layer's compact head form is kept. The forward pass stops
    after the last of ``layers`` where the model can. ``qk``: a store that keeps Q and K as the
    pass goes (its check sees each pattern).

    A validation error raised by the reduction is raised after the pass (the model's hooks are
    removed first); later layers are then not reduced.
    """
    failed: list[BaseException] = []

    def reduce(layer: int, pattern: torch.Tensor) -> Any:
        if failed:
            return None
        try:
            layer_pattern = pattern[0]
            if qk is not None:  # first: whether this layer keeps its heads may depend on it
                qk.check(layer, layer_pattern)
            return reducer.reduce(layer, layer_pattern, keep=keep(layer))
        except Exception as exc:  # raised below, once the model is out of its hooks
            failed.append(exc)
            return None

    options = {"extra_hooks": qk.hooks()} if qk is not None else {}
    with adapter.inference():
        _, out = adapter.capture(token_ids.to(adapter.device), list(layers), reduce, stop_after=max(layers), **options)
    if failed:
        raise failed[0]
    missing = [layer for layer in layers if layer not in out]
    if missing:
        raise TypeError(f"{adapter.name} produced no attention pattern for layer {missing[0]}")
    return out


def run_token_ids(
    model: Any, token_ids: Any, *, prompt: str = "", memory_budget: int | None = None, tokenizer: Any = None
) -> AttentionRun:
    """Run ``model`` (or an adapter) on token ids ``[pos]`` (BOS included) and return every
    head's attention, reduced layer by layer as the model produces it (``headscope._capture``).

    ``token_ids`` is a tensor, an array or a list of ints (a leading batch dimension of 1 is
    dropped). Ids are checked against the vocabulary before the model sees them
    (:func:`check_token_ids`), and the length against the model's context. ``memory_budget``
    (bytes, default 1 GiB) bounds the compact head data the run keeps: the first layers that fit
    keep it, the others are computed again when a head of theirs is asked for.
    """
    from .._capture import Reducer, layer_nbytes

    adapter = _adapter(model, tokenizer)
    adapter.check()
    n_layers = adapter.n_layers
    what = "prompt" if prompt else "token ids"
    token_ids = check_token_ids(adapter, token_ids, what=what)
    if token_ids.ndim == 2 and token_ids.shape[0] == 1:
        token_ids = token_ids[0]
    if token_ids.ndim != 1 or token_ids.numel() == 0:
        raise ValueError(
            f"token ids must be one non-empty sequence [pos], got shape {tuple(token_ids.shape)}"
        )
    check_length(adapter, int(token_ids.numel()), what)
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else check_budget(memory_budget)
    str_tokens = adapter.str_tokens(token_ids)
    n = int(token_ids.numel())
    n_heads = max(1, adapter.n_heads)
    causal = adapter.causal
    # attention sinks (GPT-OSS) take a share of a row; more than 1 is still wrong
    reducer = Reducer(token_ids.cpu(), n_layers * n_heads, causal=causal, partial_rows=True)
    per_layer = layer_nbytes(n_heads, n, "tril" if causal else "full")
    if per_layer * n_layers <= budget:
        kept = n_layers
    else:  # one layer's room stays free for the layer computed again on demand
        kept = max(0, (budget - per_layer) // per_layer)
    ids = token_ids[None]
    # Where the model's heads can be computed again exactly from a small store (its attention
    # input, or Q and K), layers keep that store instead of their quantized heads when it is
    # smaller (long prompts), or when they pass the budget. The store's check runs in layer 0's
    # hook before that layer is reduced, so every layer knows its outcome.
    qk = adapter.qk_store()
    store_all = qk is not None and qk.layer_nbytes(n, adapter.d_model, adapter.d_head) < per_layer
    kept_exact = kept  # layers that keep their heads when the store's check passes
    if qk is not None and store_all:
        kept_exact = 0
        qk.layers = set(range(n_layers))
    elif qk is not None and kept < n_layers:
        qk_bytes = qk.layer_nbytes(n, adapter.d_model, adapter.d_head)
        kept = kept_exact = max(0, min(kept, (budget - per_layer - (n_layers + 1) * qk_bytes) // per_layer))
        qk.layers = set(range(kept, n_layers)) | {0}
    else:
        qk = None

    def keep(layer: int) -> bool:
        return layer < (kept_exact if qk is not None and qk.exact else kept)

    reduced = capture_reduced(adapter, ids, reducer, range(n_layers), keep=keep, qk=qk)
    recompute_head = None
    extra = 0
    if qk is not None and qk.exact:
        store = qk
        store.drop(keep=set(range(kept_exact, n_layers)))
        extra = store.nbytes

        def recompute(layer: int) -> Any:
            return store.compact(layer, slice(None))

        def recompute_head(layer: int, head: int) -> Any:
            return store.compact(layer, head)

    else:
        if qk is not None:
            qk.drop(keep=set())

        def recompute(layer: int) -> Any:
            again = capture_reduced(adapter, ids, reducer, [layer], keep=lambda _: True)
            return again[layer].compact

    run = AttentionRun(
        str_tokens,
        [reduced[i] for i in range(n_layers)],
        prompt=prompt,
        model_name=adapter.name,
        token_ids=token_ids.detach().cpu(),
        recompute=recompute if any(reduced[i].compact is None for i in range(n_layers)) else None,
        recompute_head=recompute_head,
        extra_bytes=extra,
    )
    from .._value_weighted import ValueWeighting

    run._values = ValueWeighting(adapter, token_ids.detach().cpu(), run.thumb_size)  # computes nothing yet
    return run
