from __future__ import annotations

from typing import Any

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny_model() -> Any:
    """A small random-weight TransformerBridge (2 layers x 4 heads, 64-token context)."""
    from headscope._builtin.model import ModelSpec, build_model

    model = build_model(ModelSpec(n_layers=2, n_heads=4, d_model=32, d_head=8, n_ctx=64), seed=0)
    model.eval()
    return model


def causal_attention(n_layers: int, n_heads: int, n: int, seed: int = 0) -> np.ndarray:
    """Random causal softmax rows ``[layer, head, query_pos, key_pos]`` (float32)."""
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_layers, n_heads, n, n)).astype(np.float32) * 3
    scores[..., np.triu(np.ones((n, n), dtype=bool), 1)] = -np.inf
    e = np.exp(scores - scores.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def assert_quantized_close(got: Any, expected: Any) -> None:
    """``got`` decodes the quantized form of ``expected`` ``[..., query_pos, key_pos]``: every
    weight within its row's maximum / 510 (half a step of 255), plus float rounding."""
    want = np.asarray(expected.detach().cpu().float() if hasattr(expected, "detach") else expected, dtype=np.float32)
    got = np.asarray(got.detach().cpu() if hasattr(got, "detach") else got, dtype=np.float32)
    assert got.shape == want.shape, (got.shape, want.shape)
    bound = want.max(-1, keepdims=True) / 510 + 1e-6
    excess = np.abs(got - want) - bound
    assert excess.max() <= 0, f"off by {excess.max():.3g} beyond row max / 510"


class Recorder:
    """Stands in for ``Widget.send``: keeps every (content, buffers) the kernel sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], list[bytes]]] = []

    def __call__(self, content: dict[str, Any], buffers: Any = None) -> None:
        self.sent.append((content, [bytes(b) for b in (buffers or [])]))

    @property
    def last(self) -> tuple[dict[str, Any], list[bytes]]:
        assert self.sent, "the widget sent nothing"
        return self.sent[-1]


@pytest.fixture
def make_attention() -> Any:
    return causal_attention


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
