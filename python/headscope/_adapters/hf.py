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

from .base import PatternFn, StopForward, ValuesFn, WeightsUnavailableError, ZFn, get_path, tokenizer_vocab
from .hf_weights import HFWeights
from .transformer_lens import repeat_groups

_LAYER_LISTS = ("model.layers", "transformer.h", "model.decoder.layers", "gpt_neox.layers", "transformer.layers")
_ATTENTION = ("self_attn", "attn", "attention", "self_attention")
_OUT_PROJ = ("o_proj", "c_proj", "out_proj", "dense")


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


class HFAdapter(HFWeights):
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
            layers = get_path(self.model, dotted)
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
        last = stop_after if stop_after is not None and stop_after < self.n_layers else None

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
        return self._run_with_z_hooks(ids, z_fns)

    def _run_with_z_hooks(self, ids: torch.Tensor, z_fns: Mapping[int, ZFn]) -> torch.Tensor:
        """:meth:`run_with_z` with pre-hooks on the torch modules (a local nnsight model's too)."""
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


def _saved_tokenizer(model: Any, name: str) -> Any:
    """The tokenizer saved with the model (local files or the cache), else ``None``."""
    if not name or name == type(model).__name__:
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(name)
    except Exception:  # offline, no files, no tokenizer saved: the caller asks for tokenizer=
        return None
