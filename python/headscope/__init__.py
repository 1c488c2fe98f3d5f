"""headscope: look inside a transformer's attention heads from a notebook.

>>> import headscope
>>> w = headscope.show(None, "The cat sat on the mat. The cat sat on the mat.")  # built-in model
>>> w.layer, w.head = 1, 2
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ._adapters.base import WeightsUnavailableError
from ._dla import DLAResult
from ._intervene import AblationResult, PatchResult
from ._loading import ModelUnavailableError, load_model
from ._ov import OVResult
from ._probe import ProbeResult
from ._run import AttentionRun, PatternTooLargeError
from ._widget import AttentionWidget

__version__ = "0.1.0"


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where JupyterLab finds the prebuilt extension in a development (editable) install.

    A wheel installs it under ``share/jupyter/labextensions/headscope``; an editable install
    points JupyterLab here, at the folder that ``pip install -e .`` builds.
    """
    return [{"src": "labextension", "dest": "headscope"}]


def _resolve_model(model: Any) -> Any:
    """``None`` means the built-in model, a string a name for :func:`load_model`."""
    return load_model(model or "builtin") if model is None or isinstance(model, str) else model


def show(
    model: Any,
    prompt: str,
    *,
    layer: int = 0,
    head: int = 0,
    memory_budget: int | None = None,
    tokenizer: Any = None,
    remote: bool = False,
) -> AttentionWidget:
    """Run ``model`` on ``prompt`` and return a widget of every head's attention.

    ``model`` is one of:

    * a TransformerLens model: a ``TransformerBridge``, a ``HookedTransformer``, or any model with
      ``to_tokens``, ``to_str_tokens``, ``run_with_hooks`` and the hooks
      ``blocks.{layer}.attn.hook_pattern``;
    * a Hugging Face ``transformers`` causal LM (``AutoModelForCausalLM``), with its
      ``tokenizer`` (optional when the tokenizer is saved with the model); the model runs in
      eager attention for the capture and gets its own implementation back afterwards;
    * an nnsight ``LanguageModel`` (its own tokenizer); ``remote=True`` runs it on NDIF, and
      only each layer's reduction travels back;
    * a name for :func:`load_model`, or ``None`` for headscope's built-in model.

    Any other object raises ``TypeError`` naming these kinds (docs/adapters.md).

    The run keeps no float patterns: each layer is reduced as the model produces it to the atlas
    thumbnails, the exact head scores, and every head quantized as the wire sends it (uint8
    fractions of each row's maximum, lower triangle only: ``n * (n + 1) / 2 + 4 * n`` bytes per
    head of ``n`` tokens). ``w.run_result.head(layer, head)`` decodes a head to float32, each
    weight within ``row max / 510`` of the model's.

    Where a check on the run shows that a layer's heads can be computed again exactly from its
    attention input (absolute positional embeddings, as GPT-2: within 1e-6 of ``hook_pattern``),
    the layers keep that input (``n * d_model`` floats) instead of their heads once it
    is smaller (past ``8 * d_head`` tokens), and compute a head from it when it is asked for.

    ``memory_budget`` (bytes, default 1 GiB) bounds the quantized head data: the first layers
    that fit keep it, and a head of any other layer is computed again, exactly, when it is asked
    for: from that store where the check passes, else by running the model up to that layer
    (rotary models; that layer is then cached). Thumbnails and scores are always kept. 144 heads
    at 1024 tokens take 76 MB (38 MB as attention inputs), so the budget matters only for long
    prompts on large models.

    The widget holds the run while a view shows it; once its views are gone (its cell was run
    again) it drops it and computes it again if it is shown. ``w.close()`` ends the widget and
    frees everything it holds.
    """
    from ._adapters import as_adapter, check_budget, run_model

    adapter = as_adapter(_resolve_model(model), tokenizer=tokenizer, remote=remote)
    adapter.check()
    if memory_budget is not None:
        check_budget(memory_budget)
    widget = AttentionWidget(
        run_model(adapter, prompt, memory_budget=memory_budget), model=adapter, memory_budget=memory_budget
    )
    widget.layer, widget.head = layer, head
    return widget


