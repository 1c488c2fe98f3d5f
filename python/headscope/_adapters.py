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
import math
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch

from ._run import DEFAULT_MEMORY_BUDGET, AttentionRun

_REQUIRED = ("to_tokens", "to_str_tokens", "run_with_hooks")
_INT64 = np.iinfo(np.int64)


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
    check_not_meta(model)
    n_ctx = int(getattr(cfg, "n_ctx", 0) or 0)
    return n_layers, n_ctx


def check_not_meta(model: Any) -> None:
    """Refuse a model whose weights are on the meta device (shapes without values).

    Looks at the first parameter only, so the check costs the same for any model size. A
    parameter that accelerate offloads (a module on its path carries ``_hf_hook``, which loads
    the weights at forward time) is left alone.
    """
    named = getattr(model, "named_parameters", None)
    if not callable(named):
        return
    try:
        name, parameter = next(iter(named()))
    except (StopIteration, TypeError, ValueError):
        return
    if not getattr(parameter, "is_meta", False):
        return
    module = model
    for part in [""] + name.split(".")[:-1]:
        module = getattr(module, part, None) if part else module
        if module is None or hasattr(module, "_hf_hook"):
            return
    raise ValueError(
        f"{type(model).__name__}'s weights are on the meta device (parameter {name!r} has a shape "
        f"{tuple(parameter.shape)} but no values), so it cannot run. Load real weights, e.g. "
        "model.to_empty(device='cpu') followed by model.load_state_dict(...), or build the model "
        "outside torch.device('meta') / accelerate's init_empty_weights"
    )


def vocab_size(model: Any) -> tuple[int, str]:
    """The number of token ids the model embeds and where that number comes from:
    ``cfg.d_vocab``, else the tokenizer's length; ``(0, "")`` when neither is known."""
    size = getattr(getattr(model, "cfg", None), "d_vocab", None)
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool) and size > 0:
        return int(size), "cfg.d_vocab"
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None:
        try:
            size = len(tokenizer)
        except TypeError:
            size = getattr(tokenizer, "vocab_size", 0)
        if isinstance(size, (int, np.integer)) and size > 0:
            return int(size), "the tokenizer's size"
    return 0, ""


def check_token_ids(model: Any, ids: Any, *, what: str = "prompt") -> torch.Tensor:
    """Validate token ids against ``model``'s vocabulary; return them as a ``torch.long`` tensor
    of the same shape (on the device they came on).

    Accepts a tensor or numpy array of an integer dtype, or a list or tuple of ints. Raises
    ``TypeError`` for any other dtype or element (floats, bools) and ``ValueError`` naming the
    first id outside ``0 … vocab - 1`` (``cfg.d_vocab``, else the tokenizer's size), its position
    and the valid range. Every path that hands token ids to a model calls this first, so a bad
    id never reaches the embedding (where it would be ``IndexError: index out of range``).
    """
    if isinstance(ids, torch.Tensor):
        if ids.is_meta:
            raise ValueError(f"the {what}'s token ids are on the meta device: they have no values")
        if ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex():
            raise TypeError(f"the {what}'s token ids must be integers, got a tensor of dtype {ids.dtype}")
        tensor = ids.detach()
    elif isinstance(ids, np.ndarray):
        if ids.dtype == np.bool_ or not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"the {what}'s token ids must be integers, got an array of dtype {ids.dtype}")
        if ids.dtype == np.uint64:  # ids past int64 become its maximum: out of range, same place
            tensor = torch.from_numpy(np.minimum(ids, _INT64.max).astype(np.int64))
        else:
            tensor = torch.from_numpy(ids.astype(np.int64))
    elif isinstance(ids, (list, tuple)):
        for i, t in enumerate(ids):
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)):
                raise TypeError(
                    f"the {what}'s token ids must be ints; position {i} holds {type(t).__name__} {t!r}"
                )
        tensor = torch.tensor([min(max(int(t), _INT64.min), _INT64.max) for t in ids], dtype=torch.long)
    else:
        raise TypeError(
            f"the {what}'s token ids must be a tensor, an array or a list of ints, got {type(ids).__name__}"
        )
    tensor = tensor.long()
    if tensor.numel() == 0:
        return tensor
    size, source = vocab_size(model)
    low_t, high_t = torch.aminmax(tensor)
    if int(low_t) >= 0 and (not size or int(high_t) < size):
        return tensor
    bad = (tensor < 0) | (tensor >= size) if size else tensor < 0
    first = int(bad.reshape(-1).nonzero()[0, 0])
    index = tuple(int(i) for i in np.unravel_index(first, tuple(tensor.shape)))
    value = ids[index[0]] if isinstance(ids, (list, tuple)) else ids[index]  # the id as given
    if len(index) == 1:
        where = f" at position {index[0]}"
    elif len(index) == 2:  # [batch, pos]
        where = f" at position {index[1]}" + (f" of row {index[0]}" if tensor.shape[0] > 1 else "")
    else:
        where = f" at index {index}" if index else ""
    valid = f"0-{size - 1} (the model's vocabulary has {size} tokens, {source})" if size else "0 or more"
    raise ValueError(
        f"token id {int(value)}{where} of the {what} is out of range: token ids must lie in "
        f"{valid}; {int(bad.sum())} of {tensor.numel()} ids lie outside it"
    )


