"""Bad input at every public entry that takes token ids or a model: errors name the problem,
and no forward pass runs first."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import pytest
import torch

import headscope
from headscope._adapters import capture_patterns, check_model, check_token_ids, run_model, run_token_ids, vocab_size

BOS = 256  # the byte tokenizer's BOS; the tiny model's vocabulary is 0-258 (cfg.d_vocab 259)


@pytest.fixture
def forward_passes(tiny_model, monkeypatch) -> list[Any]:
    """Records every forward pass of ``tiny_model``."""
    calls: list[Any] = []
    original = tiny_model.run_with_hooks

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(tiny_model, "run_with_hooks", spy)
    return calls


ENTRIES: dict[str, Callable[[Any, Any], Any]] = {
    "ablate": lambda model, ids: headscope.ablate(model, ids, [(0, 1)]),
    "ablate reference": lambda model, ids: headscope.ablate(model, "abc", [(0, 1)], method="mean", reference=ids),
    "patch clean": lambda model, ids: headscope.patch_heads(model, ids, [BOS, 97, 98], answer=("d", "x")),
    "patch corrupted": lambda model, ids: headscope.patch_heads(model, [BOS, 97, 98], ids, answer=("d", "x")),
    "run_token_ids": lambda model, ids: run_token_ids(model, ids),
    "capture_patterns": lambda model, ids: capture_patterns(model, torch.as_tensor(ids)[None]),
}
WHAT = {
    "ablate": "the prompt",
    "ablate reference": "the reference prompt 0",
    "patch clean": "the clean prompt",
    "patch corrupted": "the corrupted prompt",
    "run_token_ids": "the token ids",
    "capture_patterns": "the token ids",
}


BAD_IDS = [
    ([BOS, 97, 259], 259, 2),  # one past the vocabulary
    (torch.tensor([BOS, 50257, 97]), 50257, 1),  # a GPT-2 id on a smaller vocabulary
    (np.array([BOS, -1, 97]), -1, 1),  # negative
    ([BOS, 97, 2**70], 2**70, 2),  # past int64
]


@pytest.mark.parametrize(
    ("entry", "ids", "bad", "position"),
    [
        (entry, *case)
        for entry in ENTRIES
        for case in BAD_IDS
        if not (entry == "capture_patterns" and case[1] == 2**70)  # it takes a tensor: no room for 2**70
    ],
)
def test_out_of_vocabulary_ids_are_named_before_any_forward_pass(
    tiny_model, forward_passes, entry: str, ids: Any, bad: int, position: int
) -> None:
    message = (
        rf"token id {bad} at position {position} of {WHAT[entry]} is out of range: token ids must lie "
        r"in 0-258 \(the model's vocabulary has 259 tokens, cfg\.d_vocab\); 1 of 3 ids lie outside it"
    )
    with pytest.raises(ValueError, match=message):
        ENTRIES[entry](tiny_model, ids)
    assert forward_passes == []


@pytest.mark.parametrize("entry", ["ablate", "patch clean", "run_token_ids"])
@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (torch.tensor([BOS, 97.0, 98.5]), r"token ids must be integers, got a tensor of dtype torch\.float32"),
        (np.array([BOS, 97.0, 98.0]), r"token ids must be integers, got an array of dtype float64"),
        (torch.tensor([True, False, True]), r"token ids must be integers, got a tensor of dtype torch\.bool"),
        ([BOS, 97, True], r"token ids must be ints; position 2 holds bool True"),
        ([BOS, 97.0, 98], r"token ids must be ints; position 1 holds float 97\.0"),
    ],
)
def test_non_integer_ids_are_refused(tiny_model, forward_passes, entry: str, ids: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        ENTRIES[entry](tiny_model, ids)
    assert forward_passes == []


def test_every_bad_reference_prompt_is_found_before_the_clean_run(tiny_model, forward_passes) -> None:
    with pytest.raises(ValueError, match=r"token id 300 at position 1 of the reference prompt 2 is out of range"):
        headscope.ablate(tiny_model, "abc", [(0, 0)], method="mean", reference=["ab", "cd", [BOS, 300]])
    assert forward_passes == []
    rows = torch.tensor([[BOS, 97], [BOS, 999]])  # a batch of reference prompts
    with pytest.raises(ValueError, match=r"token id 999 at position 1 of the reference prompt 0"):
        headscope.ablate(tiny_model, "abc", [(0, 0)], method="mean", reference=rows)
    assert forward_passes == []


def test_a_tokenizer_that_outgrows_the_model_is_caught(tiny_model, forward_passes, monkeypatch) -> None:
    """Ids from the model's own tokenizer go through the same check: a tokenizer paired with a
    model of a smaller vocabulary fails with the id, not with an IndexError in the embedding."""
    monkeypatch.setattr(tiny_model.cfg, "d_vocab", 200)
    with pytest.raises(ValueError, match=r"token id 256 at position 0 of the prompt is out of range: .* 0-199"):
        run_model(tiny_model, "abc")
    with pytest.raises(ValueError, match=r"token id 256 at position 0 of the prompt"):
        headscope.ablate(tiny_model, "abc", [(0, 0)])
    assert forward_passes == []


def test_good_ids_in_every_integer_form_run(tiny_model) -> None:
    expected = run_model(tiny_model, "ab").pattern
    for ids in ([BOS, 97, 98], (BOS, np.int64(97), 98), np.array([BOS, 97, 98], np.int32),
                torch.tensor([[BOS, 97, 98]], dtype=torch.int16)):  # fmt: skip
        run = run_token_ids(tiny_model, ids)
        np.testing.assert_array_equal(run.pattern, expected)  # the same ids: the same bytes
    np.testing.assert_array_equal(headscope.ablate(tiny_model, np.array([BOS, 97, 98], np.uint64), [(0, 0)]).token_ids, [BOS, 97, 98])


def test_vocab_size_falls_back_to_the_tokenizer() -> None:
    assert vocab_size(SimpleNamespace(cfg=SimpleNamespace(d_vocab=50257))) == (50257, "cfg.d_vocab")
    tokenizer = [None] * 300  # anything with a length
    assert vocab_size(SimpleNamespace(cfg=SimpleNamespace(d_vocab=-1), tokenizer=tokenizer)) == (300, "the tokenizer's size")
    assert vocab_size(SimpleNamespace(cfg=SimpleNamespace())) == (0, "")
    model = SimpleNamespace(cfg=SimpleNamespace(), tokenizer=tokenizer)
    with pytest.raises(ValueError, match=r"token id 300 at position 1 .* 0-299 \(.* 300 tokens, the tokenizer's size\)"):
        check_token_ids(model, [1, 300])
    with pytest.raises(ValueError, match=r"token id -2 at position 0 .* must lie in 0 or more"):
        check_token_ids(SimpleNamespace(cfg=SimpleNamespace()), [-2, 5])


def test_a_run_too_long_for_the_context_from_ids(tiny_model, forward_passes) -> None:
    with pytest.raises(ValueError, match=r"the token ids are 65 tokens long, but the model's context holds 64"):
        run_token_ids(tiny_model, [BOS] + [97] * 64)
    with pytest.raises(ValueError, match=r"one non-empty sequence \[pos\], got shape \(2, 2\)"):
        run_token_ids(tiny_model, torch.tensor([[BOS, 97], [BOS, 98]]))
    assert forward_passes == []


def test_meta_token_ids_have_no_values(tiny_model) -> None:
    with pytest.raises(ValueError, match="token ids are on the meta device"):
        run_token_ids(tiny_model, torch.zeros(3, dtype=torch.long, device="meta"))


# --- a model whose weights are on the meta device -----------------------------------------


@pytest.fixture(scope="module")
def meta_model() -> Any:
    from headscope._builtin.model import ModelSpec, build_model

    model = build_model(ModelSpec(n_layers=2, n_heads=4, d_model=32, d_head=8, n_ctx=64), seed=0)
    return model.to("meta")


@pytest.mark.parametrize(
    "call",
    [
        lambda m: check_model(m),
        lambda m: headscope.show(m, "abc"),
        lambda m: headscope.head_scores(m, "abc"),
        lambda m: headscope.induction_probe(m, length=5),
        lambda m: headscope.ablate(m, "abc", [(0, 0)]),
        lambda m: headscope.patch_heads(m, "ab", "cd", metric="loss"),
    ],
    ids=["check_model", "show", "head_scores", "induction_probe", "ablate", "patch_heads"],
)
def test_a_model_on_the_meta_device_is_refused(meta_model, call: Callable[[Any], Any]) -> None:
    with pytest.raises(
        ValueError, match=r"TransformerBridge's weights are on the meta device \(parameter '.+' has a shape .* but no values\)"
    ):
        call(meta_model)


def test_accelerate_offloaded_weights_are_left_to_accelerate(meta_model) -> None:
    """accelerate keeps offloaded weights on the meta device and loads them at forward time,
    through a ``_hf_hook`` on the module; such a model is not refused."""
    name = next(iter(meta_model.named_parameters()))[0]
    module = meta_model.get_submodule(name.rsplit(".", 1)[0])
    module._hf_hook = object()
    try:
        assert check_model(meta_model) == (2, 64)
    finally:
        del module._hf_hook
    with pytest.raises(ValueError, match="meta device"):
        check_model(meta_model)


def test_a_batch_names_the_row(tiny_model, forward_passes) -> None:
    with pytest.raises(ValueError, match=r"token id 999 at position 1 of row 1 of the token ids is out of range"):
        capture_patterns(tiny_model, torch.tensor([[BOS, 97], [BOS, 999]]))
    assert forward_passes == []
