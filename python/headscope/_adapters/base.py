"""The one interface through which headscope touches a model (DESIGN.md §7.4).

Scores, the probe, ablation, patching, the widget and the CLI call a :class:`ModelAdapter`, never
a model library. An adapter answers five things:

* **tokens**: a prompt's token ids ``[pos]`` (BOS as the model expects it) and display strings;
* **patterns, streamed**: :meth:`ModelAdapter.capture` runs the model and hands every chosen
  layer's attention ``[batch, head, query_pos, key_pos]`` to a callback as it is produced, on
  the layer's own device, and keeps only what the callback returns (``headscope._capture``
  reduces the layer there; for a remote model, only those reductions travel back);
* **interventions**: :meth:`ModelAdapter.run_with_z` runs the model with a function on each
  chosen layer's per-head output before the output projection, ``z [batch, pos, head, d_head]``,
  which may read it or return a replacement;
* **logits**, from both;
* **geometry and name**: layers, heads, context, vocabulary, causal or not.

Implementations: ``transformer_lens`` (``TransformerBridge`` and ``HookedTransformer``), ``hf``
(Hugging Face ``transformers`` causal LMs) and ``nnsight`` (``LanguageModel``).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
from typing import Any, Callable, ClassVar, Iterator, Mapping, Sequence

import numpy as np
import torch
from jaxtyping import Float, Int

#: Called with ``(layer, pattern [batch, head, query_pos, key_pos])`` as each layer is produced;
#: what it returns is what the capture keeps of that layer (see :meth:`ModelAdapter.capture`).
PatternFn = Callable[[int, torch.Tensor], Any]
#: Called with ``(layer, values [batch, pos, head, d_head])``, each query head's value vectors
#: (grouped-query heads repeated), bias included; what it returns is kept for that layer.
ValuesFn = Callable[[int, torch.Tensor], Any]
#: Called with a layer's ``z [batch, pos, head, d_head]``; returns a replacement or ``None``.
ZFn = Callable[[torch.Tensor], "torch.Tensor | None"]

_INT64 = np.iinfo(np.int64)


class StopForward(Exception):
    """Raised inside a hook to end a forward pass after the last layer a capture needs."""


class WeightsUnavailableError(TypeError):
    """The model's weights cannot be read here (a remote model, an architecture whose value and
    output projections headscope cannot take apart per head); the message says why."""


@dataclasses.dataclass(frozen=True)
class FinalNorm:
    """The final norm (before the unembedding) as the model applied it on one run: the residual
    ``x`` became ``weight * (x - mean(x) if centred else x) / scale (+ bias)``."""

    #: ``[batch, pos]``: the divisor at each position (``sqrt(var + eps)`` for LayerNorm,
    #: ``sqrt(mean(x²) + eps)`` for RMSNorm, 1 where the model has no final norm)
    scale: torch.Tensor
    #: ``[d_model]``: the elementwise factor γ as applied (Gemma's ``1 + w``), ``None``: none
    weight: "torch.Tensor | None"
    #: True for LayerNorm (the mean is subtracted first), False for RMSNorm
    centred: bool
    #: the norm in words, e.g. ``"LayerNorm ln_final"``
    kind: str


class ModelAdapter(abc.ABC):
    """A model behind headscope's interface. Subclasses set the geometry in ``__init__``."""

    #: The library, as error messages and docs name it.
    kind: ClassVar[str] = ""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.name = type(model).__name__
        self.n_layers = 0
        self.n_heads = 0
        self.d_head = 0
        self.n_ctx = 0  # 0: no limit known
        self.n_ctx_source = "cfg.n_ctx"  # where n_ctx comes from, for error messages
        self.d_model = 0
        self.d_mlp = 0
        self.causal = True

    # --- tokens -----------------------------------------------------------------------
    @abc.abstractmethod
    def to_ids(self, text: str, *, prepend_bos: bool = True) -> Int[torch.Tensor, " pos"]:
        """Token ids of ``text``, BOS first when the model expects one and ``prepend_bos``."""

    @abc.abstractmethod
    def str_tokens(self, ids: Any) -> list[str]:
        """One display string per token id of ``ids`` ``[pos]``."""

    def bos_id(self) -> int | None:
        """The id the model puts first (BOS), or ``None`` when it adds none."""
        ids = self.to_ids("")
        return int(ids.reshape(-1)[0]) if ids.numel() else None

    @abc.abstractmethod
    def vocab_size(self) -> tuple[int, str]:
        """The number of token ids the model embeds and where that number comes from;
        ``(0, "")`` when unknown."""

    def set_tokenizer(self, tokenizer: Any) -> None:
        """Use ``tokenizer`` for this model's prompts (adapters whose model has none)."""
        raise TypeError(
            f"a {self.kind} model carries its own tokenizer; pass tokenizer= only with a Hugging "
            "Face or nnsight model"
        )

    # --- running ----------------------------------------------------------------------
    @property
    def module(self) -> Any:
        """The ``torch.nn.Module`` that runs (for train/eval mode and the device)."""
        return self.model

    @property
    def device(self) -> torch.device:
        """Where token ids go: the device of the model's first parameter."""
        try:
            return next(self.module.parameters()).device
        except (AttributeError, StopIteration, TypeError):
            return torch.device("cpu")

    @abc.abstractmethod
    def capture(
        self,
        ids: Int[torch.Tensor, "batch pos"],
        layers: Sequence[int],
        on_pattern: PatternFn,
        *,
        stop_after: int | None = None,
    ) -> tuple[Float[torch.Tensor, "batch pos vocab"] | None, dict[int, Any]]:
        """Run the model on ``ids`` and call ``on_pattern(layer, pattern)`` for each of
        ``layers`` with its attention ``[batch, head, query_pos, key_pos]`` on the layer's
        device. Return the logits (``None`` when the pass ended after layer ``stop_after``; a
        model that cannot stop early runs to the end) and ``{layer: what on_pattern returned}``.
        """

    @abc.abstractmethod
    def run_with_z(
        self, ids: Int[torch.Tensor, "batch pos"], z_fns: Mapping[int, ZFn]
    ) -> Float[torch.Tensor, "batch pos vocab"]:
        """Run the model on ``ids`` with ``z_fns[layer](z)`` called on each chosen layer's
        per-head output before the output projection, ``z [batch, pos, head, d_head]``; a
        returned tensor replaces ``z``. Return the logits."""

    # --- weights (the OV side: what a head writes) -----------------------------------------
    def weights_unavailable(self) -> str | None:
        """Why :meth:`head_weights`, :meth:`embedding` and :meth:`unembedding` cannot answer, or
        ``None`` when they can."""
        return f"the {self.kind or type(self).__name__} adapter does not expose the model's weights"

    def head_weights(
        self, layer: int
    ) -> tuple[Float[torch.Tensor, "head d_model d_head"], Float[torch.Tensor, "head d_head d_model"]]:
        """``(W_V, W_O)`` of ``layer``, one matrix per query head, without biases: a head's
        output for a residual input ``x`` attending fully to one position is ``x @ W_V[h] @
        W_O[h]`` (plus biases). Grouped-query models repeat each value head for its group.
        Raises :class:`WeightsUnavailableError` with the reason where the weights cannot be read."""
        raise WeightsUnavailableError(self.weights_unavailable() or "no weights")

    def capture_values(
        self, ids: Int[torch.Tensor, "batch pos"], layers: Sequence[int], on_values: ValuesFn
    ) -> dict[int, Any]:
        """Run the model on ``ids`` and call ``on_values(layer, values)`` for each of ``layers``
        with its value vectors ``[batch, pos, head, d_head]`` (one per query head: grouped-query
        models repeat each value head for its group; the value bias included where the model
        has one), on the layer's device. Return ``{layer: what on_values returned}``. The pass
        may stop after the last of ``layers``. Used for value-weighted attention only, on demand
        (``headscope._value_weighted``), never by a plain run. Raises
        :class:`WeightsUnavailableError` where the values cannot be read (a remote model)."""
        raise WeightsUnavailableError(self.weights_unavailable() or f"the {self.kind} adapter cannot capture value vectors")

    def embedding(self) -> Float[torch.Tensor, "vocab d_model"]:
        """``W_E``: the token embedding matrix as stored (no positional embedding, no scaling)."""
        raise WeightsUnavailableError(self.weights_unavailable() or "no weights")

    def unembedding(self) -> Float[torch.Tensor, "d_model vocab"]:
        """``W_U``: the matrix that maps the final residual (after the final norm) to logits,
        without its bias."""
        raise WeightsUnavailableError(self.weights_unavailable() or "no weights")

    def run_with_final_norm(
        self, ids: Int[torch.Tensor, "batch pos"], z_fns: Mapping[int, ZFn]
    ) -> tuple[Float[torch.Tensor, "batch pos vocab"], FinalNorm]:
        """:meth:`run_with_z` that also reads the final norm's scale at every position and its
        weight (direct logit attribution). Raises :class:`WeightsUnavailableError` with the
        reason where the norm cannot be read."""
        raise WeightsUnavailableError(self.weights_unavailable() or f"the {self.kind} adapter cannot read the final norm")

    def check_layer(self, layer: Any) -> int:
        """``layer`` as an int in ``0 … n_layers - 1``; ``TypeError``/``ValueError`` otherwise."""
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int, got {type(layer).__name__}")
        if not 0 <= int(layer) < self.n_layers:
            raise ValueError(f"layer {int(layer)} is out of range: the model has layers 0-{self.n_layers - 1}")
        return int(layer)

    def qk_store(self) -> Any:
        """A store of each layer's Q and K to compute one head again exactly, or ``None`` when
        the adapter has none (a head over the memory budget then reruns the model)."""
        return None

    # --- checks -----------------------------------------------------------------------
    def check(self) -> None:
        """Raise ``TypeError``/``ValueError`` if the model cannot run (no layers, meta weights)."""
        if self.n_layers <= 0:
            raise TypeError(f"{type(self.model).__name__} has {self.n_layers} attention layers")
        if self.n_heads <= 0:
            raise TypeError(f"{type(self.model).__name__} has {self.n_heads} attention heads")
        check_not_meta(self.module)

    def check_interventions(self) -> None:
        """Raise ``TypeError`` when the model cannot have its heads' outputs edited (ablation,
        patching); every adapter that implements :meth:`run_with_z` can, unless it says so."""

    @contextlib.contextmanager
    def inference(self) -> Iterator[None]:
        """``torch.no_grad()`` in eval mode; the model's train/eval flag is restored afterwards."""
        with inference(self.module):
            yield


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


