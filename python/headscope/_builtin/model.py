"""Construction, saving and loading of the built-in model through TransformerLens 4.x."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from headscope._builtin.tokenizer import VOCAB_SIZE, ByteTokenizer

if TYPE_CHECKING:
    from transformer_lens import TransformerBridge

__all__ = ["ModelSpec", "BUILTIN_SPEC", "build_model", "save_weights", "load_weights"]


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The architecture knobs of the built-in model (everything else is TL's default)."""

    n_layers: int = 2
    n_heads: int = 8
    d_model: int = 128
    d_head: int = 16
    n_ctx: int = 256
    d_vocab: int = VOCAB_SIZE
    attn_only: bool = True
    positional_embedding_type: str = "rotary"
    normalization_type: str = "LN"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


BUILTIN_SPEC = ModelSpec()


def build_model(
    spec: ModelSpec = BUILTIN_SPEC,
    *,
    seed: int = 0,
    device: str | None = None,
) -> TransformerBridge:
    """A randomly initialised TransformerBridge of ``spec`` with the byte tokenizer."""
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    cfg = TransformerBridgeConfig(**spec.to_dict(), seed=seed, model_name="headscope-builtin")
    return TransformerBridge.boot_native(
        cfg, tokenizer=ByteTokenizer(), device=device, model_name="headscope-builtin"
    )


def save_weights(model: TransformerBridge, path: str | Path, metadata: dict[str, Any]) -> None:
    """Save the bridge's (TransformerLens-named) state dict as float32 safetensors."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={k: json.dumps(v) for k, v in metadata.items()})


def load_weights(model: TransformerBridge, path: str | Path) -> None:
    """Load weights saved by :func:`save_weights` (strict: every key must match)."""
    from safetensors.torch import load_file

    device = next(model.parameters()).device
    state = load_file(str(path), device=str(device))
    model.load_state_dict(state, strict=True)
