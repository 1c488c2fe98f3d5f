"""Interventions: does a head matter? Head ablation and activation patching.

Both work on a head's output before the output projection, ``z [batch, pos, head, d_head]``,
through the model's adapter (:meth:`headscope._adapters.ModelAdapter.run_with_z`): the
TransformerLens hook ``blocks.{layer}.attn.hook_z``, or the input of a Hugging Face model's
``o_proj``/``c_proj``. Setting a head's ``z`` removes or replaces exactly what that head writes
to the residual stream; the output bias ``b_O``, shared by all heads of a layer, stays.

* :func:`ablate` replaces the chosen heads' ``z`` by zero, by its mean over the prompt's
  positions, or by its mean over a reference prompt or data set, and reports the per-token loss
  with and without the ablation and the top next-token predictions.
* :func:`patch_heads` runs the corrupted prompt with one head's ``z`` taken from the clean run,
  for every head, and normalizes a metric so that 0 means "as corrupted" and 1 "as clean"
  (Wang et al. 2022, the IOI paper). The heads are stacked in the batch dimension: row ``i`` of
  a batch of corrupted copies patches head ``i``, so the whole map costs a few batched forward
  passes (one for a small model), not one per head.

Everything runs under ``torch.no_grad()`` in eval mode (the model's mode is restored) and keeps
only the ``z`` outputs it needs.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Union

import numpy as np
import torch
from jaxtyping import Float, Int

from ._adapters import ModelAdapter, as_adapter, check_token_ids
from ._adapters.base import single_token_id
from ._run import check_head

Head = tuple[int, int]
#: A metric maps logits ``[batch, pos, vocab]`` to one value per row ``[batch]``.
Metric = Callable[[torch.Tensor], torch.Tensor]
PromptLike = Union[str, torch.Tensor, Sequence[int]]

METHODS = ("zero", "mean")
#: Default memory budget of one batched patching pass (activations, logits), in bytes.
PATCH_MEMORY = 1 << 30
TOP_K = 5
#: :func:`patch_heads` warns when ``|clean - corrupted|`` of the metric is below this share of
#: the metric's scale, ``max(1, |clean|, |corrupted|)`` (see :class:`UnreliableEffectWarning`).
SMALL_GAP = 1e-2

__all__ = [
    "AblationResult",
    "PatchResult",
    "SMALL_GAP",
    "UnreliableEffectWarning",
    "ablate",
    "check_heads",
    "patch_heads",
]


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AblationResult:
    """The effect of ablating some heads on one prompt.

    Loss arrays have ``seq_len - 1`` entries: entry ``p`` is the loss of predicting token
    ``p + 1`` from positions ``0 … p`` (the first token, BOS, is never predicted). Top-token
    arrays are ``[seq_len, k]``: row ``p`` is the prediction made at position ``p``.
    """

    tokens: list[str]
    token_ids: torch.Tensor
    heads: tuple[Head, ...]
    #: ``"zero"`` or ``"mean"``
    method: str
    #: number of reference tokens the mean was taken over (``None``: over the prompt itself)
    reference_tokens: int | None
    clean_loss: Float[np.ndarray, " pred"]
    ablated_loss: Float[np.ndarray, " pred"]
    clean_top_ids: Int[np.ndarray, "pos k"]
    clean_top_probs: Float[np.ndarray, "pos k"]
    ablated_top_ids: Int[np.ndarray, "pos k"]
    ablated_top_probs: Float[np.ndarray, "pos k"]
    #: display strings of the ids in the top-token arrays
    vocab: dict[int, str]

    @property
    def loss_change(self) -> Float[np.ndarray, " pred"]:
        """Per-token loss change, ablated minus clean (positive: the heads helped)."""
        return self.ablated_loss - self.clean_loss

    @property
    def clean_total(self) -> float:
        return float(self.clean_loss.mean())

    @property
    def ablated_total(self) -> float:
        return float(self.ablated_loss.mean())

    @property
    def total_change(self) -> float:
        """Change of the mean loss over the prompt, ablated minus clean."""
        return self.ablated_total - self.clean_total

    @property
    def label(self) -> str:
        """How the heads were ablated, in words."""
        if self.method == "zero":
            return "zero"
        if self.reference_tokens is None:
            return "mean over the prompt's positions"
        return f"mean over a reference ({self.reference_tokens} tokens)"

    def top_next(self, position: int) -> dict[str, list[tuple[str, float]]]:
        """The top predicted next tokens at ``position``, clean and ablated, as (token, prob)."""
        if not 0 <= position < len(self.tokens):
            raise ValueError(f"position {position} is out of range: the prompt has {len(self.tokens)} tokens")
        def pairs(ids: np.ndarray, probs: np.ndarray) -> list[tuple[str, float]]:
            return [(self.vocab[int(i)], float(p)) for i, p in zip(ids[position], probs[position])]

        return {
            "clean": pairs(self.clean_top_ids, self.clean_top_probs),
            "ablated": pairs(self.ablated_top_ids, self.ablated_top_probs),
        }

    def summary(self) -> str:
        heads = ", ".join(f"L{layer} H{head}" for layer, head in self.heads)
        return (
            f"Ablated {heads} ({self.label}): mean loss {self.clean_total:.3f} -> "
            f"{self.ablated_total:.3f} ({self.total_change:+.3f})"
        )


@dataclass(frozen=True, eq=False)
class PatchResult:
    """Activation patching of every head's output from a clean into a corrupted run.

    ``effect[layer, head] = (patched - corrupted) / (clean - corrupted)`` of the metric: 0 means
    "as corrupted", 1 "as clean".
    """

    effect: Float[np.ndarray, "layer head"]
    #: the raw metric with each head patched
    patched: Float[np.ndarray, "layer head"]
    clean_metric: float
    corrupted_metric: float
    metric: str
    clean_tokens: list[str]
    corrupted_tokens: list[str]
    #: batched forward passes spent on the heads (plus one clean and one corrupted run)
    passes: int
    seconds: float
    #: why the effects are unreliable (the text of the :class:`UnreliableEffectWarning`), or ""
    warning: str = ""

    def top_heads(self, k: int = 5) -> list[tuple[int, int, float]]:
        """The ``k`` heads with the largest effect as ``(layer, head, effect)``, largest first."""
        order = np.argsort(-self.effect, axis=None, kind="stable")[:k]
        n_heads = self.effect.shape[1]
        return [(int(i // n_heads), int(i % n_heads), float(self.effect.flat[i])) for i in order]

    def summary(self) -> str:
        layer, head, value = self.top_heads(1)[0]
        line = (
            f"Patching ({self.metric}): clean {self.clean_metric:.3f}, corrupted "
            f"{self.corrupted_metric:.3f}; largest effect L{layer} H{head} ({value:.2f})"
        )
        if self.warning:
            gap = abs(self.clean_metric - self.corrupted_metric)
            line += f". Unreliable: the clean-corrupted gap {gap:.3g} is too small to normalize by"
        return line


class UnreliableEffectWarning(UserWarning):
    """The clean and corrupted prompts give almost the same metric, so the normalized patching
    effects ``(patched - corrupted) / (clean - corrupted)`` divide by a tiny gap.

    Emitted by :func:`patch_heads` when ``|clean - corrupted| < SMALL_GAP * max(1, |clean|,
    |corrupted|)`` (1 %). Below that, a head that moves the metric by 1 % of its scale already
    shows an effect of 1 or more, as large as restoring the clean behaviour entirely (at a gap of
    0.1 %, the same head shows 10), so the map ranks heads by whatever moves the metric a little.
    The scale has a floor of 1 because both built-in metrics are in logits or nats: a logit
    difference of 0.002 against 0.001 is still measured in units of one logit, so its gap of
    0.001 is not mistaken for a large one.
    """


def _warn_at_caller(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` at the first frame outside headscope: the user's call, whether it went
    through :func:`headscope.patch_heads`, this module, or the widget."""
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)
    level = 2  # 1 is this function; 2 its caller
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)


