"""The Hugging Face ``transformers`` adapter: causal language models (``AutoModelForCausalLM``),
GPT-2, Llama/Mistral, Qwen2 and Gemma families among them.

* **Patterns.** Attention probabilities exist only under eager attention. For a capture the model
  is switched to eager with ``set_attn_implementation("eager")`` and switched back to the user's
  implementation afterwards, whatever happens; the switch is a setting, not new weights. Under
  eager every attention module returns its probabilities as output 1 ``[batch, head, query_pos,
  key_pos]``, so a forward hook per layer reads them as they are produced, on that layer's device
  (a model sharded with ``device_map="auto"`` reduces each layer where it lives), without
  ``output_attentions`` keeping every layer.
* **Interventions.** A forward pre-hook on the attention's output projection (``o_proj``,
  ``c_proj``, ``out_proj`` or ``dense``) sees every head's output side by side, ``[batch, pos,
  head * d_head]``; it is viewed as ``z [batch, pos, head, d_head]``. Interventions run in the
  model's own attention implementation.
* **Tokens.** The tokenizer is ``tokenizer=``, else the one saved with the model
  (``AutoTokenizer.from_pretrained(config.name_or_path)``, from the local cache when offline).
  BOS goes first when the tokenizer has one, as TransformerLens does: GPT-2's tokenizer adds none
  by itself, Llama's does, Qwen2's has none.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping, Sequence

import torch

from .base import (
    FinalNorm,
    ModelAdapter,
    PatternFn,
    StopForward,
    ValuesFn,
    WeightsUnavailableError,
    ZFn,
    tokenizer_vocab,
)
from .transformer_lens import repeat_groups

_LAYER_LISTS = ("model.layers", "transformer.h", "model.decoder.layers", "gpt_neox.layers", "transformer.layers")
_ATTENTION = ("self_attn", "attn", "attention", "self_attention")
_OUT_PROJ = ("o_proj", "c_proj", "out_proj", "dense")
_FINAL_NORMS = ("model.norm", "transformer.ln_f", "model.decoder.final_layer_norm", "gpt_neox.final_layer_norm",
                "transformer.norm_f", "model.final_layernorm")


def is_causal_lm(model: Any) -> bool:
    """Whether ``model`` is a ``transformers`` causal language model."""
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
    except ImportError:  # pragma: no cover - transformers is a dependency of transformer-lens
        names: set[str] = set()
    else:
        names = set()
        for value in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
            names.update([value] if isinstance(value, str) else value)
    cls = type(model).__name__
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False):
        return False
    return cls in names or cls.endswith("ForCausalLM") or cls.endswith("LMHeadModel")


def _get(root: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        root = getattr(root, part, None)
        if root is None:
            return None
    return root


class HFAdapter(ModelAdapter):
    """A Hugging Face ``transformers`` causal LM and its tokenizer."""

    kind = "Hugging Face transformers"

    def __init__(self, model: Any, *, tokenizer: Any = None) -> None:
        super().__init__(model)
        cls = type(model).__name__
        if not is_causal_lm(model):
            raise ValueError(
                f"{cls} is not a causal language model: headscope shows the attention of decoder "
                "models with a language-modelling head (AutoModelForCausalLM, e.g. GPT2LMHeadModel, "
                "LlamaForCausalLM); load the model with AutoModelForCausalLM.from_pretrained(...)"
            )
        config = model.config
        self.config = config
        self.name = str(getattr(config, "name_or_path", "") or getattr(model, "name_or_path", "") or cls)
        self.layers = self._find_layers()
        self.n_layers = len(self.layers)
        self.attention = [self._find(layer, _ATTENTION, "attention module") for layer in self.layers]
        self.out_proj = [self._find(attn, _OUT_PROJ, "attention output projection") for attn in self.attention]
        self.n_heads = int(
            getattr(config, "num_attention_heads", 0) or getattr(config, "n_head", 0) or getattr(config, "num_heads", 0)
        )
        hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "n_embd", 0) or 0)
        head_dim = getattr(config, "head_dim", None)
        self.d_head = int(head_dim) if head_dim else (hidden // self.n_heads if self.n_heads else 0)
        self.d_model = hidden
        self.d_mlp = int(getattr(config, "intermediate_size", 0) or getattr(config, "n_inner", 0) or 0)
        for key in ("max_position_embeddings", "n_positions", "n_ctx"):
            value = getattr(config, key, None)
            if isinstance(value, int) and value > 0:
                self.n_ctx, self.n_ctx_source = value, f"config.{key}"
                break
        self.tokenizer = tokenizer if tokenizer is not None else _saved_tokenizer(model, self.name)

    def _find_layers(self) -> Any:
        for dotted in _LAYER_LISTS:
            layers = _get(self.model, dotted)
            if isinstance(layers, torch.nn.ModuleList) and len(layers) > 0:
                return layers
        expected = getattr(self.model.config, "num_hidden_layers", None)
        for _, module in self.model.named_modules():
            if isinstance(module, torch.nn.ModuleList) and len(module) == expected:
                if any(hasattr(module[0], a) for a in _ATTENTION):
                    return module
        raise TypeError(
            f"headscope found no list of decoder layers in {type(self.model).__name__} (looked for "
            f"{', '.join(_LAYER_LISTS)}); this architecture is not supported yet"
        )

    def _find(self, parent: Any, names: Sequence[str], what: str) -> Any:
        for name in names:
            found = getattr(parent, name, None)
            if isinstance(found, torch.nn.Module):
                return found
        raise TypeError(
            f"headscope found no {what} in {type(parent).__name__} of {type(self.model).__name__} "
            f"(looked for {', '.join(names)}); this architecture is not supported yet"
        )

    def set_tokenizer(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    # --- weights ----------------------------------------------------------------------
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
            module = _get(self.model, dotted)
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
            logits = HFAdapter.run_with_z(self, ids, z_fns)
        finally:
            handle.remove()
        if "x" not in seen:
            raise WeightsUnavailableError(f"the final norm {path} never ran")
        return logits, _final_norm(path, module, seen["x"], seen["y"])

    # --- tokens -----------------------------------------------------------------------
    def _tok(self) -> Any:
        if self.tokenizer is None:
            raise TypeError(
                f"{type(self.model).__name__} has no tokenizer headscope could find: pass one, e.g. "
                "headscope.show(model, prompt, tokenizer=AutoTokenizer.from_pretrained(name))"
            )
        return self.tokenizer

    def to_ids(self, text: str, *, prepend_bos: bool = True) -> torch.Tensor:
        tok = self._tok()
        ids = list(tok(text, add_special_tokens=prepend_bos)["input_ids"])
        bos = getattr(tok, "bos_token_id", None)
        if prepend_bos and bos is not None and (not ids or ids[0] != bos):
            ids = [int(bos)] + ids
        return torch.tensor(ids, dtype=torch.long)

    def str_tokens(self, ids: Any) -> list[str]:
        tok = self._tok()
        flat = [int(i) for i in torch.as_tensor(ids).reshape(-1).tolist()]
        return [str(tok.decode([i])) for i in flat]

    def bos_id(self) -> int | None:
        bos = getattr(self._tok(), "bos_token_id", None)
        return None if bos is None else int(bos)

    def vocab_size(self) -> tuple[int, str]:
        size = getattr(self.config, "vocab_size", None)
        if isinstance(size, int) and size > 0:
            return size, "config.vocab_size"
        size = tokenizer_vocab(self.tokenizer)
        return (size, "the tokenizer's size") if size else (0, "")

    # --- running ----------------------------------------------------------------------
    @contextlib.contextmanager
    def eager(self) -> Iterator[None]:
        """Eager attention for the duration; the user's implementation is restored after."""
        before = getattr(self.config, "_attn_implementation", None)
        if before == "eager" or before is None:
            yield
            return
        self.model.set_attn_implementation("eager")
        try:
            yield
        finally:
            self.model.set_attn_implementation(before)

    def _forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.model(input_ids=ids, use_cache=False)
        logits = getattr(out, "logits", None)
        if not isinstance(logits, torch.Tensor) or logits.ndim != 3:
            raise TypeError(f"{type(self.model).__name__}'s forward pass returned no logits [batch, pos, vocab]")
        return logits

    def capture(
        self,
        ids: torch.Tensor,
        layers: Sequence[int],
        on_pattern: PatternFn,
        *,
        stop_after: int | None = None,
    ) -> tuple[torch.Tensor | None, dict[int, Any]]:
        kept: dict[int, Any] = {}
        last = stop_after if stop_after is not None and stop_after + 1 < self.n_layers else None

        def hook(layer: int) -> Any:
            def call(module: Any, args: Any, output: Any) -> None:
                weights = output[1] if isinstance(output, tuple) and len(output) > 1 else None
                if not isinstance(weights, torch.Tensor):
                    raise TypeError(
                        f"layer {layer}'s attention returned no probabilities under eager attention; "
                        f"{type(module).__name__} is not supported yet"
                    )
                kept[layer] = on_pattern(layer, weights)
                if layer == last:
                    raise StopForward

            return call

        handles = [self.attention[i].register_forward_hook(hook(i)) for i in layers]
        try:
            with self.eager():
                try:
                    return self._forward(ids), kept
                except StopForward:
                    return None, kept
        finally:
            for handle in handles:
                handle.remove()

    def capture_values(self, ids: torch.Tensor, layers: Sequence[int], on_values: ValuesFn) -> dict[int, Any]:
        """Value vectors from a forward hook on each layer's value projection: ``v_proj``'s
        output ``[batch, pos, kv_head * d_head]`` (its bias included), or the V third of GPT-2's
        fused ``c_attn`` output; viewed per head and repeated for grouped-query heads. Runs in
        the model's own attention implementation and stops after the last layer asked."""
        kept: dict[int, Any] = {}
        last = max(layers)
        d_head, n_heads = self.d_head, self.n_heads

        def hook(layer: int, layout: str) -> Any:
            def call(module: Any, args: Any, output: Any) -> None:
                out = output[0] if isinstance(output, tuple) else output
                if layout == "conv1d":  # q, k, v side by side
                    out = out[..., 2 * n_heads * d_head :]
                v = out.reshape(*out.shape[:-1], -1, d_head)  # [batch, pos, kv_head, d_head]
                if v.shape[2] != n_heads:
                    v = repeat_groups(v.transpose(0, 2), n_heads).transpose(0, 2)
                kept[layer] = on_values(layer, v)
                if layer == last:
                    raise StopForward

            return call

        modules = []
        for i in layers:
            _, layout = self._value_weight(i)  # raises WeightsUnavailableError for an unknown layout
            attn = self.attention[i]
            modules.append((attn.v_proj if layout == "linear" else attn.c_attn, hook(i, layout)))
        handles = [module.register_forward_hook(fn) for module, fn in modules]
        try:
            try:
                self._forward(ids)
            except StopForward:
                pass
            return kept
        finally:
            for handle in handles:
                handle.remove()

    def run_with_z(self, ids: torch.Tensor, z_fns: Mapping[int, ZFn]) -> torch.Tensor:
        n_heads = self.n_heads

        def hook(layer: int) -> Any:
            fn = z_fns[layer]

            def call(module: Any, args: Any) -> Any:
                x = args[0]
                z = x.reshape(*x.shape[:-1], n_heads, x.shape[-1] // n_heads)
                new = fn(z)
                if new is None:
                    return None
                return (new.reshape(x.shape),) + tuple(args[1:])

            return call

        handles = [self.out_proj[i].register_forward_pre_hook(hook(i)) for i in sorted(z_fns)]
        try:
            return self._forward(ids)
        finally:
            for handle in handles:
                handle.remove()


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


def _saved_tokenizer(model: Any, name: str) -> Any:
    """The tokenizer saved with the model (local files or the cache), else ``None``."""
    if not name or name == type(model).__name__:
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name)
    except Exception:  # offline, no files, no tokenizer saved: the caller asks for tokenizer=
        return None
