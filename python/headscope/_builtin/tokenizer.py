"""Byte-level tokenizer of the built-in model.

Every UTF-8 byte of the text is one token (ids 0-255, the byte value), so any
text tokenizes with no vocabulary file and no download.  Three special tokens
follow the bytes:

====  ===============  =============================================
id    string           use
====  ===============  =============================================
256   ``<|bos|>``      prepended to every encoded text
257   ``<|eos|>``      never added; present because TransformerLens
                       wants one
258   ``<|pad|>``      padding for batches of unequal length
====  ===============  =============================================

Special-token strings that appear *inside* a text are not special: the text
``"<|bos|>"`` encodes to its seven bytes.

Display strings
---------------
``decode`` returns the text (invalid UTF-8 becomes U+FFFD).  A single byte of
a multi-byte character is not text on its own, so token-by-token display uses
:func:`display_tokens`, which looks at the neighbouring tokens:

* an ASCII byte (0x00-0x7F) displays as itself (``"a"``, ``" "``, ``"\\n"``);
* the lead byte of a complete, valid multi-byte UTF-8 sequence displays as
  the whole character (``"é"``, ``"😀"``);
* each continuation byte of such a sequence displays as
  :data:`CONTINUATION` (``"⋯"``);
* any other byte (a stray continuation byte, a truncated or invalid sequence)
  displays as ``"<0xHH>"``, upper-case hex;
* special tokens display as their strings (``"<|bos|>"``).

Token count equals display count, always.  TransformerLens's
``to_str_tokens`` decodes a list of one-token sequences with
``batch_decode``; this tokenizer recognises that call shape (every sequence of
length one) and returns :func:`display_tokens` of the concatenated ids, so
``model.to_str_tokens(text)`` shows characters, not U+FFFD.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from transformers import PreTrainedTokenizer

__all__ = [
    "BOS",
    "BOS_ID",
    "CONTINUATION",
    "ByteTokenizer",
    "EOS",
    "EOS_ID",
    "N_BYTES",
    "PAD",
    "PAD_ID",
    "VOCAB_SIZE",
    "display_tokens",
]

N_BYTES = 256
BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"
BOS_ID, EOS_ID, PAD_ID = 256, 257, 258
VOCAB_SIZE = 259
SPECIALS = {BOS_ID: BOS, EOS_ID: EOS, PAD_ID: PAD}
CONTINUATION = "\u22ef"  # "⋯" MIDLINE HORIZONTAL ELLIPSIS


def _utf8_length(lead: int) -> int:
    """Length of the UTF-8 sequence a lead byte announces; 0 if not a lead byte."""
    if lead < 0x80:
        return 1
    if 0xC2 <= lead <= 0xDF:
        return 2
    if 0xE0 <= lead <= 0xEF:
        return 3
    if 0xF0 <= lead <= 0xF4:
        return 4
    return 0


def display_tokens(ids: Sequence[int]) -> list[str]:
    """One display string per token id (see the module docstring for the scheme).

    >>> display_tokens([256, 104, 195, 169, 33])
    ['<|bos|>', 'h', 'é', '⋯', '!']
    """
    ids = [int(i) for i in ids]
    out: list[str] = []
    i = 0
    while i < len(ids):
        t = ids[i]
        if t >= N_BYTES or t < 0:
            out.append(SPECIALS.get(t, f"<|{t}|>"))
            i += 1
            continue
        n = _utf8_length(t)
        if n == 1:
            out.append(chr(t))
            i += 1
            continue
        if n > 1 and i + n <= len(ids) and all(0 <= x < N_BYTES for x in ids[i : i + n]):
            try:
                char = bytes(ids[i : i + n]).decode("utf-8")
            except UnicodeDecodeError:
                char = ""
            if char:
                out.append(char)
                out.extend([CONTINUATION] * (n - 1))
                i += n
                continue
        out.append(f"<0x{t:02X}>")
        i += 1
    return out


class ByteTokenizer(PreTrainedTokenizer):
    """Byte-level tokenizer: one token per UTF-8 byte, plus ``<|bos|>``.

    A ``transformers`` Python tokenizer, so TransformerLens's ``to_tokens``,
    ``to_str_tokens`` and ``to_string`` work unchanged.  Encoding with special
    tokens (the default) prepends ``<|bos|>``.  Needs no file.
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, **kwargs: Any) -> None:
        # Token strings of the byte ids are chr(byte) (as in ByT5); the special
        # tokens live in the added-token table at fixed ids after the bytes.
        from transformers.tokenization_python import AddedToken

        self._added_tokens_decoder = {
            i: AddedToken(s, lstrip=False, rstrip=False, normalized=False, special=True)
            for i, s in SPECIALS.items()
        }
        kwargs.setdefault("padding_side", "right")
        super().__init__(
            bos_token=BOS,
            eos_token=EOS,
            pad_token=PAD,
            split_special_tokens=True,  # "<|bos|>" inside a text is just bytes
            special_tokens_pattern="bos",  # [BOS] text
            clean_up_tokenization_spaces=False,
            model_max_length=kwargs.pop("model_max_length", 1 << 30),
            **kwargs,
        )
        # TransformerLens reloads a tokenizer through the hub unless it says it
        # already adds BOS; this one does (special_tokens_pattern="bos").
        self.add_bos_token = True
        self.init_kwargs["add_bos_token"] = True
        self.init_kwargs.setdefault("name_or_path", "headscope-builtin-bytes")

    # -- vocabulary ---------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return N_BYTES

    def __len__(self) -> int:
        return VOCAB_SIZE

    def get_vocab(self) -> dict[str, int]:
        vocab = {chr(i): i for i in range(N_BYTES)}
        vocab.update({s: i for i, s in SPECIALS.items()})
        return vocab

    # -- encoding -----------------------------------------------------------
    def _tokenize(self, text: str, **kwargs: Any) -> list[str]:
        return [chr(b) for b in text.encode("utf-8")]

    def _convert_token_to_id(self, token: str) -> int:
        if len(token) == 1 and ord(token) < N_BYTES:
            return ord(token)
        for i, s in SPECIALS.items():
            if token == s:
                return i
        raise KeyError(f"not a token of the byte vocabulary: {token!r}")

    def _convert_id_to_token(self, index: int) -> str:
        if 0 <= index < N_BYTES:
            return chr(index)
        return SPECIALS[index]

    # -- decoding -----------------------------------------------------------
    def convert_tokens_to_string(self, tokens: list[str]) -> str:
        buf = bytearray()
        for tok in tokens:
            if len(tok) == 1 and ord(tok) < N_BYTES:
                buf.append(ord(tok))
            else:
                buf.extend(tok.encode("utf-8"))
        return buf.decode("utf-8", errors="replace")

    def batch_decode(  # type: ignore[override]
        self,
        sequences: Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Decode a batch; a batch of one-token sequences gets display strings.

        TransformerLens's ``to_str_tokens`` passes ``[[id0], [id1], ...]``.
        Decoding bytes one by one would turn every non-ASCII byte into U+FFFD,
        so that shape (and only that shape) returns :func:`display_tokens` of
        the ids, one string per sequence.
        """
        seqs = sequences.tolist() if hasattr(sequences, "tolist") else sequences
        if (
            isinstance(seqs, (list, tuple))
            and len(seqs) > 0
            and all(isinstance(s, (list, tuple)) and len(s) == 1 for s in seqs)
        ):
            ids = [int(s[0]) for s in seqs]
            shown = display_tokens(ids)
            if skip_special_tokens:
                shown = [s for s, i in zip(shown, ids) if i < N_BYTES]
            return shown
        return super().batch_decode(
            sequences,
            skip_special_tokens=skip_special_tokens,
            clean_up_tokenization_spaces=clean_up_tokenization_spaces,
            **kwargs,
        )

    def save_vocabulary(
        self, save_directory: str, filename_prefix: str | None = None
    ) -> tuple[str, ...]:
        return ()  # nothing to save: the vocabulary is the 256 bytes