def show_attention(
    tokens: Sequence[str], attention: Any, *, layer: int = 0, head: int = 0, causal: bool = True
) -> AttentionWidget:
    """Show precomputed attention.

    ``attention`` is a numpy array or torch tensor of shape ``[layer, head, query_pos, key_pos]``,
    ``[head, query_pos, key_pos]`` or ``[query_pos, key_pos]``, or a list of per-layer
    ``[head, query_pos, key_pos]`` arrays (a leading batch dimension of 1 is dropped), with
    ``query_pos`` and ``key_pos`` equal to ``len(tokens)``.

    The weights must be softmax outputs: finite, in [0, 1], each row (one query position)
    summing to 1 within 1e-3 (2e-3 for float16 input, 0.016 for bfloat16). All-zero rows, such
    as padding, are refused: slice padded positions off, with their tokens. With
    ``causal=True`` (the default, for decoder models such as GPT-2) no query may put more than
    1e-4 on a later key; pass ``causal=False`` for bidirectional attention (BERT-style encoders).

    Each layer is validated and reduced in turn, as for a model (see :func:`show`); the widget
    keeps every layer's quantized form (it cannot compute them again), about an eighth of the
    float32 input.

    Raises ``ValueError`` or ``TypeError`` naming the first offending layer, head and position,
    e.g. for attention on the meta device (it has no values), a row that does not sum to 1, or
    weight above the diagonal.
    """
    from ._run import make_run

    widget = AttentionWidget(make_run(tokens, attention, causal=causal))
    widget.layer, widget.head = layer, head
    return widget


def head_scores(
    source: AttentionWidget | AttentionRun | Any,
    prompt: str | None = None,
    *,
    template: Any = None,
    convention: str = "rows",
    tokenizer: Any = None,
) -> dict[str, np.ndarray]:
    """Every head's scores, each a ``[layer, head]`` array.

    Keys: ``previous_token``, ``induction``, ``duplicate_token``, ``bos_sink``, ``entropy``
    (normalized to [0, 1]) and, with ``template``, ``custom``. ``source`` is a widget (its
    current run), an :class:`AttentionRun`, or a model (or ``None`` for the built-in model) to run
    on ``prompt`` (``tokenizer=`` as for :func:`show`). ``template`` is a ``[query_pos, key_pos]`` array whose nonzero entries are the
    targets, or a function of the token ids that returns one. Definitions, and how positions
    without a valid target are treated, are in ``headscope._scores``. Runs without token ids
    (precomputed attention) compare token strings.

    With a model (a widget that has one, or a model and a prompt) and ``convention="rows"``, the
    result also holds ``copying``: the share of source tokens whose own logit is among the top 5
    of the head's OV circuit (:func:`copying_scores`; from the weights alone, the same for every
    prompt). It is left out where the weights cannot be read (a remote model).

    ``convention="rows"`` (the default) averages over the query rows that have a target, so a
    perfect head scores 1. ``convention="detect_head"`` returns TransformerLens
    ``detect_head(..., error_measure="mul")``'s values instead (previous-token, induction and
    duplicate-token, plus ``custom`` with a template): the mass on the targets over all rows,
    rows without a target counting as zeros.

    The built-in scores are exact: a run computes them from the float weights as it is
    captured. A ``template`` score on a widget or a run is computed from the run's quantized
    weights: each weight is within ``row max / 510`` of the model's, so a row's mass on its
    targets is within ``(its number of targets) * row max / 510`` (``1 / 510`` for a template
    with one target per row). With a model and a prompt, the template score is exact: it is
    computed from the float weights as the model runs.
    """
    from ._adapters import as_adapter, run_model
    from ._scores import custom_score, template_targets

    if isinstance(source, (AttentionWidget, AttentionRun)):
        if prompt is not None:
            raise TypeError("pass a prompt only with a model; a widget or a run has its own")
        run = source.run_result if isinstance(source, AttentionWidget) else source
        model = getattr(source, "_model", None) if isinstance(source, AttentionWidget) else None
    elif prompt is None:
        raise TypeError("head_scores(model, prompt) needs a prompt to run the model on")
    else:
        model = as_adapter(_resolve_model(source), tokenizer=tokenizer)
        run = run_model(model, prompt)
        if template is not None:
            return {**_exact_with_template(model, run, template, convention), **_copying_of(model, convention)}
    ids = run.score_ids()
    result = {**run.head_scores(convention), **_copying_of(model, convention)}
    if template is not None:
        causal = bool(run.causal_heads.all())
        targets = template_targets(template, ids, causal)  # checked before any layer is decoded
        custom = [np.asarray(custom_score(run.layer_pattern(i), ids, targets, causal)) for i in range(run.n_layers)]
        if convention == "detect_head":
            # detect_head's "mul": the rows without a target count as zeros
            share = template_targets(template, ids, causal).any(-1).mean()
            custom = [c * share for c in custom]
        result["custom"] = np.stack(custom)
    return result


