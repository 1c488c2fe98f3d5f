"""The nnsight adapter: a ``LanguageModel`` (``nnsight.modeling.transformers.TransformersModel``)
run through nnsight's tracing, locally or remotely on NDIF (``remote=True``).

The model inside is a Hugging Face causal LM, so the geometry, tokens and module paths are the
Hugging Face adapter's. What differs is how the model runs: every capture and every intervention
is one ``lm.trace(...)``:

* **Patterns.** Under eager attention (switched on for the trace, and restored after; nnsight
  sends the setting with a remote request) each layer's probabilities are
  ``<layer>.<attention>.output[1]``. They are reduced inside the trace, layer by layer in forward
  order, by the same reduction as every adapter (``headscope._capture``): thumbnails, exact
  scores and the uint8 form of the heads. Only those reductions are saved (``nnsight.save``),
  so a remote run sends back about ``n (n + 1) / 2`` bytes per head, never the float patterns.
  For a remote run headscope's modules travel with the request by value (``nnsight.register``),
  so the server needs no headscope install.
* **Interventions.** A head's output is the input of the attention's output projection
  (``o_proj.input``, ``[batch, pos, head * d_head]``); an edit assigns a new input there.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping, Sequence

import torch

from .base import FinalNorm, PatternFn, WeightsUnavailableError, ZFn
from .hf import HFAdapter


def _envoy(root: Any, dotted: str) -> Any:
    """The envoy at ``dotted`` (``model.layers.3.self_attn``) under ``root``."""
    for part in dotted.split("."):
        root = root[int(part)] if part.isdigit() else getattr(root, part)
    return root


class NNsightAdapter(HFAdapter):
    """An nnsight ``LanguageModel`` around a Hugging Face causal LM."""

    kind = "nnsight"

    def __init__(self, lm: Any, *, tokenizer: Any = None, remote: bool = False) -> None:
        inner = getattr(lm, "_module", None)
        if not isinstance(inner, torch.nn.Module):
            raise TypeError(f"{type(lm).__name__} holds no torch module: not an nnsight LanguageModel")
        super().__init__(inner, tokenizer=tokenizer if tokenizer is not None else getattr(lm, "tokenizer", None))
        self.lm = lm
        self.remote = bool(remote)
        names = {id(m): n for n, m in inner.named_modules()}
        self._attention_paths = [names[id(m)] for m in self.attention]
        self._out_paths = [names[id(m)] for m in self.out_proj]

    def check(self) -> None:
        if self.remote:  # the local model is a meta-device shell: the weights are on the server
            if self.n_layers <= 0 or self.n_heads <= 0:
                super().check()
            return
        super().check()

    def weights_unavailable(self) -> str | None:
        if self.remote:
            return (
                "the model runs remotely (remote=True): its weights are on the NDIF server and the "
                "local copy holds none, so the OV views are unavailable; run it locally to see them"
            )
        return super().weights_unavailable()

    def _value_weight(self, layer: int) -> tuple[torch.Tensor, str]:
        reason = self.weights_unavailable() if self.remote else None
        if reason:
            raise WeightsUnavailableError(reason)
        return super()._value_weight(layer)

    def embedding(self) -> torch.Tensor:
        if self.remote:
            raise WeightsUnavailableError(self.weights_unavailable() or "")
        return super().embedding()

    def unembedding(self) -> torch.Tensor:
        if self.remote:
            raise WeightsUnavailableError(self.weights_unavailable() or "")
        return super().unembedding()

    def run_with_final_norm(self, ids: torch.Tensor, z_fns: Mapping[int, ZFn]) -> tuple[torch.Tensor, FinalNorm]:
        """Locally the Hugging Face model inside runs with plain hooks; remotely the final norm
        cannot be read here."""
        if self.remote:
            raise WeightsUnavailableError(self.weights_unavailable() or "")
        return super().run_with_final_norm(ids, z_fns)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu") if self.remote else super().device

    @contextlib.contextmanager
    def _request(self) -> Iterator[None]:
        """Eager attention for the trace; for a remote one, headscope's code by value."""
        if self.remote:
            import nnsight

            nnsight.register("headscope")
        with self.eager():
            yield

    def capture(
        self,
        ids: torch.Tensor,
        layers: Sequence[int],
        on_pattern: PatternFn,
        *,
        stop_after: int | None = None,
    ) -> tuple[torch.Tensor | None, dict[int, Any]]:
        import nnsight

        order = sorted(layers)  # nnsight reads modules in forward order
        last = stop_after if stop_after is not None and stop_after < self.n_layers else None
        paths = self._attention_paths
        lm = self.lm
        with self._request():
            with lm.trace(ids, remote=self.remote) as tracer:
                kept = {}
                for layer in order:
                    kept[layer] = on_pattern(layer, _envoy(lm, paths[layer]).output[1])
                kept = nnsight.save(kept)
                if last is None:
                    logits = lm.output.logits.save()
                else:
                    tracer.stop()
        return (None if last is not None else logits), dict(kept)

    def run_with_z(self, ids: torch.Tensor, z_fns: Mapping[int, ZFn]) -> torch.Tensor:
        n_heads = self.n_heads
        paths = self._out_paths
        lm = self.lm
        with lm.trace(ids, remote=self.remote):
            for layer in sorted(z_fns):
                proj = _envoy(lm, paths[layer])
                x = proj.input
                new = z_fns[layer](x.reshape(*x.shape[:-1], n_heads, x.shape[-1] // n_heads))
                if new is not None:
                    proj.input = new.reshape(x.shape)
            logits = lm.output.logits.save()
        return logits
