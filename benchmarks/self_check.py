"""Benchmark: what the fast scorer's run-time checks cost (``pruneprobe.core.exactness``).

    python benchmarks/self_check.py                      # SmolLM2-135M, fp32, median of 7
    python benchmarks/self_check.py --pruner gemma3-270m --repeats 5

Prints, measured now on this machine: the up-front self-check (three forwards; once per loaded
model), the same with its optional reuse part (four), and the resumed-rows check that a scorer
reusing states across steps runs once per chain (one forward of two whole sequences), on the
shortest gsm_symbolic chain with at least ``--min-tokens`` reasoning tokens, beside one full
scoring of that chain's candidates for scale. Times are medians over ``--repeats`` after one
warm-up; they include Python overhead, as a run pays it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from pruneprobe import load_pruner
from pruneprobe.core.encoding import encode_example
from pruneprobe.core.exactness import ResumedRowsCheck, check_fast_scorer, tolerance_for
from pruneprobe.core.fastscore import FastScorer
from pruneprobe.data.datasets import load_examples


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def chain_with_at_least(pruner, min_tokens: int):
    for ex in load_examples("gsm_symbolic", n=200, seed=0):
        enc = encode_example(pruner, ex)
        if enc.n_reasoning >= min_tokens:
            return ex.id, enc
    raise SystemExit(f"no gsm_symbolic chain among the first 200 has {min_tokens} reasoning tokens")


def resumed_check_seconds(pruner, enc, repeats: int) -> tuple[float, float, int, float]:
    """(check seconds, its largest difference, resumed rows, one full scoring's seconds) after one deletion."""
    model = pruner.model
    scorer = FastScorer(model, reuse_across_steps=True)
    scorer.reset(enc.prefix_ids, enc.reasoning_ids, enc.suffix_ids)
    scoring = median_seconds(lambda: scorer.candidate_logprobs(), 1)  # leaves a fresh store
    scorer.delete(enc.n_reasoning // 2)
    captured = {}
    scorer.resumed_check = lambda s, resumed, out: captured.update(resumed=list(resumed), out=out.clone()) or True
    scorer.candidate_logprobs()
    check = ResumedRowsCheck(model.config.model_type, tolerance_for(next(model.parameters()).dtype))
    seconds = median_seconds(lambda: check(scorer, captured["resumed"], captured["out"]), repeats)
    return seconds, check.max_diff, len(captured["resumed"]), scoring


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pruner", default="smollm2-135m")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--min-tokens", type=int, default=80)
    args = ap.parse_args(argv)
    pruner = load_pruner(args.pruner, device="cpu", dtype=args.dtype)
    model = pruner.model
    print(f"{args.pruner} {args.dtype}, {torch.get_num_threads()} threads, median of {args.repeats}, measured now")
    base = median_seconds(lambda: check_fast_scorer(model), args.repeats)
    reuse = median_seconds(lambda: check_fast_scorer(model, reuse_across_steps=True), args.repeats)
    print(f"up-front self-check (3 forwards, once per model): {base:.3f} s; with the reuse part (4): {reuse:.3f} s")
    example_id, enc = chain_with_at_least(pruner, args.min_tokens)
    seconds, diff, rows, scoring = resumed_check_seconds(pruner, enc, args.repeats)
    print(f"resumed-rows check (once per chain), {example_id}: {enc.n_reasoning} reasoning tokens, "
          f"{len(enc.input_ids)} in all, {rows} rows resumed: {seconds:.3f} s, largest difference {diff:.2g} nats; "
          f"one full scoring of that chain: {scoring:.2f} s")


if __name__ == "__main__":
    main()