def _copying_of(model: Any, convention: str) -> dict[str, np.ndarray]:
    """``{"copying": [layer, head]}`` for a model whose weights can be read, else ``{}``."""
    if model is None or convention != "rows" or model.weights_unavailable():
        return {}
    from ._ov import copying_scores as copying

    return {"copying": copying(model)}


def copying_scores(model: Any = None, *, tokenizer: Any = None) -> np.ndarray:
    """Every head's copying score, float32 ``[layer, head]``: the share of source tokens ``t``
    whose own logit is among the 5 largest of the head's OV circuit row ``W_E[t] @ W_V @ W_O @
    W_U`` (no LayerNorm, no biases). Over the whole vocabulary up to 4096 tokens, else over 256
    evenly spaced token ids, each ranked against the whole vocabulary (docs/ov.md). Computed
    once per model and cached. Raises :class:`WeightsUnavailableError` (with the reason) where
    the weights cannot be read."""
    from ._ov import copying_scores as copying

    return copying(_resolve_model(model), tokenizer=tokenizer)


def ov_top_tokens(
    model: Any, layer: int, head: int, token: Any, k: int = 10, *, tokenizer: Any = None
) -> OVResult:
    """The tokens whose logits head ``head`` of ``layer`` raises and lowers most when it attends
    fully to ``token``: the full OV circuit ``W_E[token] @ W_V[layer, head] @ W_O[layer, head]
    @ W_U`` of Elhage et al. 2021, without LayerNorm or biases (computed as vector-matrix
    products, never as the vocab × vocab matrix).

    ``token`` is a string that is exactly one token (``" the"``; a string of several tokens is
    an error that lists them) or a token id. ``model`` is anything :func:`show` takes (``None``:
    the built-in model). Returns an :class:`OVResult` whose ``.raised`` and ``.lowered`` are
    ``k`` ``(token_string, logit)`` pairs, strongest first. Raises ``ValueError``/``TypeError``
    for a bad layer, head, token or ``k``, and :class:`WeightsUnavailableError` (saying why) for
    a model whose weights cannot be read here, such as a remote nnsight model.
    """
    from ._ov import ov_top_tokens as top

    return top(_resolve_model(model), layer, head, token, k, tokenizer=tokenizer)


def direct_logit_attribution(
    model: Any, prompt: Any, query_pos: int, tokens: Any = None, *, tokenizer: Any = None
) -> DLAResult:
    """Every head's direct contribution to the logits at ``query_pos`` of the token the model
    predicts there and of each of ``tokens`` (strings of one token each, or ids):
    ``norm_p(z_p[l, h] @ W_O[l, h]) · W_U[:, u]``, where ``norm_p`` is the final LayerNorm or
    RMSNorm with its scale frozen at the value the model computed at ``query_pos`` (as
    TransformerLens's ``apply_ln_to_stack``): the head's output is centred (LayerNorm only),
    divided by that scale and multiplied by the norm's weight; biases are left out.

    ``prompt`` is a string or token ids; ``query_pos`` may be negative (from the end). Returns a
    :class:`DLAResult`: ``.targets`` (the predicted token first), ``.values`` float32
    ``[target, layer, head]``, ``.of(token)``, ``.logits``. Raises as :func:`ov_top_tokens`.
    """
    from ._dla import direct_logit_attribution as dla

    return dla(_resolve_model(model), prompt, query_pos, tokens, tokenizer=tokenizer)


