"""Known heads: the built-in model's card roles, GPT-2 Small's heads, and validation."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from types import SimpleNamespace

import numpy as np
import pytest

import headscope
from headscope._builtin import builtin_card, is_builtin, load_builtin
from headscope._builtin.model import ModelSpec, build_model
from headscope._known import GPT2_SMALL_HEADS, check_known_heads, known_heads_of


def test_builtin_model_lists_its_card_roles_strongest_first() -> None:
    model = load_builtin()
    assert is_builtin(model)
    roles = builtin_card()["roles"]
    heads = known_heads_of(model)
    assert heads == [{"role": r, "layer": lh[0], "head": lh[1]} for r, lh_list in roles.items() for lh in lh_list]
    assert {"role": "induction", "layer": roles["induction"][0][0], "head": roles["induction"][0][1]} in heads
    w = headscope.show(None, "ab ab")
    assert w.known_heads == heads


def test_same_architecture_other_weights_claims_nothing() -> None:
    spec = ModelSpec.from_dict(builtin_card()["architecture"])
    other = build_model(spec, seed=3)
    assert not is_builtin(other)
    assert known_heads_of(other) == []
    assert headscope.show(other, "ab ab").known_heads == []


@pytest.mark.parametrize("name", ["gpt2", "gpt2-small", "openai-community/gpt2", "GPT2"])
def test_gpt2_small_names_its_literature_heads(name: str) -> None:
    model = SimpleNamespace(cfg=SimpleNamespace(model_name=name, n_layers=12, n_heads=12))
    assert known_heads_of(model) == [{"role": r, "layer": lyr, "head": h} for r, lyr, h in GPT2_SMALL_HEADS]
    assert ("previous_token", 4, 11) in GPT2_SMALL_HEADS and ("induction", 5, 5) in GPT2_SMALL_HEADS


def test_other_geometry_or_name_gets_nothing() -> None:
    medium = SimpleNamespace(cfg=SimpleNamespace(model_name="gpt2", n_layers=24, n_heads=16))
    assert known_heads_of(medium) == []
    assert known_heads_of(SimpleNamespace(cfg=SimpleNamespace(model_name="pythia-70m", n_layers=6, n_heads=8))) == []
    assert headscope.show_attention(["a", "b"], np.full((1, 1, 2, 2), 0.5)).known_heads == []


def test_check_accepts_numpy_integers_and_returns_plain_dicts() -> None:
    out = check_known_heads([{"role": "mine", "layer": np.int64(1), "head": 2}], 2, 4)
    assert out == [{"role": "mine", "layer": 1, "head": 2}] and type(out[0]["layer"]) is int


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ("induction", TypeError, "must be a list"),
        ([["induction", 0, 1]], ValueError, r"known_heads\[0\] must be a dict"),
        ([{"role": "x", "layer": 0}], ValueError, "exactly the keys"),
        ([{"role": "x", "layer": 0, "head": 0, "extra": 1}], ValueError, "exactly the keys"),
        ([{"role": "", "layer": 0, "head": 0}], ValueError, "non-empty string"),
        ([{"role": 3, "layer": 0, "head": 0}], ValueError, "non-empty string"),
        ([{"role": "x", "layer": 0, "head": 0}, {"role": "x", "layer": 2, "head": 0}], ValueError,
         r"known_heads\[1\]: layer 2 is out of range; the model has 2 layers"),
        ([{"role": "x", "layer": 0, "head": 4}], ValueError, "head 4 is out of range; the model has 4 heads"),
        ([{"role": "x", "layer": -1, "head": 0}], ValueError, "layer -1 is out of range"),
        ([{"role": "x", "layer": True, "head": 0}], ValueError, "layer must be an integer"),
        ([{"role": "x", "layer": 1.0, "head": 0}], ValueError, "layer must be an integer"),
    ],
)
def test_bad_known_heads_get_a_clear_error(value: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        check_known_heads(value, 2, 4)


def test_widget_rejects_bad_known_heads_and_keeps_the_old_list() -> None:
    w = headscope.show(None, "ab ab")
    before = list(w.known_heads)
    with pytest.raises(ValueError, match="out of range"):
        w.known_heads = [{"role": "induction", "layer": 9, "head": 0}]
    assert w.known_heads == before
    w.known_heads = [{"role": "my head", "layer": 1, "head": 3}]
    assert w.known_heads == [{"role": "my head", "layer": 1, "head": 3}]
    w.known_heads = []
    assert w.known_heads == []
