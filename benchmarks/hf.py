"""The Hugging Face adapter's cost: a random-weight GPT-2 Small (transformers' GPT2LMHeadModel,
12 x 12 heads, d_model 768) on the CPU, its forward pass in sdpa and in eager attention against
headscope's run (eager forward pass plus the per-layer reduction). Token ids are random; the
tokenizer is a byte-level one trained in the tests' helper (tests/python/hf_tiny.py).

    python benchmarks/hf.py --sizes 512 1024 --repeats 3

Prints one JSON line per size: the fastest of ``--repeats`` timings of each, interleaved, and the
bytes the run keeps. Peak memory is not measured here (see kernel.py --scale).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))


def measure(n: int, repeats: int, threads: int) -> dict[str, float]:
    import torch
    import transformers as tf

    from hf_tiny import make_tokenizer
    from headscope._adapters import as_adapter, run_token_ids

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=50257, n_positions=max(1024, n))).eval()
    adapter = as_adapter(model, tokenizer=make_tokenizer())
    ids = torch.randint(1, 50257, (n,))

    def forward(implementation: str) -> float:
        model.set_attn_implementation(implementation)
        start = time.perf_counter()
        with torch.no_grad():
            model(input_ids=ids[None], use_cache=False)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"sdpa": [], "eager": [], "headscope": []}
    nbytes = 0
    for _ in range(repeats):
        times["sdpa"].append(forward("sdpa"))
        times["eager"].append(forward("eager"))
        model.set_attn_implementation("sdpa")
        start = time.perf_counter()
        run = run_token_ids(adapter, ids)
        times["headscope"].append(time.perf_counter() - start)
        nbytes = run.nbytes
        assert model.config._attn_implementation == "sdpa"
    best = {k: min(v) for k, v in times.items()}
    return {
        "tokens": n,
        "forward_sdpa_s": round(best["sdpa"], 3),
        "forward_eager_s": round(best["eager"], 3),
        "headscope_s": round(best["headscope"], 3),
        "beyond_eager_s": round(best["headscope"] - best["eager"], 3),
        "run_bytes": nbytes,
        "load_1min": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for n in args.sizes:
        print(json.dumps(measure(n, args.repeats, args.threads)), flush=True)


if __name__ == "__main__":
    main()