def run_model(model: Any, prompt: str, *, memory_budget: int | None = None) -> AttentionRun:
    """Run ``model`` on ``prompt`` and return every head's attention pattern.

    Runs under ``torch.no_grad()`` in eval mode (the model's mode is restored afterwards) and
    keeps only each layer's reduction (see :func:`run_token_ids`, ``memory_budget``).
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
    return run_token_ids(model, token_ids, prompt=prompt, memory_budget=memory_budget)


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
    token_ids = check_token_ids(model, token_ids, what="token ids")
    captured: dict[str, torch.Tensor] = {}

    def keep(pattern: torch.Tensor, hook: Any) -> None:
        captured[hook.name] = pattern.detach()

    hooks = [(pattern_hook(i), keep) for i in range(n_layers)]
    with inference(model):
        output = model.run_with_hooks(token_ids, fwd_hooks=hooks)
    return output, [captured.pop(pattern_hook(i)) for i in range(n_layers)]


def capture_reduced(
    model: Any,
    token_ids: torch.Tensor,
    reducer: Any,
    layers: Sequence[int],
    keep: Callable[[int], bool],
    extra_hooks: Sequence[tuple[str, Callable[..., Any]]] = (),
    on_pattern: Callable[[int, torch.Tensor], None] | None = None,
) -> dict[int, Any]:
    """Run ``model`` on ``token_ids`` ``[1, pos]`` with a hook on the pattern of each of
    ``layers`` that reduces it on the spot (``reducer.reduce``, on the model's device) and keeps
    no float pattern. ``keep(layer)`` says whether the layer's compact head form is kept. The
    forward pass stops after the last of ``layers`` where the model supports ``stop_at_layer``.

    A validation error raised by the reduction is raised after the pass (the model's hooks are
    removed first); later layers are then not reduced.
    """
    out: dict[int, Any] = {}
    failed: list[BaseException] = []

    def reduce(pattern: torch.Tensor, hook: Any) -> None:
        if failed:
            return
        layer = int(hook.name.split(".")[1])
        try:
            layer_pattern = pattern[0] if pattern.ndim == 4 else pattern
            out[layer] = reducer.reduce(layer, layer_pattern, keep=keep(layer))
            if on_pattern is not None:
                on_pattern(layer, layer_pattern)
        except Exception as exc:  # raised below, once the model is out of its hooks
            failed.append(exc)

    hooks = list(extra_hooks) + [(pattern_hook(i), reduce) for i in layers]
    n_layers = int(model.cfg.n_layers)
    stop = max(layers) + 1
    with inference(model):
        if stop < n_layers:
            try:
                model.run_with_hooks(token_ids, fwd_hooks=hooks, stop_at_layer=stop)
            except TypeError:  # a model without stop_at_layer runs to the end
                model.run_with_hooks(token_ids, fwd_hooks=hooks)
        else:
            model.run_with_hooks(token_ids, fwd_hooks=hooks)
    if failed:
        raise failed[0]
    return out


def run_token_ids(
    model: Any, token_ids: Any, *, prompt: str = "", memory_budget: int | None = None
) -> AttentionRun:
    """Run ``model`` on token ids ``[pos]`` (BOS included) and return every head's attention,
    reduced layer by layer as the model produces it (``headscope._capture``).

    ``token_ids`` is a tensor, an array or a list of ints (a leading batch dimension of 1 is
    dropped). Ids are checked against the vocabulary before the model sees them
    (:func:`check_token_ids`), and the length against ``cfg.n_ctx``. ``memory_budget`` (bytes,
    default 1 GiB) bounds the compact head data the run keeps: the first layers that fit keep it,
    the others are computed again when a head of theirs is asked for.
    """
    from ._capture import Reducer, layer_nbytes

    n_layers, n_ctx = check_model(model)
    what = "prompt" if prompt else "token ids"
    token_ids = check_token_ids(model, token_ids, what=what)
    if token_ids.ndim == 2 and token_ids.shape[0] == 1:
        token_ids = token_ids[0]
    if token_ids.ndim != 1 or token_ids.numel() == 0:
        raise ValueError(
            f"token ids must be one non-empty sequence [pos], got shape {tuple(token_ids.shape)}"
        )
    if n_ctx and token_ids.numel() > n_ctx:
        raise ValueError(
            f"the {what} {'are' if what == 'token ids' else 'is'} {token_ids.numel()} tokens long, "
            f"but the model's context holds {n_ctx} "
            f"(cfg.n_ctx); shorten it by {token_ids.numel() - n_ctx} tokens"
        )
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else check_budget(memory_budget)
    str_tokens = [str(t) for t in model.to_str_tokens(token_ids)]
    n = int(token_ids.numel())
    n_heads = int(getattr(model.cfg, "n_heads", 0) or 0)
    causal = is_causal(model)
    # attention sinks (GPT-OSS) take a share of a row; more than 1 is still wrong
    reducer = Reducer(token_ids.cpu(), n_layers * max(1, n_heads), causal=causal, partial_rows=True)
    per_layer = layer_nbytes(max(1, n_heads), n, "tril" if causal else "full")
    if per_layer * n_layers <= budget:
        kept = n_layers
    else:  # one layer's room stays free for the layer computed again on demand
        kept = max(0, (budget - per_layer) // per_layer)
    ids = token_ids[None]
    qk = QKStore(model, n_layers, causal) if kept < n_layers else None
    if qk is not None and qk.available:
        # Q and K of the layers over the budget, and of layer 0 for the check: O(tokens * d_head)
        qk_bytes = 2 * n * max(1, n_heads) * int(getattr(model.cfg, "d_head", 0) or 0) * 4
        kept = max(0, min(kept, (budget - per_layer - (n_layers + 1) * qk_bytes) // per_layer))
        qk.layers = set(range(kept, n_layers)) | {0}
    reduced = capture_reduced(
        model, ids, reducer, range(n_layers), keep=lambda layer: layer < kept,
        extra_hooks=qk.hooks() if qk is not None and qk.available else (),
        on_pattern=qk.check if qk is not None and qk.available else None,
    )

    def recompute(layer: int) -> Any:
        again = capture_reduced(model, ids, reducer, [layer], keep=lambda _: True)
        return again[layer].compact

    recompute_head = None
    extra = 0
    if qk is not None and qk.exact:
        qk.drop(keep=set(range(kept, n_layers)))
        extra = qk.nbytes

        def recompute_head(layer: int, head: int) -> Any:
            return reducer.reduce(layer, qk.pattern(layer, head), keep=True).compact
    elif qk is not None:
        qk.drop(keep=set())

    return AttentionRun(
        str_tokens,
        [reduced[i] for i in range(n_layers)],
        prompt=prompt,
        model_name=model_name(model),
        token_ids=token_ids.detach().cpu(),
        recompute=recompute if kept < n_layers else None,
        recompute_head=recompute_head,
        extra_bytes=extra,
    )


#: Largest difference from ``hook_pattern`` allowed for heads computed again from Q and K.
QK_TOLERANCE = 1e-6


class QKStore:
    """Q and K of the layers over the memory budget, to compute one head again exactly and fast:
    ``softmax(q kᵀ / sqrt(d_head) + causal mask)``.

    Used only when the run's own check passes: in layer 0's pattern hook, the rows recomputed from
    that layer's ``hook_q``/``hook_k`` (the first and last 32 query rows of every head) must equal
    ``hook_pattern`` within ``QK_TOLERANCE``. It fails, and the forward pass runs again instead,
    where those hooks are not what the softmax sees: rotary models (TransformerLens 4.3's bridge
    does not fire ``hook_rot_q``), softcapping, sliding windows, ALiBi.
    """

    def __init__(self, model: Any, n_layers: int, causal: bool) -> None:
        hooks = getattr(model, "hook_dict", None) or {}
        self.available = all(f"blocks.{i}.attn.hook_{x}" in hooks for i in range(n_layers) for x in "qk")
        self.causal = causal
        self.layers: set[int] = set()
        self.store: dict[tuple[int, str], torch.Tensor] = {}
        self.exact = False

    def hooks(self) -> list[tuple[str, Callable[..., Any]]]:
        def keeper(layer: int, which: str) -> Callable[..., None]:
            def keep(tensor: torch.Tensor, hook: Any) -> None:  # (hook.name may be an alias's)
                t = tensor.detach()
                t = t[0] if t.ndim == 4 else t  # [pos, head, d_head]
                self.store[(layer, which)] = t.clone(memory_format=torch.contiguous_format)

            return keep

        return [(f"blocks.{i}.attn.hook_{x}", keeper(i, x)) for i in sorted(self.layers) for x in "qk"]

    def _rows(self, layer: int, heads: slice, rows: slice) -> torch.Tensor:
        """Rows ``rows`` of heads ``heads`` of ``layer``, float32 ``[head, rows, key_pos]``."""
        q = self.store[(layer, "q")][rows, heads].float()  # [rows, head, d]
        k = self.store[(layer, "k")].float()  # [pos, head_kv, d]
        n_heads_q = self.store[(layer, "q")].shape[1]
        if k.shape[1] != n_heads_q:  # grouped-query attention: each K head serves a group
            k = k.repeat_interleave(n_heads_q // k.shape[1], dim=1)
        k = k[:, heads]
        scores = torch.einsum("qhd,khd->hqk", q, k) / math.sqrt(q.shape[-1])
        if self.causal:
            start = rows.start or 0
            n = k.shape[0]
            query = torch.arange(start, start + q.shape[0], device=scores.device)[:, None]
            scores = scores.masked_fill(torch.arange(n, device=scores.device)[None, :] > query, float("-inf"))
        return scores.softmax(-1)

    def check(self, layer: int, pattern: torch.Tensor) -> None:
        if layer != 0 or (0, "q") not in self.store:
            return
        n = int(pattern.shape[-1])
        worst = 0.0
        for rows in (slice(0, min(32, n)), slice(max(0, n - 32), n)):
            recomputed = self._rows(0, slice(None), rows)
            worst = max(worst, float((recomputed - pattern[:, rows].float()).abs().max()))
        self.exact = worst <= QK_TOLERANCE

    def drop(self, keep: set[int]) -> None:
        self.store = {key: t for key, t in self.store.items() if key[0] in keep}

    @property
    def nbytes(self) -> int:
        return sum(int(t.nbytes) for t in self.store.values())

    def pattern(self, layer: int, head: int) -> torch.Tensor:
        """Head ``head`` of ``layer``, ``[1, query_pos, key_pos]``, as the model computes it."""
        return self._rows(layer, slice(head, head + 1), slice(None))


def check_budget(memory_budget: Any) -> int:
    """A memory budget in bytes: a positive int."""
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, np.integer)):
        raise TypeError(f"memory_budget must be an int (bytes), got {type(memory_budget).__name__}")
    if memory_budget <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
    return int(memory_budget)


def is_causal(model: Any) -> bool:
    """Whether the model's attention is causal: TransformerLens sets ``cfg.attention_dir`` to
    ``"bidirectional"`` for encoders (BERT), ``"causal"`` otherwise."""
    return str(getattr(getattr(model, "cfg", None), "attention_dir", "causal")) != "bidirectional"
