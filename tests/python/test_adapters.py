"""The TransformerLens adapter on a real TransformerLens 4.x TransformerBridge."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from headscope._adapters import check_model, run_model

from conftest import assert_quantized_close


def test_matches_a_full_run_with_cache(tiny_model) -> None:
    prompt = "The cat sat. The cat sat."
    run = run_model(tiny_model, prompt)
    assert run.tokens == tiny_model.to_str_tokens(prompt)
    assert run.prompt == prompt
    _, cache = tiny_model.run_with_cache(prompt)
    for layer in range(tiny_model.cfg.n_layers):
        expected = cache[f"blocks.{layer}.attn.hook_pattern"][0]
        assert_quantized_close(run.layer_pattern(layer), expected)
    assert run.token_ids is not None and run.token_ids.shape == (len(run.tokens),)


def test_hooks_only_the_pattern_hook_points(tiny_model, monkeypatch) -> None:
    seen: list[str] = []
    original = tiny_model.run_with_hooks

    def spy(*args: Any, fwd_hooks: Any = (), **kwargs: Any) -> Any:
        seen.extend(name for name, _ in fwd_hooks)
        return original(*args, fwd_hooks=fwd_hooks, **kwargs)

    monkeypatch.setattr(tiny_model, "run_with_hooks", spy)
    run = run_model(tiny_model, "abc")
    assert seen == ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"]
    assert run.n_layers == 2


def test_runs_without_grad_and_restores_training_mode(tiny_model) -> None:
    tiny_model.train()
    try:
        run = run_model(tiny_model, "hello")
        assert tiny_model.training
    finally:
        tiny_model.eval()
    assert not run.layer_pattern(0).requires_grad
    torch.testing.assert_close(run.layer_pattern(0).sum(-1), torch.ones(4, len(run.tokens)), atol=len(run.tokens) / 510, rtol=0)


def test_prompt_longer_than_context(tiny_model) -> None:
    with pytest.raises(ValueError, match=r"101 tokens long.*context holds 64.*by 37 tokens"):
        run_model(tiny_model, "x" * 100)


def test_empty_and_non_string_prompts(tiny_model) -> None:
    with pytest.raises(ValueError, match="prompt is empty"):
        run_model(tiny_model, "")
    with pytest.raises(TypeError, match="prompt must be a string, got list"):
        run_model(tiny_model, ["a"])  # type: ignore[arg-type]


def test_object_without_the_surface() -> None:
    with pytest.raises(TypeError, match=r"dict is not a TransformerLens-style model.*show_attention"):
        check_model({})


def test_model_without_pattern_hooks(tiny_model) -> None:
    class NoHooks:
        cfg = tiny_model.cfg
        hook_dict = {"blocks.0.hook_resid_pre": None}
        to_tokens = to_str_tokens = run_with_hooks = staticmethod(lambda *a, **k: None)

    with pytest.raises(TypeError, match=r"no attention-pattern hook 'blocks.0.attn.hook_pattern'"):
        check_model(NoHooks())


def _rewrite_patterns(monkeypatch: pytest.MonkeyPatch, model: Any, rewrite: Any) -> None:
    """Make ``model`` hand out ``rewrite(pattern)`` at every pattern hook (it runs first)."""
    original = model.run_with_hooks

    def run_with_hooks(*args: Any, fwd_hooks: Any = (), **kwargs: Any) -> Any:
        first = [(name, lambda pattern, hook: rewrite(pattern)) for name, _ in fwd_hooks]
        return original(*args, fwd_hooks=first + list(fwd_hooks), **kwargs)

    monkeypatch.setattr(model, "run_with_hooks", run_with_hooks)


def test_bidirectional_models_are_not_held_to_the_causal_check(tiny_model, monkeypatch) -> None:
    _rewrite_patterns(monkeypatch, tiny_model, lambda p: torch.full_like(p, 1 / p.shape[-1]))
    with pytest.raises(ValueError, match=r"above the diagonal: layer 0, head 0, query_pos 0 attends to the later key_pos 1"):
        run_model(tiny_model, "abc")
    monkeypatch.setattr(tiny_model.cfg, "attention_dir", "bidirectional")
    run = run_model(tiny_model, "abc")
    torch.testing.assert_close(run.layer_pattern(1), torch.full((4, 4, 4), 0.25))


def test_model_rows_may_give_weight_to_a_sink_but_not_exceed_one(tiny_model, monkeypatch) -> None:
    _rewrite_patterns(monkeypatch, tiny_model, lambda p: p * 0.75)  # a sink takes a quarter
    assert float(run_model(tiny_model, "abc").layer_pattern(0).sum(-1).max()) == pytest.approx(0.75, abs=4 / 510)
    monkeypatch.undo()

    def dropout_like(p: torch.Tensor) -> torch.Tensor:
        n = p.shape[-1]
        uniform = torch.ones(n, n).tril() / torch.arange(1, n + 1)[:, None]
        uniform[1:] *= 1.11  # every row but the first: the kept weights of dropout 0.1
        return uniform.expand_as(p).clone()

    _rewrite_patterns(monkeypatch, tiny_model, dropout_like)
    with pytest.raises(ValueError, match=r"sum to at most 1 .*layer 0, head 0, query_pos 1 sums to 1\.11 .*dropout"):
        run_model(tiny_model, "abc")
