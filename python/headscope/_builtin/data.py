"""Synthetic training data of the built-in model: repeated random segments and English-like text.

Everything is drawn from a ``numpy.random.Generator`` that the caller seeds, so
a seed gives the same batches on every machine.  A batch is an int64 array
``[batch, seq_len]`` whose first column is ``<|bos|>`` and whose other entries
are byte ids (0-255).

Three kinds of rows: an echo row with probability ``p_echo``, otherwise English-like text with
probability ``p_english`` and repeated random segments for the rest:

* **Repeated random segments.**  Pick an alphabet (all 256 bytes, printable
  ASCII, lower-case letters, letters and digits, or a random subset of 8-64
  bytes), a segment length from 3 to 100 (log-uniform), draw the segment
  (without replacement when the alphabet allows it, half of the time), and
  write it two or three times, sometimes with random filler bytes in between.
  Units follow one another until the row is full.
* **English-like text.**  Sentences of 4-14 words drawn from a fixed list of
  common English words with Zipf-like weights, capitalised, with punctuation.
  Each sentence repeats an earlier sentence of the same row with probability
  ``p_repeat_sentence``.
* **Echo rows.**  Uniform random bytes in which each byte, with probability
  ``echo_rate``, repeats the byte two positions before it.  The next byte is
  then the *previous* byte half of the time, which only a head that looks
  exactly one position back can use, whatever the bytes are: the job of a
  previous-token head.  :func:`make_warmup_batch` (echo rows only) is the
  data of training's first phase, in which that head forms.
"""

from __future__ import annotations

import dataclasses
import string
from typing import Any

import numpy as np

from headscope._builtin.tokenizer import BOS_ID

__all__ = [
    "DataRecipe",
    "make_batch",
    "make_warmup_batch",
    "echo_rows",
    "english_text",
    "repeated_segment_row",
    "WORDS",
]

# Common English words, roughly in order of frequency (weights are Zipf-like by rank).
WORDS: tuple[str, ...] = tuple(
    """
the of and to a in is it you that he was for on are with as I his they be at one have this
from or had by word but what some we can out other were all there when up use your how said an
each she which do their time if will way about many then them write would like so these her long
make thing see him two has look more day could go come did number sound no most people my over
know water than call first who may down side been now find any new work part take get place made
live where after back little only round man year came show every good me give our under name very
through just form sentence great think say help low line differ turn cause much mean before move
right boy old too same tell does set three want air well also play small end put home read hand port
large spell add even land here must big high such follow act why ask men change went light kind off
need house picture try us again animal point mother world near build self earth father head stand own
page should country found answer school grow study still learn plant cover food sun four between state
keep eye never last let thought city tree cross farm hard start might story saw far sea draw left late
run while press close night real life few north open seem together next white children begin got walk
example ease paper group always music those both mark often letter until mile river car feet care second
book carry took science eat room friend began idea fish mountain stop once base hear horse cut sure watch
color face wood main enough plain girl usual young ready above ever red list though feel talk bird soon
body dog family direct pose leave song measure door product black short numeral class wind question happen
complete ship area half rock order fire south problem piece told knew pass since top whole king space heard
best hour better true during hundred five remember step early hold west ground interest reach fast verb sing
listen six table travel less morning ten simple several vowel toward war lay against pattern slow center love
person money serve appear road map rain rule govern pull cold notice voice unit power town fine certain fly
fall lead cry dark machine note wait plan figure star box noun field rest correct able pound done beauty drive
stood contain front teach week final gave green oh quick develop ocean warm free minute strong special mind
behind clear tail produce fact street inch multiply nothing course stay wheel full force blue object decide
surface deep moon island foot system busy test record boat common gold possible plane stead dry wonder laugh
thousand ago ran check game shape equate hot miss brought heat snow tire bring yes distant fill east paint
language among cat mat sat
""".split()
)

_ALPHABETS: tuple[bytes, ...] = (
    bytes(range(256)),
    string.printable[:95].encode(),  # digits, letters, punctuation, space
    string.ascii_lowercase.encode(),
    (string.ascii_letters + string.digits).encode(),
)


@dataclasses.dataclass(frozen=True)
class DataRecipe:
    """Knobs of the training mix (stored in the model card)."""

    p_echo: float = 0.1
    echo_rate: float = 0.5
    p_english: float = 0.3
    min_segment: int = 3
    max_segment: int = 100
    p_no_repeat_in_segment: float = 1.0
    p_three_copies: float = 0.25
    p_gap: float = 0.0
    max_gap: int = 20
    p_repeat_sentence: float = 0.3
    min_words: int = 4
    max_words: int = 14

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _word_probs() -> np.ndarray:
    w = 1.0 / (np.arange(len(WORDS)) + 2.0)
    return w / w.sum()


_WORD_P = _word_probs()


