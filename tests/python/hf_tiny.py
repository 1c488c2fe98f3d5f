"""Tiny random Hugging Face causal LMs built from configs, and a tokenizer made here: nothing is
downloaded. Shared by the adapter tests and the browser tests."""

from __future__ import annotations

import tempfile
from typing import Any

import torch

CORPUS = [
    "The cat sat on the mat. The dog sat on the log.",
    "When Mary and John went to the store, John gave a drink to Mary.",
    "Alice and Bob walked home; Bob gave a book to Alice.",
] * 10
BOS = "<|endoftext|>"
_TOKENIZERS: dict[bool, Any] = {}


def make_tokenizer(bos: bool = True) -> Any:
    """A byte-level BPE tokenizer of 300 ids trained on :data:`CORPUS` (BOS ``<|endoftext|>``,
    which it does not add by itself, as GPT-2's; ``bos=False``: no BOS token at all, as Qwen2's)."""
    if bos in _TOKENIZERS:
        return _TOKENIZERS[bos]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=[BOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(CORPUS, trainer)
    specials = {"bos_token": BOS, "eos_token": BOS} if bos else {"eos_token": BOS}
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **specials)
    # saved and loaded again: TransformerLens reads name_or_path, which only a loaded one has
    folder = tempfile.mkdtemp(prefix="headscope-tok-")
    fast.save_pretrained(folder)
    _TOKENIZERS[bos] = AutoTokenizer.from_pretrained(folder)
    return _TOKENIZERS[bos]


def make_model(family: str, *, n_layers: int = 2, n_heads: int = 4, seed: int = 0, **extra: Any) -> Any:
    """A random-weight causal LM of ``family`` (gpt2, llama, qwen2, gemma2), in eval mode and in
    its default attention implementation (sdpa; eager for Gemma2)."""
    import transformers as tf

    vocab = len(make_tokenizer())
    torch.manual_seed(seed)
    common = {"vocab_size": vocab, "bos_token_id": 0, "eos_token_id": 0}
    if family == "gpt2":
        config = tf.GPT2Config(n_layer=n_layers, n_head=n_heads, n_embd=8 * n_heads, n_positions=64, **common, **extra)
        model = tf.GPT2LMHeadModel(config)
    else:
        cls = {
            "llama": (tf.LlamaConfig, tf.LlamaForCausalLM),
            "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM),
            "gemma2": (tf.Gemma2Config, tf.Gemma2ForCausalLM),
        }[family]
        config = cls[0](
            num_hidden_layers=n_layers, num_attention_heads=n_heads, num_key_value_heads=max(1, n_heads // 2),
            hidden_size=8 * n_heads, head_dim=8, intermediate_size=16 * n_heads, max_position_embeddings=64,
            **common, **extra,
        )
        model = cls[1](config)
    return model.eval()
