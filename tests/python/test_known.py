"""Known heads: the built-in model's card roles, GPT-2 Small's heads, and validation."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from types import SimpleNamespace

import numpy as np
import pytest

import headscope
from headscope._builtin import builtin_card, is_builtin, load_builtin
from headscope._builtin.model import ModelSpec, build_model
from headscope._known import GPT2_SMALL_HEADS, builtin_strength, check_known_heads, known_heads_of


def test_builtin_model_lists_its_card_roles_strongest_first() -> None:
    model = load_builtin()
    assert is_builtin(model)
    card = builtin_card()
    heads = known_heads_of(model)
    # every card role, every head once, nothing else
    assert sorted((h["role"], h["layer"], h["head"]) for h in heads) == sorted(
        (r, lh[0], lh[1]) for r, lh_list in card["roles"].items() for lh in lh_list
    )
    for role in card["roles"]:
        strength = builtin_strength(card, role)
        values = [strength[h["layer"], h["head"]] for h in heads if h["role"] == role]
        assert values == sorted(values, reverse=True), (role, values)
    # the heads the card's acceptance checks name are the strongest of their roles
    first = {role: next((h["layer"], h["head"]) for h in heads if h["role"] == role) for role in card["roles"]}
    assert first == {
        "previous_token": tuple(card["scores"]["previous_token_head"]),
        "induction": tuple(card["scores"]["induction_head"]),
    }
    w = headscope.show(None, "ab ab")
    assert w.known_heads == heads


def test_builtin_heads_are_ordered_by_the_card_scores_not_the_card_order(monkeypatch) -> None:
    import headscope._builtin as builtin

    card = builtin_card()
    card["roles"]["previous_token"].reverse()  # e.g. a card whose first entry is not the strongest
    monkeypatch.setattr(builtin, "builtin_card", lambda: card)
    prev = [(h["layer"], h["head"]) for h in known_heads_of(load_builtin()) if h["role"] == "previous_token"]
    strength = builtin_strength(card, "previous_token")
    assert prev == sorted(prev, key=lambda lh: -strength[lh])
    assert prev[0] == tuple(card["scores"]["previous_token_head"])
    assert builtin_strength(card, "name_mover") is None  # no measure on the card: card order kept


def test_readme_names_the_builtin_heads_the_panel_lists() -> None:
    """The README and the side panel tell the same story: same heads, same order, same strongest."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    readme = " ".join(readme.split())  # line breaks inside a sentence are spaces
    card = builtin_card()
    heads = known_heads_of(load_builtin())
    prev = [(h["layer"], h["head"]) for h in heads if h["role"] == "previous_token"]
    (layer,) = {lh[0] for lh in prev}
    numbers = [str(h) for _, h in prev]
    assert (
        f"previous-token heads in layer {layer} (heads {', '.join(numbers[:-1])} and {numbers[-1]}, strongest first)"
        in readme
    )
    random_bytes = card["eval"]["previous_token_random_mean"]
    assert "heads " + f"{', '.join(numbers[1:-1])} and {numbers[-1]} reach 1.00 on random bytes too" in readme
    assert all(f"{random_bytes[lyr][h]:.2f}" == "1.00" for lyr, h in prev)
    english = card["eval"]["previous_token_english"]
    assert f"head {prev[0][1]}, puts {english[layer][prev[0][1]]:.2f} of its attention" in readme
    others = [f"{english[lyr][h]:.2f}" for lyr, h in prev[1:]]
    assert f"on English only {', '.join(others[:-1])} and {others[-1]}." in readme
    (induction,) = [(h["layer"], h["head"]) for h in heads if h["role"] == "induction"]
    assert f"one induction head (layer {induction[0]}, head {induction[1]}:" in readme


def test_same_architecture_other_weights_claims_nothing() -> None:
    spec = ModelSpec.from_dict(builtin_card()["architecture"])
    other = build_model(spec, seed=3)
    assert not is_builtin(other)
    assert known_heads_of(other) == []
    assert headscope.show(other, "ab ab").known_heads == []


def _tl_stand_in(name: str, n_layers: int, n_heads: int) -> SimpleNamespace:
    """An object with TransformerLens's surface and a config, no weights."""
    unused = staticmethod(lambda *a, **k: None)
    return SimpleNamespace(
        cfg=SimpleNamespace(model_name=name, n_layers=n_layers, n_heads=n_heads),
        to_tokens=unused, to_str_tokens=unused, run_with_hooks=unused,
    )


@pytest.mark.parametrize("name", ["gpt2", "gpt2-small", "openai-community/gpt2", "GPT2"])
def test_gpt2_small_names_its_literature_heads(name: str) -> None:
    model = _tl_stand_in(name, 12, 12)
    assert known_heads_of(model) == [{"role": r, "layer": lyr, "head": h} for r, lyr, h in GPT2_SMALL_HEADS]
    assert ("previous_token", 4, 11) in GPT2_SMALL_HEADS and ("induction", 5, 5) in GPT2_SMALL_HEADS


def test_other_geometry_or_name_gets_nothing() -> None:
    assert known_heads_of(_tl_stand_in("gpt2", 24, 16)) == []
    assert known_heads_of(_tl_stand_in("pythia-70m", 6, 8)) == []
    assert headscope.show_attention(["a", "b"], np.full((1, 1, 2, 2), 0.5), causal=False).known_heads == []


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


def test_builtin_model_page_tables_the_known_heads() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "builtin-model.md").read_text(encoding="utf-8")
    card = builtin_card()
    heads = known_heads_of(load_builtin())
    for role in card["roles"]:
        listed = [(h["layer"], h["head"]) for h in heads if h["role"] == role]
        (layer,) = {lh[0] for lh in listed}
        strength = builtin_strength(card, role)
        row = f"| `{role}` | layer {layer}: head{'s' if len(listed) > 1 else ''} {', '.join(str(h) for _, h in listed)} |"
        assert row in page, row
        values = ", ".join(f"{strength[lh]:.2f}" for lh in listed)
        assert f": {values} |" in page.split(row, 1)[1].split("\n", 1)[0], (role, values)