def _alphabet(rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(len(_ALPHABETS) + 1))
    if k < len(_ALPHABETS):
        return np.frombuffer(_ALPHABETS[k], dtype=np.uint8).astype(np.int64)
    size = int(rng.integers(8, 65))
    return rng.choice(256, size=size, replace=False).astype(np.int64)


def repeated_segment_row(rng: np.random.Generator, n: int, recipe: DataRecipe) -> np.ndarray:
    """``n`` byte ids made of repeated random segments (no BOS)."""
    out: list[np.ndarray] = []
    total = 0
    # A segment must fit twice in the row, or it teaches nothing about repeats: in a short
    # curriculum phase (32 or 64 tokens) long segments would never come back.
    longest = max(recipe.min_segment, min(recipe.max_segment, n // 2))
    lo, hi = np.log(recipe.min_segment), np.log(longest + 1)
    while total < n:
        alphabet = _alphabet(rng)
        length = int(np.exp(rng.uniform(lo, hi)))
        length = max(recipe.min_segment, min(longest, length))
        no_repeat = length <= len(alphabet) and rng.random() < recipe.p_no_repeat_in_segment
        seg = rng.choice(alphabet, size=length, replace=not no_repeat)
        copies = 3 if rng.random() < recipe.p_three_copies else 2
        for c in range(copies):
            if c > 0 and rng.random() < recipe.p_gap:
                gap = int(rng.integers(1, recipe.max_gap + 1))
                out.append(rng.choice(alphabet, size=gap, replace=True))
                total += gap
            out.append(seg)
            total += length
    return np.concatenate(out)[:n]


def _sentence(rng: np.random.Generator, recipe: DataRecipe) -> str:
    n = int(rng.integers(recipe.min_words, recipe.max_words + 1))
    words = [WORDS[i] for i in rng.choice(len(WORDS), size=n, p=_WORD_P)]
    if n > 5 and rng.random() < 0.3:
        words[int(rng.integers(2, n - 1))] += ","
    words[0] = words[0][0].upper() + words[0][1:]
    end = str(rng.choice([".", ".", ".", "?", "!"]))
    return " ".join(words) + end


def english_text(rng: np.random.Generator, n_bytes: int, recipe: DataRecipe = DataRecipe()) -> str:
    """At least ``n_bytes`` bytes of English-like sentences, some repeated."""
    sentences: list[str] = []
    total = 0
    while total < n_bytes:
        if sentences and rng.random() < recipe.p_repeat_sentence:
            s = sentences[int(rng.integers(len(sentences)))]
        else:
            s = _sentence(rng, recipe)
        sentences.append(s)
        total += len(s) + 1
    return " ".join(sentences)


def _english_row(rng: np.random.Generator, n: int, recipe: DataRecipe) -> np.ndarray:
    text = english_text(rng, n + 1, recipe).encode("utf-8")
    # Start at a random place of the first sentence half of the time, like a crop.
    start = int(rng.integers(0, 8)) if rng.random() < 0.5 else 0
    text = text[start:] if len(text) - start >= n else text
    return np.frombuffer(text[:n], dtype=np.uint8).astype(np.int64)


def echo_rows(rng: np.random.Generator, batch: int, n: int, echo_rate: float = 0.5) -> np.ndarray:
    """``[batch, n]`` random bytes where each byte repeats the one two before it with ``echo_rate``."""
    rows = rng.integers(0, 256, size=(batch, n), dtype=np.int64)
    echo = rng.random((batch, n)) < echo_rate
    for i in range(2, n):
        rows[:, i] = np.where(echo[:, i], rows[:, i - 2], rows[:, i])
    return rows


def make_batch(
    rng: np.random.Generator, batch: int, seq_len: int, recipe: DataRecipe = DataRecipe()
) -> np.ndarray:
    """An int64 batch ``[batch, seq_len]``: ``<|bos|>`` then ``seq_len - 1`` bytes per row."""
    rows = np.empty((batch, seq_len), dtype=np.int64)
    rows[:, 0] = BOS_ID
    for b in range(batch):
        if rng.random() < recipe.p_echo:
            rows[b, 1:] = echo_rows(rng, 1, seq_len - 1, recipe.echo_rate)[0]
        elif rng.random() < recipe.p_english:
            rows[b, 1:] = _english_row(rng, seq_len - 1, recipe)
        else:
            rows[b, 1:] = repeated_segment_row(rng, seq_len - 1, recipe)
    return rows


def make_warmup_batch(
    rng: np.random.Generator, batch: int, seq_len: int, recipe: DataRecipe = DataRecipe()
) -> np.ndarray:
    """The first phase's batch: echo rows, each after ``<|bos|>``."""
    return make_batch(rng, batch, seq_len, dataclasses.replace(recipe, p_echo=1.0))
