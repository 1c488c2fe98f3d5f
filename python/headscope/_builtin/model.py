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

__all__ = [
    "ModelSpec",
    "BUILTIN_SPEC",
    "build_model",
    "save_weights",
    "load_weights",
    "functional_forward",
    "check_functional_forward",
]


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
    rotary_dim: int | None = None  # None: every dimension of a head
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

    kwargs = {k: v for k, v in spec.to_dict().items() if not (k == "rotary_dim" and v is None)}
    cfg = TransformerBridgeConfig(**kwargs, seed=seed, model_name="headscope-builtin")
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


def _parameters(model: TransformerBridge) -> dict[str, torch.Tensor]:
    """The native module's parameters by plain name (``layers.0.attn.q.weight``, ...)."""
    return {
        name.replace("._original_component", ""): p
        for name, p in model.original_model.named_parameters()
    }


def functional_forward(
    model: TransformerBridge,
    tokens: torch.Tensor,
    n_layers: int | None = None,
    *,
    pattern_layer: int | None = None,
) -> Any:
    """Logits of the built-in architecture computed from the bridge's own parameter tensors.

    The same function as ``model(tokens)`` (pre-LN, attention-only, rotary on the first
    ``rotary_dim`` dimensions of each head, causal) written as plain tensor operations, about
    twice as fast to train through because it skips the bridge's per-module dispatch. Gradients
    flow into the bridge's parameters. ``n_layers`` runs only the first layers (then the final
    norm and unembedding): a shallower model sharing the same weights.

    With ``pattern_layer``, that layer's attention is computed explicitly and the result is
    ``(logits, pattern)``, the pattern ``[batch, head, query_pos, key_pos]`` (differentiable;
    the same values as ``blocks.{layer}.attn.hook_pattern``).
    :func:`check_functional_forward` verifies both against the bridge.
    """
    import torch.nn.functional as F

    cfg = model.cfg
    w = _parameters(model)
    if not cfg.attn_only or cfg.positional_embedding_type != "rotary":
        raise ValueError("functional_forward covers attention-only rotary models only")
    n_heads, d_head, d_model = cfg.n_heads, cfg.d_head, cfg.d_model
    depth = cfg.n_layers if n_layers is None else n_layers
    if pattern_layer is not None and not 0 <= pattern_layer < depth:
        raise ValueError(f"pattern_layer {pattern_layer} is not one of the {depth} layers run")
    rd = cfg.rotary_dim or d_head
    batch, seq = tokens.shape
    inv_freq = 1.0 / (float(cfg.rotary_base) ** (torch.arange(0, rd, 2).float() / rd))
    angles = torch.arange(seq).float()[:, None] * inv_freq  # [pos, rd / 2]
    cos = angles.cos().repeat_interleave(2, -1)
    sin = angles.sin().repeat_interleave(2, -1)

    def rope(x: torch.Tensor) -> torch.Tensor:  # [batch, head, pos, d_head], adjacent pairs
        rot, rest = x[..., :rd], x[..., rd:]
        turned = torch.stack((-rot[..., 1::2], rot[..., 0::2]), -1).flatten(-2)
        return torch.cat([rot * cos + turned * sin, rest], -1)

    eps = float(cfg.eps)
    pattern = None
    x = w["tok_embed.weight"][tokens]
    for layer in range(depth):
        pre = f"layers.{layer}."
        h = F.layer_norm(x, (d_model,), w[pre + "ln1.weight"], w[pre + "ln1.bias"], eps)

        def proj(name: str, h: torch.Tensor = h, pre: str = pre) -> torch.Tensor:
            y = F.linear(h, w[pre + f"attn.{name}.weight"], w[pre + f"attn.{name}.bias"])
            return y.view(batch, seq, n_heads, d_head).transpose(1, 2)

        q, k, v = rope(proj("q")), rope(proj("k")), proj("v")
        if layer == pattern_layer:
            scores = (q @ k.transpose(-1, -2)) / d_head**0.5
            future = torch.ones(seq, seq, dtype=torch.bool, device=scores.device).triu(1)
            pattern = scores.masked_fill(future, float("-inf")).softmax(-1)
            z = pattern @ v
        else:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        z = z.transpose(1, 2).reshape(batch, seq, n_heads * d_head)
        x = x + F.linear(z, w[pre + "attn.o.weight"], w[pre + "attn.o.bias"])
    x = F.layer_norm(x, (d_model,), w["ln_out.weight"], w["ln_out.bias"], eps)
    logits = F.linear(x, w["head.weight"], w.get("head.bias"))
    return logits if pattern_layer is None else (logits, pattern)


def check_functional_forward(model: TransformerBridge, *, atol: float = 1e-4) -> float:
    """Largest difference between :func:`functional_forward` and the bridge on random tokens.

    Compares the logits, and with ``pattern_layer`` each layer's pattern against the bridge's
    ``hook_pattern``. Raises ``RuntimeError`` above ``atol``: training must not drift from the
    model it saves.
    """
    from headscope._adapters import capture_patterns

    gen = torch.Generator().manual_seed(0)
    n = min(48, int(model.cfg.n_ctx))
    tokens = torch.randint(0, int(model.cfg.d_vocab), (2, n), generator=gen)
    device = next(model.parameters()).device
    tokens = tokens.to(device)
    theirs, patterns = capture_patterns(model, tokens)
    with torch.no_grad():
        diff = float((functional_forward(model, tokens) - theirs).abs().max())
        for layer, reference in enumerate(patterns):
            logits, pattern = functional_forward(model, tokens, pattern_layer=layer)
            diff = max(
                diff,
                float((logits - theirs).abs().max()),
                float((pattern - reference.to(pattern.dtype)).abs().max()),
            )
    if not diff <= atol:
        raise RuntimeError(
            f"functional_forward differs from the TransformerBridge by {diff:.2e} (> {atol}): "
            "the built-in trainer no longer matches TransformerLens's model"
        )
    return diff
