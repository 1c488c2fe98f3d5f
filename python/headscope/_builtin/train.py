"""Train the built-in model.

    HF_HUB_OFFLINE=1 python -m headscope._builtin.train --out DIR [--steps N] [--seed S] [--threads T]

Writes ``DIR/builtin.safetensors`` and ``DIR/card.json``.  CPU only, seeded,
with a pinned thread count: the same seed, steps and thread count give
bitwise-identical weights.  To refresh the shipped model, train into a scratch
directory and copy both files into ``python/headscope/_builtin/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from headscope._builtin.data import DataRecipe, make_batch, make_warmup_batch
from headscope._builtin.model import (
    BUILTIN_SPEC,
    ModelSpec,
    build_model,
    check_functional_forward,
    functional_forward,
    save_weights,
)

WEIGHTS_NAME = "builtin.safetensors"
CARD_NAME = "card.json"


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation knobs (stored in the model card).

    Training runs in phases, given as fractions of ``steps``:

    1. ``layer0_until``: layer 0 alone (the later layers are skipped) on
       :func:`~headscope._builtin.data.make_warmup_batch` (echo rows), where previous-token
       heads form within a few hundred steps;
    2. ``guide_until``: every parameter trains on the main mix
       (:func:`~headscope._builtin.data.make_batch`) with, added to the next-byte loss,
       ``guide_weight`` times :func:`guide_loss` of head ``guide_head``: that head is led
       to attend to induction targets (:func:`context_induction_targets`);
    3. the rest, if ``guide_until < 1``: the next-byte loss alone on the main mix.

    By default the guide stays on to the end: without it the induction head blurs at long
    distances (``docs/builtin-model.md`` has the measurements).
    """

    steps: int = 2000
    seed: int = 0
    threads: int = 1
    lr: float = 3e-3
    min_lr_fraction: float = 0.3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    tokens_per_step: int = 2048
    # (fraction of steps at which the phase ends, sequence length incl. BOS)
    curriculum: tuple[tuple[float, int], ...] = ((0.55, 32), (0.75, 128), (1.0, 256))
    layer0_until: float = 0.15
    guide_until: float = 1.0
    guide_head: tuple[int, int] = (1, 0)  # [layer, head]
    guide_weight: float = 1.0
    guide_context: int = 3

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["curriculum"] = [list(c) for c in self.curriculum]
        d["guide_head"] = list(self.guide_head)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        if "curriculum" in kwargs:
            kwargs["curriculum"] = tuple(tuple(c) for c in kwargs["curriculum"])
        if "guide_head" in kwargs:
            kwargs["guide_head"] = tuple(kwargs["guide_head"])
        return cls(**kwargs)

    def seq_len(self, step: int) -> int:
        for end, length in self.curriculum:
            if step < end * self.steps:
                return length
        return self.curriculum[-1][1]

    def phase(self, step: int) -> int:
        """1, 2 or 3 (see the class docstring)."""
        if step < self.layer0_until * self.steps:
            return 1
        return 2 if step < self.guide_until * self.steps else 3

    def lr_at(self, step: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        t = (step - self.warmup_steps) / max(1, self.steps - self.warmup_steps)
        f = self.min_lr_fraction + (1 - self.min_lr_fraction) * 0.5 * (1 + math.cos(math.pi * t))
        return self.lr * f


def context_induction_targets(tokens: torch.Tensor, context: int) -> torch.Tensor:
    """Boolean ``[batch, query_pos, key_pos]``: the induction targets whose earlier occurrence
    shares the longest context with the query, counting up to ``context`` tokens.

    Key ``k`` is an induction target of query ``q`` when ``k < q`` and ``tokens[k - 1] ==
    tokens[q]`` (as in :func:`headscope._scores.induction_targets`). Its context is how many
    tokens agree going back from there: ``tokens[k - 1 - m] == tokens[q - m]`` for
    ``m = 0, 1, ...``, capped at ``context``. Each query keeps only its targets of the
    longest context, so in a repeated segment the target is the continuation of the copy
    rather than of every earlier occurrence of the same byte. ``context=1`` gives every
    induction target. Rows with no target are all False.
    """
    if context < 1:
        raise ValueError(f"context must be at least 1, got {context}")
    batch, n = tokens.shape
    same = tokens[:, :, None] == tokens[:, None, :]  # [batch, q, j]
    run = torch.zeros(batch, n, n, dtype=torch.int64)  # agreeing tokens back from (q, j)
    run[:, 0] = same[:, 0]
    for q in range(1, n):
        run[:, q, 0] = same[:, q, 0]
        run[:, q, 1:] = same[:, q, 1:] * (1 + run[:, q - 1, :-1])
    ctx = torch.zeros(batch, n, n, dtype=torch.int64)
    ctx[:, :, 1:] = run[:, :, :-1].clamp(max=context)  # key k looks at j = k - 1
    ctx = ctx * torch.ones(n, n, dtype=torch.int64).tril(-1)  # k < q
    best = ctx.max(-1, keepdim=True).values
    return (ctx == best) & (best >= 1)


def guide_loss(pattern: torch.Tensor, tokens: torch.Tensor, context: int) -> torch.Tensor:
    """Mean over queries with a target of ``-log`` (the head's mass on its targets).

    ``pattern`` is one head's ``[batch, query_pos, key_pos]``; the targets are
    :func:`context_induction_targets`. Zero when no query has a target.
    """
    targets = context_induction_targets(tokens, context).to(pattern.device)
    valid = targets.any(-1)
    if not bool(valid.any()):
        return pattern.sum() * 0.0
    mass = (pattern * targets).sum(-1)[valid]
    return -mass.clamp_min(1e-6).log().mean()


def train_model(
    spec: ModelSpec = BUILTIN_SPEC,
    config: TrainConfig = TrainConfig(),
    recipe: DataRecipe = DataRecipe(),
    *,
    log_every: int = 100,
    log: Any = None,
    probe: bool = False,
    on_step: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """Train from scratch; returns ``(model, history)``. Deterministic given the arguments.

    ``on_step(step, model)``, if given, is called after every optimiser step.
    """
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = build_model(spec, seed=config.seed, device="cpu")
    check_functional_forward(model)
    model.train()
    guide_layer, guide_head = config.guide_head
    guided = spec.n_layers > 1 and config.guide_weight > 0
    if guided and not (0 < guide_layer < spec.n_layers and 0 <= guide_head < spec.n_heads):
        raise ValueError(f"guide_head {list(config.guide_head)} is not a head after layer 0 of this model")
    opt = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=(0.9, 0.98), weight_decay=config.weight_decay
    )
    losses: list[float] = []
    guide_losses: list[float] = []
    checkpoints: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for step in range(config.steps):
        phase = config.phase(step)
        seq_len = min(config.seq_len(step), spec.n_ctx)
        draw = make_warmup_batch if phase == 1 else make_batch
        batch = max(1, config.tokens_per_step // seq_len)
        tokens = torch.from_numpy(draw(rng, batch, seq_len, recipe))
        for group in opt.param_groups:
            group["lr"] = config.lr_at(step)
        if phase == 2 and guided:
            logits, pattern = functional_forward(model, tokens, pattern_layer=guide_layer)
            guide = guide_loss(pattern[:, guide_head], tokens, config.guide_context)
            guide_losses.append(guide.item())
        else:
            logits = functional_forward(model, tokens, n_layers=1 if phase == 1 else None)
            guide = None
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1)
        )
        total = loss if guide is None else loss + config.guide_weight * guide
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        opt.step()
        if on_step is not None:
            on_step(step, model)
        losses.append(loss.item())
        if log is not None and (step % log_every == 0 or step == config.steps - 1):
            recent = float(np.mean(losses[-log_every:]))
            elapsed = time.perf_counter() - t0
            entry: dict[str, Any] = {"step": step, "loss": recent, "seconds": round(elapsed, 1)}
            msg = f"step {step:5d}  phase {phase}  len {seq_len:3d}  loss {recent:.4f}  {elapsed:6.1f}s"
            if guide is not None:
                entry["guide_loss"] = guide.item()
                msg += f"  guide {guide.item():.3f}"
            if probe:
                entry.update(_probe(model))
                msg += f"  induction {entry['induction']:.2f}  previous {entry['previous_token']:.2f}"
            checkpoints.append(entry)
            log(msg)
    seconds = time.perf_counter() - t0
    model.eval()
    tail = max(1, min(100, len(losses) // 10))
    history = {
        "train_seconds": round(seconds, 1),
        "final_loss": float(np.mean(losses[-tail:])),
        "first_loss": losses[0] if losses else float("nan"),
        "losses": losses,
        "guide_losses": guide_losses,
        "log": checkpoints,
    }
    return model, history


def _probe(model: Any) -> dict[str, float]:
    """Best induction and previous-token scores on a small fixed probe (for the log only)."""
    from headscope._builtin.evaluate import _mean_scores, _patterns_and_logits, repeated_random_tokens
    from headscope._scores import induction_score, previous_token_score

    tokens = repeated_random_tokens(np.random.default_rng(5), 30, 8)
    model.eval()
    pattern, _ = _patterns_and_logits(model, tokens)
    model.train()
    return {
        "induction": float(_mean_scores(induction_score, pattern, tokens).max()),
        "previous_token": float(_mean_scores(previous_token_score, pattern, tokens).max()),
    }


def _versions() -> dict[str, str]:
    import transformer_lens
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformer_lens": getattr(transformer_lens, "__version__", "?"),
        "transformers": transformers.__version__,
        "numpy": np.__version__,
    }


def describe(spec: ModelSpec, config: TrainConfig) -> str:
    """The card's one-paragraph description of how the model was trained."""
    main = (
        "then every parameter on repeated random segments, English-like text and echo rows, "
        f"with an auxiliary loss leading head {list(config.guide_head)} to attend to induction targets"
    )
    if config.guide_until >= 1:
        phases = f"two phases: layer 0 alone on echo rows; {main}"
    else:
        phases = f"three phases: layer 0 alone on echo rows; {main}; then the next-byte loss alone"
    return (
        f"{spec.n_layers}-layer attention-only byte-level transformer trained in {phases}. "
        "The heads it has are in roles, and whether they meet the acceptance bar in scores."
    )


def run(out: Path, config: TrainConfig, spec: ModelSpec = BUILTIN_SPEC, recipe: DataRecipe = DataRecipe()) -> dict[str, Any]:
    """Train, evaluate, and write weights and card into ``out``; returns the card."""
    from headscope._builtin.evaluate import evaluate

    out.mkdir(parents=True, exist_ok=True)
    model, hist = train_model(spec, config, recipe, log=lambda s: print(s, flush=True), probe=True)
    t = time.perf_counter()
    report = evaluate(model)
    eval_seconds = time.perf_counter() - t
    weights = out / WEIGHTS_NAME
    save_weights(model, weights, {"format": "headscope-builtin-1"})
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    card = {
        "name": "headscope-builtin",
        "format": 1,
        "description": describe(spec, config),
        "architecture": spec.to_dict(),
        "tokenizer": {
            "kind": "bytes",
            "vocab": "ids 0-255 are UTF-8 bytes; 256 <|bos|>, 257 <|eos|>, 258 <|pad|>",
            "prepends_bos": True,
        },
        "seed": config.seed,
        "threads": config.threads,
        "steps": config.steps,
        "training": config.to_dict(),
        "data_recipe": recipe.to_dict(),
        "train_seconds": hist["train_seconds"],
        "eval_seconds": round(eval_seconds, 1),
        "final_loss": hist["final_loss"],
        "loss_log": hist["log"],
        "weights_file": WEIGHTS_NAME,
        "weights_bytes": weights.stat().st_size,
        "weights_sha256": digest,
        "versions": _versions(),
        "command": "python -m headscope._builtin.train --out DIR "
        f"--steps {config.steps} --seed {config.seed} --threads {config.threads} "
        f"--lr {config.lr} --tokens-per-step {config.tokens_per_step}",
        "roles": report["roles"],
        "scores": report["summary"],
        "eval": {k: v for k, v in report.items() if k not in ("roles", "summary")},
    }
    (out / CARD_NAME).write_text(json.dumps(card, indent=1, ensure_ascii=False) + "\n")
    return card


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m headscope._builtin.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, type=Path, help="directory for builtin.safetensors and card.json")
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--threads", type=int, default=TrainConfig.threads)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--tokens-per-step", type=int, default=TrainConfig.tokens_per_step)
    args = p.parse_args(argv)
    config = TrainConfig(
        steps=args.steps, seed=args.seed, threads=args.threads, lr=args.lr,
        tokens_per_step=args.tokens_per_step,
    )
    card = run(args.out, config)
    s = card["scores"]
    print(json.dumps({k: s[k] for k in ("induction_head", "induction_by_length", "loss_ratio_by_length",
                                         "previous_token_head", "previous_token_random",
                                         "previous_token_english", "repeated_sentence_peak_fraction",
                                         "passed")}, indent=1))
    print(f"trained {card['train_seconds']} s, final loss {card['final_loss']:.4f}, "
          f"weights {card['weights_bytes']} bytes -> {args.out}")
    return 0 if s["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