def get_path(root: Any, dotted: str) -> Any:
    """The attribute at ``dotted`` (``model.layers``) under ``root``, or ``None``."""
    for part in dotted.split("."):
        root = getattr(root, part, None)
        if root is None:
            return None
    return root


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


def check_token_ids(source: Any, ids: Any, *, what: str = "prompt") -> torch.Tensor:
    """Validate token ids against the vocabulary of ``source`` (an adapter, or a model it can
    wrap); return them as a ``torch.long`` tensor of the same shape (on the device they came on).

    Accepts a tensor or numpy array of an integer dtype, or a list or tuple of ints. Raises
    ``TypeError`` for any other dtype or element (floats, bools) and ``ValueError`` naming the
    first id outside ``0 … vocab - 1``, its position and the valid range. Every path that hands
    token ids to a model calls this first, so a bad id never reaches the embedding (where it
    would be ``IndexError: index out of range``).
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
    size, source_name = _vocab_of(source)
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
    valid = f"0-{size - 1} (the model's vocabulary has {size} tokens, {source_name})" if size else "0 or more"
    raise ValueError(
        f"token id {int(value)}{where} of the {what} is out of range: token ids must lie in "
        f"{valid}; {int(bad.sum())} of {tensor.numel()} ids lie outside it"
    )


def single_token_id(adapter: ModelAdapter, token: Any, *, what: str = "token") -> int:
    """``token`` as one token id: an int in the vocabulary, or a string that is exactly one
    token (without BOS). ``TypeError``/``ValueError`` naming the problem otherwise; ``what``
    names the argument in the message (``"answer"``, ``"token"``)."""
    if isinstance(token, (bool, np.bool_)):
        raise TypeError(f"the {what} must be a token string or an int id, got a bool")
    if isinstance(token, (int, np.integer)):
        size, source = adapter.vocab_size()
        if int(token) < 0 or (size and int(token) >= size):
            valid = f"0-{size - 1} (the vocabulary has {size} tokens, {source})" if size else "0 or more"
            raise ValueError(f"{what} token id {int(token)} is out of range: token ids must lie in {valid}")
        return int(token)
    if not isinstance(token, str):
        raise TypeError(f"the {what} must be a token string or an int id, got {type(token).__name__}")
    if token == "":
        raise ValueError(f"the {what} is empty: name one token, e.g. ' the'")
    ids = [int(i) for i in adapter.to_ids(token, prepend_bos=False).reshape(-1).tolist()]
    if len(ids) != 1:
        pieces = ", ".join(repr(s) for s in adapter.str_tokens(torch.tensor(ids, dtype=torch.long))) if ids else "none"
        raise ValueError(
            f"the {what} {token!r} is {len(ids)} tokens ({pieces}), not one token; name a single token "
            "(mind the leading space) or pass its id"
        )
    return ids[0]


def _vocab_of(source: Any) -> tuple[int, str]:
    if isinstance(source, ModelAdapter):
        return source.vocab_size()
    from . import as_adapter
    from .transformer_lens import vocab_size

    try:
        return as_adapter(source).vocab_size()
    except (TypeError, ValueError):  # not a model: read cfg.d_vocab or a tokenizer as given
        return vocab_size(source)


def check_budget(memory_budget: Any) -> int:
    """A memory budget in bytes: a positive int."""
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, np.integer)):
        raise TypeError(f"memory_budget must be an int (bytes), got {type(memory_budget).__name__}")
    if memory_budget <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
    return int(memory_budget)


def tokenizer_vocab(tokenizer: Any) -> int:
    """A tokenizer's number of ids (``len``, else ``vocab_size``), 0 when unknown."""
    if tokenizer is None:
        return 0
    try:
        size = len(tokenizer)
    except TypeError:
        size = getattr(tokenizer, "vocab_size", 0)
    return int(size) if isinstance(size, (int, np.integer)) and size > 0 else 0
