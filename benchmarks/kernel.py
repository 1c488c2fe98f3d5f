"""Kernel-side cost of a headscope widget: bytes on the wire, seconds, peak memory.

Models: GPT-2 Small geometry (12 layers x 12 heads, d_model 768, vocab 50257) with random weights,
built offline by TransformerBridge.boot_native, or headscope's built-in model (2 x 8 heads,
n_ctx 256); both are fed by the built-in byte tokenizer (one token per byte, so an n-token prompt
is exactly n - 1 characters). Each size runs in a fresh process so that peak memory is its own.

    python benchmarks/kernel.py                # 128, 512, 1024 tokens
    python benchmarks/kernel.py --sizes 64 --repeats 1 --layers 2
    python benchmarks/kernel.py --model builtin --sizes 128 256
    python benchmarks/kernel.py --scale 12x12@1024 16x16@2048 --repeats 1   # the scale table

`python -m benchmarks` runs this together with the browser and CircuitsVis measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> int:
    """Reset the peak-RSS mark (Linux clear_refs) and return the current RSS in KiB."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _rss_kib("VmRSS")


def _peak_since(base_kib: int) -> float:
    return (_rss_kib("VmHWM") - base_kib) / 1024


MODELS = ("gpt2", "builtin")


def build_model(kind: str = "gpt2", n_layers: int = 12) -> Any:
    """The benchmark's model: ``"gpt2"`` (GPT-2 Small geometry, random weights, ``n_layers``
    layers) or ``"builtin"`` (headscope's shipped model; ``n_layers`` is ignored)."""
    if kind == "builtin":
        import headscope

        model = headscope.load_model("builtin")
    elif kind == "gpt2":
        from transformer_lens import TransformerBridge, TransformerBridgeConfig

        from headscope._builtin.tokenizer import ByteTokenizer

        cfg = TransformerBridgeConfig(
            d_model=768, d_head=64, n_heads=12, n_layers=n_layers, d_mlp=3072, n_ctx=1024,
            d_vocab=50257, act_fn="gelu_new", normalization_type="LN", seed=0,
            model_name="gpt2-small-geometry-random",
        )
        model = TransformerBridge.boot_native(cfg, tokenizer=ByteTokenizer())
    else:
        raise ValueError(f"unknown model {kind!r}; expected one of {MODELS}")
    model.eval()
    return model


