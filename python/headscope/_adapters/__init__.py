"""Model adapters: everything that touches a model goes through one interface
(:class:`ModelAdapter`, in ``base``); :func:`as_adapter` picks the implementation from the
model's type."""

from __future__ import annotations

from typing import Any

from .base import FinalNorm, ModelAdapter, WeightsUnavailableError, check_budget, check_not_meta, check_token_ids, inference
from .pipeline import capture_patterns, capture_reduced, check_length, run_model, run_token_ids
from .qk_store import QK_TOLERANCE, QKStore
from .transformer_lens import (
    TransformerLensAdapter,
    check_model,
    is_causal,
    model_name,
    pattern_hook,
    vocab_size,
    z_hook,
)

SUPPORTED = (
    "a TransformerLens model (TransformerBridge or HookedTransformer), a Hugging Face "
    "transformers causal LM (e.g. AutoModelForCausalLM.from_pretrained(...), with tokenizer=...), "
    "or an nnsight LanguageModel"
)


def _is_transformer_lens(model: Any) -> bool:
    return all(callable(getattr(model, m, None)) for m in ("to_tokens", "to_str_tokens", "run_with_hooks"))


def _module_of(model: Any) -> str:
    return type(model).__module__ or ""


def as_adapter(model: Any, *, tokenizer: Any = None, remote: bool = False) -> ModelAdapter:
    """The adapter for ``model``: an adapter as it is, else by the model's type.

    ``remote=True`` (an nnsight model only) runs every trace on NDIF. Raises ``TypeError``
    naming the supported kinds for anything else, and ``ValueError`` for a Hugging Face model
    that is not a causal language model.
    """
    if isinstance(model, ModelAdapter):
        if tokenizer is not None:
            model.set_tokenizer(tokenizer)
        if remote and not getattr(model, "remote", False):
            raise TypeError(f"remote=True needs an nnsight model; this one is a {model.kind} model")
        return model
    if _module_of(model).startswith("nnsight"):
        from .nnsight import NNsightAdapter

        return NNsightAdapter(model, tokenizer=tokenizer, remote=remote)
    if remote:
        raise TypeError(
            f"remote=True runs a model on NDIF through nnsight; wrap the model first, e.g. "
            f"nnsight.LanguageModel(model, tokenizer=tokenizer), not a {type(model).__name__}"
        )
    if _is_transformer_lens(model) or (hasattr(model, "cfg") and not _is_hf(model)):
        if tokenizer is not None:
            raise TypeError(
                "a TransformerLens model carries its own tokenizer (model.tokenizer); pass "
                "tokenizer= only with a Hugging Face or nnsight model"
            )
        return TransformerLensAdapter(model)
    if _is_hf(model):
        from .hf import HFAdapter

        return HFAdapter(model, tokenizer=tokenizer)
    raise TypeError(
        f"{type(model).__name__} is not a supported model: headscope takes {SUPPORTED}. For "
        "attention you computed yourself, use headscope.show_attention(tokens, attention)"
    )


def _is_hf(model: Any) -> bool:
    if not _module_of(model).startswith("transformers"):
        return any(c.__module__.startswith("transformers.") for c in type(model).__mro__[1:])
    return True


__all__ = [
    "FinalNorm",
    "QK_TOLERANCE",
    "QKStore",
    "SUPPORTED",
    "ModelAdapter",
    "TransformerLensAdapter",
    "WeightsUnavailableError",
    "as_adapter",
    "capture_patterns",
    "capture_reduced",
    "check_budget",
    "check_length",
    "check_model",
    "check_not_meta",
    "check_token_ids",
    "inference",
    "is_causal",
    "model_name",
    "pattern_hook",
    "run_model",
    "run_token_ids",
    "vocab_size",
    "z_hook",
]