# --- shared helpers --------------------------------------------------------------------------


def _geometry(model: Any, tokenizer: Any = None) -> tuple[ModelAdapter, int, int, int]:
    adapter = as_adapter(model, tokenizer=tokenizer)
    adapter.check()
    adapter.check_interventions()
    return adapter, adapter.n_layers, adapter.n_heads, adapter.n_ctx


def _token_ids(model: ModelAdapter, prompt: PromptLike, n_ctx: int, what: str = "prompt") -> torch.Tensor:
    """Token ids ``[pos]`` of a prompt string (BOS prepended as the model does) or of ids.

    Ids, given or from the tokenizer, are checked against the vocabulary
    (:func:`headscope._adapters.check_token_ids`) before any forward pass.
    """
    if isinstance(prompt, str):
        if prompt == "":
            raise ValueError(f"the {what} is empty: type some text to run the model on")
        ids = model.to_ids(prompt)
    elif isinstance(prompt, (torch.Tensor, np.ndarray, list, tuple)):
        ids = prompt
    else:
        raise TypeError(f"the {what} must be a string or token ids, got {type(prompt).__name__}")
    ids = check_token_ids(model, ids, what=what)
    if ids.ndim == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.ndim != 1 or ids.numel() == 0:
        raise ValueError(f"the {what}'s token ids must be one non-empty sequence, got shape {tuple(ids.shape)}")
    if ids.numel() < 2:
        raise ValueError(f"the {what} has one token: there is no next token to predict")
    if n_ctx and ids.numel() > n_ctx:
        raise ValueError(
            f"the {what} is {ids.numel()} tokens long, but the model's context holds {n_ctx} "
            f"({model.n_ctx_source})"
        )
    return ids.to(model.device)