def _exact_with_template(model: Any, run: AttentionRun, template: Any, convention: str) -> dict[str, np.ndarray]:
    """Scores of a fresh run with the custom score computed from the float weights (a second
    pass of the model with pattern hooks that score each layer and keep nothing else)."""
    from ._scores import custom_score, template_targets

    ids = run.score_ids()
    result = run.head_scores(convention)
    causal = bool(run.causal_heads.all())
    targets = template_targets(template, ids, causal)

    def score(layer: int, pattern: Any) -> np.ndarray:
        return np.asarray(custom_score(pattern[0].float(), ids, targets, causal).cpu())

    with model.inference():
        _, custom = model.capture(run.token_ids[None].to(model.device), range(run.n_layers), score)
    values = np.stack([custom[i] for i in range(run.n_layers)]).astype(np.float32)
    if convention == "detect_head":
        values = values * targets.any(-1).mean()
    result["custom"] = values
    return result


def induction_probe(
    model: Any = None, *, length: int = 50, batch: int = 4, seed: int = 0, tokenizer: Any = None
) -> ProbeResult:
    """The standard induction diagnostic on ``model`` (``None``: the built-in model).

    ``batch`` seeded rows of BOS + ``length`` random distinct tokens, repeated once. Returns the
    induction and previous-token scores of every head (``[layer, head]``) and the per-position
    loss, whose second half an induction circuit drives down. The check finds induction heads
    whatever the user's prompt.
    """
    from ._probe import induction_probe as probe

    return probe(_resolve_model(model), length=length, batch=batch, seed=seed, tokenizer=tokenizer)


def ablate(
    model: Any,
    prompt: Any,
    heads: Any,
    *,
    method: str = "zero",
    reference: Any = None,
    top_k: int = 5,
    tokenizer: Any = None,
) -> AblationResult:
    """Ablate ``heads`` (``[(layer, head), …]``) of ``model`` on ``prompt``; no widget needed.

    ``method="zero"`` silences the heads; ``method="mean"`` replaces each head's output by its
    mean over the prompt's positions, or over ``reference`` (a prompt, a list of prompts or
    token ids) when given. Returns an :class:`AblationResult`: the per-token loss clean and
    ablated (``.clean_loss``, ``.ablated_loss``, ``.loss_change``), ``.total_change``, and the
    top next tokens at each position (``.top_next(position)``). ``model`` may be ``None`` (the
    built-in model), a name for :func:`load_model`, or any model :func:`show` takes (with
    ``tokenizer=`` for a Hugging Face model); ``prompt`` a string or token ids.
    """
    from ._intervene import ablate as run_ablation

    return run_ablation(
        _resolve_model(model), prompt, heads, method=method, reference=reference, top_k=top_k, tokenizer=tokenizer
    )


def patch_heads(
    model: Any,
    clean: Any,
    corrupted: Any,
    *,
    answer: Any = None,
    metric: Any = None,
    batch_size: int | None = None,
    tokenizer: Any = None,
) -> PatchResult:
    """Activation patching of every head's output from ``clean`` into ``corrupted``.

    The prompts must have the same number of tokens. The metric is the logit difference
    ``answer = (correct, wrong)`` at the last position (each answer exactly one token), or
    ``metric="loss"``: the mean loss of the clean prompt's next tokens (or a function of the
    logits ``[batch, pos, vocab]`` returning ``[batch]``). Returns a :class:`PatchResult` whose
    ``.effect`` is a ``[layer, head]`` array: 0 means "as corrupted", 1 "as clean". Heads are
    patched in batches (one batch row per head), not one forward pass each. ``tokenizer=`` as
    for :func:`show`.
    """
    from ._intervene import patch_heads as run_patching

    return run_patching(
        _resolve_model(model),
        clean,
        corrupted,
        answer=answer,
        metric=metric,
        batch_size=batch_size,
        tokenizer=tokenizer,
    )


__all__ = [
    "AblationResult",
    "DLAResult",
    "OVResult",
    "copying_scores",
    "direct_logit_attribution",
    "ov_top_tokens",
    "AttentionRun",
    "AttentionWidget",
    "ModelUnavailableError",
    "PatchResult",
    "PatternTooLargeError",
    "ProbeResult",
    "WeightsUnavailableError",
    "ablate",
    "head_scores",
    "induction_probe",
    "load_model",
    "patch_heads",
    "show",
    "show_attention",
    "__version__",
]
