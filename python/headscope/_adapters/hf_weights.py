"""The Hugging Face adapter's weights: each head's ``W_V`` and ``W_O`` taken apart from the
value and output projections (``v_proj``/``o_proj``, or GPT-2's fused ``c_attn`` and
``c_proj``), ``W_E``, ``W_U``, and the final norm as the model applies it (for direct logit
attribution). Mixed into :class:`headscope._adapters.hf.HFAdapter`."""

from __future__ import annotations

import abc
from typing import Any, Mapping

import torch

from .base import FinalNorm, ModelAdapter, WeightsUnavailableError, ZFn, get_path
from .transformer_lens import repeat_groups

_FINAL_NORMS = ("model.norm", "transformer.ln_f", "model.decoder.final_layer_norm", "gpt_neox.final_layer_norm",
                "transformer.norm_f", "model.final_layernorm")


class HFWeights(ModelAdapter):
    """Weight access for a Hugging Face causal LM; the adapter sets ``attention`` and
    ``out_proj`` (one module per layer) and runs the model (``_run_with_z_hooks``)."""

    attention: Any
    out_proj: Any

    @abc.abstractmethod
    def _run_with_z_hooks(self, ids: torch.Tensor, z_fns: Mapping[int, ZFn]) -> torch.Tensor:
        """:meth:`run_with_z` through plain torch hooks."""

    def _value_weight(self, layer: int) -> tuple[torch.Tensor, str]:
        """The value projection's weight and its layout: ``"linear"`` (``v_proj``, ``[out,
        in]``) or ``"conv1d"`` (GPT-2's fused ``c_attn``, ``[in, 3 * hidden]``, V last)."""
        attn = self.attention[layer]
        v_proj = getattr(attn, "v_proj", None)
        if isinstance(v_proj, torch.nn.Linear):
            return v_proj.weight, "linear"
        c_attn = getattr(attn, "c_attn", None)
        if c_attn is not None and type(c_attn).__name__ == "Conv1D" and not getattr(attn, "is_cross_attention", False):
            return c_attn.weight, "conv1d"
        raise WeightsUnavailableError(
            f"headscope cannot take {type(attn).__name__}'s value projection apart per head (it knows "
            "v_proj and GPT-2's c_attn); the OV views need it"
        )

    def weights_unavailable(self) -> str | None:
        try:
            weights = [self._value_weight(0)[0], self.out_proj[0].weight, self.embedding(), self.unembedding()]
        except WeightsUnavailableError as exc:
            return str(exc)
        if any(w.is_meta for w in weights):
            return (
                f"{type(self.model).__name__}'s weights are not in memory here (offloaded or on the meta "
                "device), so the OV views cannot read them"
            )
        return None

    def head_weights(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        layer = self.check_layer(layer)
        weight, layout = self._value_weight(layer)
        d_head, n_heads = self.d_head, self.n_heads
        if layout == "linear":  # [n_kv * d_head, d_model] -> [n_kv, d_model, d_head]
            w_v = weight.detach().reshape(-1, d_head, weight.shape[-1]).transpose(1, 2)
        else:  # [d_model, 3 * n_heads * d_head]: q, k, v side by side
            v = weight.detach()[:, 2 * n_heads * d_head :]
            w_v = v.reshape(v.shape[0], n_heads, d_head).permute(1, 0, 2)
        out = self.out_proj[layer]
        if type(out).__name__ == "Conv1D":  # [n_heads * d_head, d_model]
            w_o = out.weight.detach()
        elif isinstance(out, torch.nn.Linear):  # [d_model, n_heads * d_head]
            w_o = out.weight.detach().T
        else:
            raise WeightsUnavailableError(f"headscope cannot read {type(out).__name__}'s weight as a head's W_O")
        return repeat_groups(w_v, n_heads), w_o.reshape(n_heads, d_head, -1)

    def embedding(self) -> torch.Tensor:
        embed = self.model.get_input_embeddings()
        weight = getattr(embed, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise WeightsUnavailableError(f"{type(self.model).__name__} has no input embedding matrix")
        return weight.detach()

    def unembedding(self) -> torch.Tensor:
        head = self.model.get_output_embeddings()
        weight = getattr(head, "weight", None)
        if not isinstance(weight, torch.Tensor):
            raise WeightsUnavailableError(f"{type(self.model).__name__} has no output embedding (language-model head)")
        return weight.detach().T

    def final_norm_module(self) -> tuple[str, torch.nn.Module]:
        """The final norm's path and module; :class:`WeightsUnavailableError` when unknown."""
        for dotted in _FINAL_NORMS:
            module = get_path(self.model, dotted)
            if isinstance(module, torch.nn.Module):
                return dotted, module
        raise WeightsUnavailableError(
            f"headscope found no final norm in {type(self.model).__name__} (looked for {', '.join(_FINAL_NORMS)})"
        )

    def run_with_final_norm(self, ids: torch.Tensor, z_fns: Mapping[int, ZFn]) -> tuple[torch.Tensor, FinalNorm]:
        """``run_with_z`` plus a forward hook on the final norm that keeps its input and output.
        The scale is computed from the input (LayerNorm: ``sqrt(var + eps)``, centred; RMSNorm:
        ``sqrt(mean(x²) + eps)``) and checked: the weight times the normalized input (plus the
        bias) must give the module's own output, with ``w`` or Gemma's ``1 + w``."""
        path, module = self.final_norm_module()
        seen: dict[str, torch.Tensor] = {}

        def keep(mod: Any, args: Any, output: Any) -> None:
            seen["x"], seen["y"] = args[0].detach(), (output[0] if isinstance(output, tuple) else output).detach()

        handle = module.register_forward_hook(keep)
        try:  # plain hooks on the torch module, also for a local nnsight model (its module inside)
            logits = self._run_with_z_hooks(ids, z_fns)
        finally:
            handle.remove()
        if "x" not in seen:
            raise WeightsUnavailableError(f"the final norm {path} never ran")
        return logits, _final_norm(path, module, seen["x"], seen["y"])


def _final_norm(path: str, module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> FinalNorm:
    """The norm ``module`` applied to ``x`` giving ``y``, as scale, weight and centring."""
    x32, y32 = x.float(), y.float()
    centred = isinstance(module, torch.nn.LayerNorm) or "LayerNorm" in type(module).__name__
    eps = next((float(getattr(module, a)) for a in ("eps", "variance_epsilon", "epsilon") if isinstance(getattr(module, a, None), float)), None)
    if eps is None:
        raise WeightsUnavailableError(f"the final norm {path} ({type(module).__name__}) has no eps headscope can read")
    normed = x32 - x32.mean(-1, keepdim=True) if centred else x32
    scale = (normed.pow(2).mean(-1) + eps).sqrt()
    weight = getattr(module, "weight", None)
    bias = getattr(module, "bias", None)
    base = normed / scale[..., None]
    candidates = [None] if not isinstance(weight, torch.Tensor) else [weight.detach().float(), 1 + weight.detach().float()]
    for gamma in candidates:
        rebuilt = base if gamma is None else base * gamma
        if isinstance(bias, torch.Tensor):
            rebuilt = rebuilt + bias.detach().float()
        if torch.allclose(rebuilt, y32, atol=1e-3 * max(1.0, float(y32.abs().max())), rtol=1e-3):
            kind = ("LayerNorm " if centred else "RMSNorm ") + path
            return FinalNorm(scale, gamma, centred, kind)
    raise WeightsUnavailableError(
        f"headscope cannot reproduce the final norm {path} ({type(module).__name__}) as a LayerNorm or an "
        "RMSNorm, so it cannot attribute logits to heads"
    )