def check_heads(heads: Any, n_layers: int, n_heads: int) -> tuple[Head, ...]:
    """Validate a list of ``(layer, head)`` pairs (or one pair); sorted, without duplicates."""
    if isinstance(heads, tuple) and len(heads) == 2 and all(isinstance(x, (int, np.integer)) for x in heads):
        heads = [heads]
    if isinstance(heads, (str, bytes)) or not isinstance(heads, (list, tuple)):
        raise TypeError(f"heads must be a list of (layer, head) pairs, got {type(heads).__name__}")
    if len(heads) == 0:
        raise ValueError("no heads to ablate: pass a list of (layer, head) pairs, e.g. [(1, 5)]")
    out: set[Head] = set()
    for i, pair in enumerate(heads):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise ValueError(f"heads[{i}] is {pair!r}; each head is a (layer, head) pair")
        try:
            out.add(check_head(pair[0], pair[1], n_layers, n_heads))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"unknown head {tuple(pair)!r}: {exc}") from None
    return tuple(sorted(out))


def _by_layer(heads: Sequence[Head]) -> dict[int, list[int]]:
    layers: dict[int, list[int]] = {}
    for layer, head in heads:
        layers.setdefault(layer, []).append(head)
    return layers


def _capture_z(
    model: ModelAdapter, tokens: torch.Tensor, layers: Sequence[int]
) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Logits and ``z`` of ``layers`` (each ``[batch, pos, head, d_head]``) of one run."""
    captured: dict[int, torch.Tensor] = {}

    def keeper(layer: int) -> Any:
        def keep(z: torch.Tensor) -> None:
            captured[layer] = z.detach().clone()

        return keep

    logits = model.run_with_z(tokens, {layer: keeper(layer) for layer in layers})
    missing = [layer for layer in layers if layer not in captured]
    if missing:
        raise TypeError(f"{model.name} never produced the per-head output of layer {missing[0]}")
    return logits, captured


def _next_token_loss(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``[batch, pos - 1]``: loss of predicting ``tokens[:, p + 1]`` at position ``p``."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return -log_probs[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]


# --- ablation --------------------------------------------------------------------------------


def _replacement_hook(heads: list[int], values: torch.Tensor | None) -> Any:
    """Set ``z[:, :, heads]`` to 0 (``values`` None) or to ``values`` ``[len(heads), d_head]``."""
    index = torch.tensor(heads, dtype=torch.long)

    def hook(z: torch.Tensor) -> torch.Tensor:
        z = z.clone()
        idx = index.to(z.device)
        if values is None:
            z[:, :, idx] = 0.0
        else:
            z[:, :, idx] = values.to(device=z.device, dtype=z.dtype)
        return z

    return hook


def _reference_ids(model: ModelAdapter, reference: Any, n_ctx: int) -> list[torch.Tensor]:
    """The token ids ``[pos]`` of every reference prompt, validated before any forward pass."""
    if isinstance(reference, (str, torch.Tensor, np.ndarray)):
        prompts: list[Any] = [reference]
    elif (
        isinstance(reference, (list, tuple))
        and reference
        and all(isinstance(r, (int, np.integer)) and not isinstance(r, bool) for r in reference)
    ):
        prompts = [list(reference)]  # one prompt given as token ids
    elif isinstance(reference, (list, tuple)):
        prompts = list(reference)
    else:
        raise TypeError(
            f"reference must be a prompt, a list of prompts, or token ids, got {type(reference).__name__}"
        )
    if not prompts:
        raise ValueError("the reference is an empty list: pass at least one prompt")
    out: list[torch.Tensor] = []
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, (torch.Tensor, np.ndarray)) and prompt.ndim == 2:
            rows = [prompt[j] for j in range(prompt.shape[0])]  # a batch of equal-length prompts
        else:
            rows = [prompt]
        out.extend(_token_ids(model, row, n_ctx, what=f"reference prompt {i}") for row in rows)
    return out


def _reference_means(
    model: ModelAdapter, references: Sequence[torch.Tensor], layers: dict[int, list[int]]
) -> tuple[dict[int, torch.Tensor], int]:
    """Mean ``z`` of each chosen head over every position of every reference prompt."""
    sums: dict[int, torch.Tensor] = {}
    count = 0
    for ids in references:
        _, z = _capture_z(model, ids[None], sorted(layers))
        for layer, heads in layers.items():
            total = z[layer][0][:, heads].double().sum(0)  # [len(heads), d_head]
            sums[layer] = sums[layer] + total if layer in sums else total
        count += int(ids.numel())
    return {layer: (s / count).float() for layer, s in sums.items()}, count


def ablate(
    model: Any,
    prompt: PromptLike,
    heads: Any,
    *,
    method: str = "zero",
    reference: Any = None,
    top_k: int = TOP_K,
    tokenizer: Any = None,
) -> AblationResult:
    """Ablate ``heads`` (``[(layer, head), …]``) on ``prompt`` and measure the effect.

    ``method``:

    * ``"zero"``: the heads write nothing (``hook_z`` set to 0);
    * ``"mean"``: each head's ``hook_z`` is replaced at every position by its mean over the
      prompt's positions, or, with ``reference`` (a prompt, a list of prompts, or token ids), by
      its mean over every position of the reference.

    Returns an :class:`AblationResult` with the per-token loss with and without the ablation,
    their change, the total change and the top ``top_k`` next tokens at every position. Raises
    ``ValueError`` for unknown heads, an unknown method, a reference with ``"zero"``, or a token
    id outside the vocabulary (in the prompt or the reference; checked before any forward pass,
    naming the id, its position and the valid range), and ``TypeError`` for token ids that are
    not integers.
    """
    model, n_layers, n_heads, n_ctx = _geometry(model, tokenizer)
    if method not in METHODS:
        raise ValueError(f"unknown ablation method {method!r}; use one of {', '.join(map(repr, METHODS))}")
    if method == "zero" and reference is not None:
        raise ValueError("a reference is only used by method='mean' (zero ablation needs none)")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    chosen = check_heads(heads, n_layers, n_heads)
    layers = _by_layer(chosen)
    tokens = _token_ids(model, prompt, n_ctx)[None]
    references = None if reference is None else _reference_ids(model, reference, n_ctx)
    k = min(top_k, model.vocab_size()[0] or top_k)

    with model.inference():
        clean_logits, clean_z = _capture_z(model, tokens, sorted(layers))
        reference_count: int | None = None
        if method == "zero":
            values: dict[int, torch.Tensor | None] = {layer: None for layer in layers}
        elif reference is None:
            values = {layer: clean_z[layer][0][:, hs].mean(0) for layer, hs in layers.items()}
        else:
            means, reference_count = _reference_means(model, references or [], layers)
            values = dict(means)
        edits = {layer: _replacement_hook(layers[layer], values[layer]) for layer in sorted(layers)}
        ablated_logits = model.run_with_z(tokens, edits)

    clean_loss = _next_token_loss(clean_logits, tokens)[0].cpu().numpy()
    ablated_loss = _next_token_loss(ablated_logits, tokens)[0].cpu().numpy()
    for name, loss in (("clean", clean_loss), ("ablated", ablated_loss)):
        if not np.all(np.isfinite(loss)):
            raise ValueError(f"the {name} run's loss is NaN or infinite: the model's logits are not finite")
    clean_probs, clean_ids = torch.softmax(clean_logits[0].float(), -1).topk(k, dim=-1)
    ablated_probs, ablated_ids = torch.softmax(ablated_logits[0].float(), -1).topk(k, dim=-1)
    unique = torch.unique(torch.cat([clean_ids.reshape(-1), ablated_ids.reshape(-1)])).cpu()
    vocab = dict(zip(unique.tolist(), model.str_tokens(unique)))
    ids = tokens[0].detach().cpu()
    return AblationResult(
        tokens=model.str_tokens(ids),
        token_ids=ids,
        heads=chosen,
        method=method,
        reference_tokens=reference_count,
        clean_loss=clean_loss,
        ablated_loss=ablated_loss,
        clean_top_ids=clean_ids.cpu().numpy(),
        clean_top_probs=clean_probs.cpu().numpy(),
        ablated_top_ids=ablated_ids.cpu().numpy(),
        ablated_top_probs=ablated_probs.cpu().numpy(),
        vocab=vocab,
    )


# --- activation patching ---------------------------------------------------------------------


def answer_id(model: ModelAdapter, answer: Any) -> int:
    """The token id of an answer given as a string that is exactly one token, or as an id."""
    return single_token_id(model, answer, what="answer")


def _make_metric(
    model: ModelAdapter, clean: torch.Tensor, answer: Any, metric: Any
) -> tuple[Metric, str]:
    if answer is not None and metric not in (None, "logit_diff"):
        raise ValueError("pass either answer=(correct, wrong) for a logit difference or metric=..., not both")
    if answer is not None or metric == "logit_diff":
        if answer is None:
            raise ValueError("metric='logit_diff' needs answer=(correct, wrong): two answer tokens")
        if isinstance(answer, (str, bytes)) or not isinstance(answer, (list, tuple)) or len(answer) != 2:
            raise ValueError(f"answer must be a pair (correct, wrong) of tokens, got {answer!r}")
        good, bad = answer_id(model, answer[0]), answer_id(model, answer[1])
        if good == bad:
            raise ValueError(f"the two answer tokens are the same token ({answer[0]!r}); name two different ones")
        names = model.str_tokens(torch.tensor([good, bad]))

        def logit_diff(logits: torch.Tensor) -> torch.Tensor:
            last = logits[:, -1].float()
            return last[:, good] - last[:, bad]

        return logit_diff, f"logit difference {names[0]!r} - {names[1]!r}"
    if metric == "loss":
        targets = clean[None]

        def loss(logits: torch.Tensor) -> torch.Tensor:
            return _next_token_loss(logits, targets.expand(logits.shape[0], -1)).mean(-1)

        return loss, "loss on the clean prompt's tokens"
    if callable(metric):
        return metric, getattr(metric, "__name__", "custom metric")
    if metric is None:
        raise ValueError("patching needs a metric: answer=(correct, wrong) for a logit difference, or metric='loss'")
    raise ValueError(f"unknown metric {metric!r}; use answer=(correct, wrong), metric='loss' or a function")


def _metric_values(metric: Metric, logits: torch.Tensor, what: str) -> torch.Tensor:
    values = metric(logits)
    values = torch.as_tensor(values).detach().float().reshape(-1).cpu()
    if values.numel() != logits.shape[0]:
        raise ValueError(
            f"the metric must return one value per batch row ({logits.shape[0]}), got {values.numel()}"
        )
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        raise ValueError(f"the metric returned NaN or infinity on {what}")
    return values


def _patch_batch_size(model: ModelAdapter, seq_len: int, budget: int) -> int:
    """How many patched copies of a ``seq_len``-token prompt fit one pass within ``budget`` bytes."""
    d_model = model.d_model
    d_vocab = model.vocab_size()[0]
    n_heads = model.n_heads
    d_mlp = model.d_mlp or 4 * d_model
    # float32: logits and their log-softmax, a layer's attention scores and pattern, and a few
    # residual-width and MLP-width activations alive at once
    per_row = 4 * seq_len * (3 * d_vocab + 3 * n_heads * seq_len + 12 * d_model + 2 * d_mlp)
    return max(1, budget // max(1, per_row))


def patch_heads(
    model: Any,
    clean: PromptLike,
    corrupted: PromptLike,
    *,
    answer: Any = None,
    metric: Any = None,
    batch_size: int | None = None,
    memory: int = PATCH_MEMORY,
    progress: Callable[[int, int], None] | None = None,
    tokenizer: Any = None,
) -> PatchResult:
    """Patch each head's output (``z``, all positions) from ``clean`` into ``corrupted``.

    The metric is a logit difference at the last position between ``answer = (correct, wrong)``
    (each exactly one token), or ``metric="loss"``: the mean next-token loss of the clean
    prompt's tokens, or a function of the logits ``[batch, pos, vocab]`` returning ``[batch]``.
    Returns a :class:`PatchResult` whose ``effect[layer, head]`` is 0 for "as corrupted" and 1 for
    "as clean". The prompts must have the same number of tokens.

    Heads are patched in batches: each batch row is a copy of the corrupted prompt with one
    head patched; ``batch_size`` rows a pass (by default as many as ``memory`` bytes allow).
    ``progress(done, total)`` is called after each pass.

    Prompts given as token ids are checked against the vocabulary before any forward pass
    (``ValueError`` naming the first bad id and its position). When the metric is the same on
    both prompts (a gap under 1e-6 of its scale) this raises ``ValueError``; when the gap is
    under 1 % of ``max(1, |clean|, |corrupted|)`` it emits an :class:`UnreliableEffectWarning`
    (a ``UserWarning``) stating both values and the gap, and the result's ``.warning`` holds
    the same text.
    """
    model, n_layers, n_heads, n_ctx = _geometry(model, tokenizer)
    clean_ids = _token_ids(model, clean, n_ctx, what="clean prompt")
    corrupted_ids = _token_ids(model, corrupted, n_ctx, what="corrupted prompt")
    if clean_ids.numel() != corrupted_ids.numel():
        raise ValueError(
            f"the clean and corrupted prompts must have the same number of tokens: clean has "
            f"{clean_ids.numel()}, corrupted has {corrupted_ids.numel()} (BOS included)"
        )
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    measure, label = _make_metric(model, clean_ids, answer, metric)
    items = [(layer, head) for layer in range(n_layers) for head in range(n_heads)]
    seq_len = int(clean_ids.numel())
    rows = batch_size or _patch_batch_size(model, seq_len, memory)
    rows = min(rows, len(items))
    start_time = time.perf_counter()
    patched = torch.empty(len(items))
    passes = 0
    with model.inference():
        clean_logits, clean_z = _capture_z(model, clean_ids[None], range(n_layers))
        clean_value = float(_metric_values(measure, clean_logits, "the clean prompt")[0])
        del clean_logits
        corrupted_value = float(
            _metric_values(measure, model.run_with_z(corrupted_ids[None], {}), "the corrupted prompt")[0]
        )
        if not math.isfinite(clean_value - corrupted_value) or abs(clean_value - corrupted_value) <= 1e-6 * max(
            1.0, abs(clean_value)
        ):
            raise ValueError(
                f"the metric is the same on the clean and the corrupted prompt ({clean_value:.6g}): "
                "the normalized effect (patched - corrupted) / (clean - corrupted) is undefined; "
                "choose prompts or answers that the model tells apart"
            )
        warning = _small_gap(clean_value, corrupted_value)
        if warning:
            _warn_at_caller(warning, UnreliableEffectWarning)
        clean_z = {layer: z[0] for layer, z in clean_z.items()}  # [pos, head, d_head]
        for start in range(0, len(items), rows):
            part = items[start : start + rows]
            edits = {}
            for layer in sorted({layer for layer, _ in part}):
                batch_rows = [i for i, (lyr, _) in enumerate(part) if lyr == layer]
                heads = [part[i][1] for i in batch_rows]
                edits[layer] = _patch_hook(batch_rows, heads, clean_z[layer])
            batch = corrupted_ids[None].expand(len(part), -1)
            logits = model.run_with_z(batch, edits)
            values = _metric_values(measure, logits, f"the patched runs of heads {part[0]} to {part[-1]}")
            del logits
            patched[start : start + len(part)] = values
            passes += 1
            if progress is not None:
                progress(start + len(part), len(items))
    effect = (patched - corrupted_value) / (clean_value - corrupted_value)
    return PatchResult(
        effect=effect.reshape(n_layers, n_heads).numpy(),
        patched=patched.reshape(n_layers, n_heads).numpy(),
        clean_metric=clean_value,
        corrupted_metric=corrupted_value,
        metric=label,
        clean_tokens=model.str_tokens(clean_ids.cpu()),
        corrupted_tokens=model.str_tokens(corrupted_ids.cpu()),
        passes=passes,
        seconds=time.perf_counter() - start_time,
        warning=warning,
    )


def _small_gap(clean: float, corrupted: float) -> str:
    """The warning text when the metric's clean-corrupted gap is too small to normalize by
    (:data:`SMALL_GAP` of ``max(1, |clean|, |corrupted|)``), else ""."""
    gap = clean - corrupted
    scale = max(1.0, abs(clean), abs(corrupted))
    if abs(gap) >= SMALL_GAP * scale:
        return ""
    return (
        f"the metric is {clean:.6g} on the clean prompt and {corrupted:.6g} on the corrupted one: "
        f"the gap {gap:.3g} is under {SMALL_GAP:.0%} of the metric's scale {scale:.3g}, and every "
        "effect (patched - corrupted) / (clean - corrupted) divides by it, so the effects are "
        f"unreliable (a head that moves the metric by 1 % of its scale shows as "
        f"{0.01 * scale / abs(gap):.3g}). Choose prompts or answers that the model tells apart"
    )


def _patch_hook(rows: list[int], heads: list[int], clean_z: torch.Tensor) -> Any:
    """Row ``rows[i]`` of the batch gets head ``heads[i]``'s clean output at every position."""
    row_index = torch.tensor(rows, dtype=torch.long)
    head_index = torch.tensor(heads, dtype=torch.long)
    source = clean_z[:, head_index].transpose(0, 1)  # [len(rows), pos, d_head]

    def hook(z: torch.Tensor) -> torch.Tensor:
        z = z.clone()
        z[row_index.to(z.device), :, head_index.to(z.device)] = source.to(device=z.device, dtype=z.dtype)
        return z

    return hook