def bench_prompt(n_tokens: int) -> str:
    """A prompt of exactly ``n_tokens`` tokens for the byte tokenizer (BOS + n - 1 bytes)."""
    return ("The cat sat on the mat. " * (n_tokens // 24 + 1))[: n_tokens - 1]


def measure(n_tokens: int, what: str, repeats: int, n_layers: int, threads: int,
            kind: str = "gpt2", model: Any = None) -> dict[str, Any]:
    import torch

    from headscope import AttentionWidget
    from headscope._adapters import run_model

    torch.set_num_threads(threads)
    if model is None:
        model = build_model(kind, n_layers)
    prompt = bench_prompt(n_tokens)
    tokens = model.to_tokens(prompt, truncate=False)
    assert tokens.shape[-1] == n_tokens, tokens.shape

    # Peak memory: the high-water mark above the loaded model, over the warm-up and every
    # repeat (the allocator reuses freed memory, so a later repeat alone can show no growth).
    base = _reset_peak()
    forward, total = [], []
    widget = None
    for _ in range(repeats + 1):  # the first round is a warm-up and is not timed
        if what == "forward":
            t0 = time.perf_counter()
            with torch.no_grad():
                logits = model(tokens)
            forward.append(time.perf_counter() - t0)
            del logits
        else:
            if widget is not None:
                widget.close()  # ipywidgets keeps every open widget (and its run) alive
                widget = None
            t0 = time.perf_counter()
            widget = AttentionWidget(run_model(model, prompt), model=model)
            run = widget.run_result
            first_head = run.encode_head(0, 0)[1:]
            total.append(time.perf_counter() - t0)
    forward, total = forward[1:], total[1:]
    if what == "forward":
        return {"forward_s": statistics.median(forward), "forward_min_s": min(forward),
                "forward_max_s": max(forward), "forward_runs_s": forward, "peak_forward_mib": _peak_since(base)}

    assert widget is not None
    run = widget.run_result
    head_times = []
    for layer in range(run.n_layers):
        t0 = time.perf_counter()
        run.encode_head(layer, min(5, run.n_heads - 1))
        head_times.append(time.perf_counter() - t0)
    tokens_json = len(json.dumps(widget.tokens).encode())
    head_bytes = len(first_head[0]) + len(first_head[1])
    peak = _peak_since(base)
    widget.close()
    return {
        "tokens": n_tokens,
        "layers": run.n_layers,
        "heads": run.n_layers * run.n_heads,
        "threads": threads,
        "widget_ready_s": statistics.median(total),
        "widget_ready_min_s": min(total),
        "widget_ready_max_s": max(total),
        "widget_ready_runs_s": total,
        "first_paint_bytes": len(widget.atlas) + tokens_json + head_bytes,
        "atlas_bytes": len(widget.atlas),
        "tokens_json_bytes": tokens_json,
        "head_bytes": head_bytes,
        "encode_head_ms": 1000 * statistics.median(head_times),
        "peak_widget_mib": peak,
    }


def measure_size(n_tokens: int, repeats: int, n_layers: int, threads: int,
                 kind: str = "gpt2") -> dict[str, Any]:
    """Both measurements of one size, each in a fresh process (each peak is its own)."""
    row: dict[str, Any] = {"model": kind}
    for what in ("forward", "widget"):
        cmd = [sys.executable, __file__, "--one", str(n_tokens), "--what", what, "--repeats",
               str(repeats), "--layers", str(n_layers), "--threads", str(threads), "--model", kind]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        row.update(json.loads(out.strip().splitlines()[-1]))
    return finish_row(row)


def finish_row(row: dict[str, Any]) -> dict[str, Any]:
    row["overhead_s"] = row["widget_ready_s"] - row["forward_s"]
    forward = row["peak_forward_mib"]
    row["peak_ratio"] = row["peak_widget_mib"] / forward if forward > 0 else None
    return row


#: The scale table's cases: ``heads x heads @ tokens`` -> geometry (n_layers, n_heads, d_head,
#: d_model, d_mlp). GPT-2 Small; a 16 x 16 model of d_model 1024; 32 x 32 heads of d_head 16.
SCALE_CASES: dict[str, tuple[int, int, int, int, int, int]] = {
    # name: (n_layers, n_heads, d_head, d_model, d_mlp, tokens)
    "12x12@1024": (12, 12, 64, 768, 3072, 1024),
    "16x16@2048": (16, 16, 64, 1024, 4096, 2048),
    "32x32@4096": (32, 32, 16, 512, 2048, 4096),
    "2x4@64": (2, 4, 16, 64, 128, 64),  # a smoke case for the tests
}


def build_geometry(n_layers: int, n_heads: int, d_head: int, d_model: int, d_mlp: int, n_ctx: int) -> Any:
    """A random-weight TransformerBridge of the given geometry (byte tokenizer, vocab 50257)."""
    from transformer_lens import TransformerBridge, TransformerBridgeConfig

    from headscope._builtin.tokenizer import ByteTokenizer

    cfg = TransformerBridgeConfig(
        d_model=d_model, d_head=d_head, n_heads=n_heads, n_layers=n_layers, d_mlp=d_mlp, n_ctx=n_ctx,
        d_vocab=50257, act_fn="gelu_new", normalization_type="LN", seed=0,
        model_name=f"random-{n_layers}x{n_heads}-d{d_model}",
    )
    return TransformerBridge.boot_native(cfg, tokenizer=ByteTokenizer()).eval()


def measure_scale(case: str, what: str, repeats: int, threads: int, budget: int | None = None) -> dict[str, Any]:
    """One scale case in this process: the forward pass, or the widget (peak, time, first paint
    bytes, and a head served once the kernel is idle: from a kept layer and, if any, from a
    layer over the memory budget, computed again)."""
    import torch

    from headscope import AttentionWidget
    from headscope._adapters import run_model

    torch.set_num_threads(threads)
    n_layers, n_heads, d_head, d_model, d_mlp, n_tokens = SCALE_CASES[case]
    model = build_geometry(n_layers, n_heads, d_head, d_model, d_mlp, n_tokens)
    prompt = bench_prompt(n_tokens)
    tokens = model.to_tokens(prompt, truncate=False)
    assert tokens.shape[-1] == n_tokens, tokens.shape
    base = _reset_peak()
    times: list[float] = []
    widget = None
    first_head: tuple[str, bytes, bytes] | None = None
    forwards: list[float] = []  # the widget's process times forward passes too, interleaved
    for _ in range(repeats + 1):  # the first round is a warm-up and is not timed
        if widget is not None:
            widget.close()
            widget = None
        t0 = time.perf_counter()
        with torch.no_grad():
            del_me = model(tokens)
        del del_me
        forwards.append(time.perf_counter() - t0)
        if what == "widget":
            t0 = time.perf_counter()
            widget = AttentionWidget(run_model(model, prompt, memory_budget=budget), model=model,
                                     memory_budget=budget)
            first_head = widget.run_result.encode_head(0, 0)
            times.append(time.perf_counter() - t0)
    if repeats:
        forwards, times = forwards[1:], times[1:]
    peak = _peak_since(base)
    row: dict[str, Any] = {"case": case, "what": what, "layers": n_layers, "heads": n_layers * n_heads,
                           "tokens": n_tokens, "d_head": d_head, "d_model": d_model, "threads": threads}
    if what == "forward":
        row.update({"forward_s": min(forwards), "forward_runs_s": forwards, "peak_forward_mib": peak})
        return row
    assert widget is not None and first_head is not None
    run = widget.run_result
    kept = run.kept_layers
    served = []
    for layer in kept[-3:]:
        t0 = time.perf_counter()
        run.encode_head(layer, n_heads - 1)
        served.append(time.perf_counter() - t0)
    dropped = [i for i in range(n_layers) if i not in kept]
    recomputed_s = None
    if dropped:
        # heads never asked for yet (the first paint's head is cached), of a middle layer: the
        # median of three (the first also converts the layer's weights, where the store needs them)
        recomputed = []
        for head in range(n_heads - 1, max(-1, n_heads - 4), -1):
            t0 = time.perf_counter()
            run.encode_head(dropped[len(dropped) // 2], head)
            recomputed.append(time.perf_counter() - t0)
        recomputed_s = statistics.median(recomputed)
    tokens_json = len(json.dumps(widget.tokens).encode())
    head_bytes = len(first_head[1]) + len(first_head[2])
    row.update({
        "widget_ready_s": min(times), "widget_ready_runs_s": times,
        "forward_here_s": min(forwards), "forward_here_runs_s": forwards,
        "peak_widget_mib": peak, "run_mib": run.nbytes / 2**20,
        "kept_layers": len(kept), "thumb_size": widget.thumb_size,
        "first_paint_bytes": len(widget.atlas) + tokens_json + head_bytes,
        "atlas_bytes": len(widget.atlas), "head_bytes": head_bytes,
        "head_served_ms": 1000 * statistics.median(served) if served else None,
        "head_recomputed_s": recomputed_s, "recomputed_layer": dropped[len(dropped) // 2] if dropped else None,
    })
    widget.close()
    return row


def scale_row(case: str, repeats: int, threads: int, budget: int | None = None) -> dict[str, Any]:
    """Both measurements of one scale case, each in a fresh process."""
    row: dict[str, Any] = {}
    for what in ("forward", "widget"):
        cmd = [sys.executable, __file__, "--scale-one", case, "--what", what, "--repeats", str(repeats),
               "--threads", str(threads)] + (["--budget", str(budget)] if budget else [])
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        row.update(json.loads(out.strip().splitlines()[-1]))
    # time beyond the forward pass: against the forward passes timed in the same process,
    # interleaved with the widget's runs (the fastest of each), so that load drifts cancel
    row["overhead_s"] = row["widget_ready_s"] - row["forward_here_s"]
    row["overhead_ratio"] = row["overhead_s"] / row["forward_here_s"]
    row["peak_ratio"] = row["peak_widget_mib"] / row["peak_forward_mib"] if row["peak_forward_mib"] > 0 else None
    return row


def scale_table(rows: list[dict[str, Any]]) -> str:
    head = ("| case | forward s | widget s | beyond forward s (ratio) | peak forward MiB | peak widget MiB | "
            "peak ratio | run MiB | kept layers | T | first paint B | head served ms | head recomputed s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        recomputed = "-" if r["head_recomputed_s"] is None else f"{r['head_recomputed_s']:.2f}"
        served = "-" if r["head_served_ms"] is None else f"{r['head_served_ms']:.0f}"
        lines.append(
            f"| {r['case']} | {r['forward_here_s']:.2f} | {r['widget_ready_s']:.2f} | {r['overhead_s']:.2f} "
            f"({r['overhead_ratio']:.0%}) | {r['peak_forward_mib']:.0f} | {r['peak_widget_mib']:.0f} | "
            f"{r['peak_ratio']:.2f} | {r['run_mib']:.0f} | {r['kept_layers']}/{r['layers']} | {r['thumb_size']} | "
            f"{r['first_paint_bytes']:,} | {served} | {recomputed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", choices=MODELS, default="gpt2")
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # worker mode: one size
    parser.add_argument("--what", choices=["forward", "widget"], help=argparse.SUPPRESS)
    parser.add_argument("--scale", nargs="+", choices=sorted(SCALE_CASES),
                        help="run the scale table for these cases instead of --sizes")
    parser.add_argument("--budget", type=int, help="memory_budget in bytes for the scale table (default: 1 GiB)")
    parser.add_argument("--scale-one", help=argparse.SUPPRESS)  # worker mode: one scale case
    args = parser.parse_args()

    if args.scale_one:
        print(json.dumps(measure_scale(args.scale_one, args.what, args.repeats, args.threads, args.budget)))
        return
    if args.scale:
        rows = []
        for case in args.scale:
            rows.append(scale_row(case, args.repeats, args.threads, args.budget))
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        print(scale_table(rows))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=2)
        return

    if args.one:
        result = measure(args.one, args.what, args.repeats, args.layers, args.threads, args.model)
        print(json.dumps(result))
        return

    rows = [measure_size(n, args.repeats, args.layers, args.threads, args.model) for n in args.sizes]

    head = ("| tokens | heads | forward s | widget ready s | overhead s | first paint B | "
            "further head B | encode head ms | peak forward MiB | peak widget MiB | peak ratio |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        print(f"| {r['tokens']} | {r['heads']} | {r['forward_s']:.3f} | {r['widget_ready_s']:.3f} | "
              f"{r['overhead_s']:.3f} | {r['first_paint_bytes']:,} | {r['head_bytes']:,} | "
              f"{r['encode_head_ms']:.1f} | {r['peak_forward_mib']:.0f} | {r['peak_widget_mib']:.0f} | "
              f"{r['peak_ratio'] if r['peak_ratio'] is None else round(r['peak_ratio'], 2)} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
