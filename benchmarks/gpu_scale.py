"""GPU benchmark: exact greedy pruning of a dataset with batching, and of a 7B-shaped model's chain.

    python benchmarks/gpu_scale.py              # one GPU (an H200: a few minutes, under 10)
    python benchmarks/gpu_scale.py --dry-run    # the same code paths on the CPU, tiny random models, seconds

(a) SmolLM2-135M in bf16 on the 120 cached gsm_symbolic examples (data/runs/smollm2-greedy-joint),
greedy joint exact, pruned to the end: ``greedy_prune_many`` at each ``--batch-examples`` against
``greedy_prune`` one example at a time (timed on the first ``--sequential`` examples, projected to
all of them), and the tokens/s achieved against a plain batched forward of as many full sequences as
chains in the batch. Targets: the whole batched run <= 60 s, >= 0.5 of the plain throughput.

(b) A Llama with the shape of an 8B model (hidden 4096, 32 layers, 32 heads, 8 KV heads,
intermediate 14336, vocabulary 128256) and random bf16 weights, built on the GPU (nothing is
downloaded); one chain of 83 reasoning tokens after a 116-token prompt, pruned to the end by the fast
exact scorer, by "the authors' method" emulated (every candidate a full separate sequence, batched,
the full vocabulary's log-softmax at every position, no prefix reuse) and by the naive scorer
(``scorer="naive"``); speed ratios, and the projected time of 1,000 such chains on one and on eight
GPUs (chains are independent: eight GPUs take an eighth). Random weights make near-ties common, so
orders are not compared there.

The last line is ``key=value`` figures (``a_*``: part a, ``b_*``: part b).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pruneprobe import Example, Pruner, greedy_prune, load_pruner
from pruneprobe.core.batched import greedy_prune_many
from pruneprobe.core.encoding import encode_example
from pruneprobe.core.scoring import NaiveScorer
from pruneprobe.data.models import materialize_embedded
from pruneprobe.runs.tables import load_run

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "data" / "runs" / "smollm2-greedy-joint"
SHAPE_8B = {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "intermediate_size": 14336, "vocab_size": 128256}
SHAPE_TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "intermediate_size": 64, "vocab_size": 49152}  # the SmolLM2 tokenizer's vocabulary
FILLER = ("so", "the", "total", "is", "found", "by", "adding", "each", "part", "in", "turn", "and", "then", "checking")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn, *args, **kw):
    sync(device)
    start = time.perf_counter()
    out = fn(*args, **kw)
    sync(device)
    return out, time.perf_counter() - start


def tiny_pruner(tokenizer, seed: int = 0) -> Pruner:
    """A random 2-layer Llama on the CPU in fp32 (the dry run's stand-in for both models)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(**SHAPE_TINY, max_position_embeddings=1024, initializer_range=0.3)
    return Pruner.from_model(LlamaForCausalLM(config).eval(), tokenizer, name="tiny-llama")


def cached_examples(n: int | None, shortest: bool = False) -> list[Example]:
    """The examples of the cached SmolLM2 greedy-joint run, in its order (``shortest``: the shortest
    chains first)."""
    results = list(load_run(RUN).results())
    if shortest:
        results.sort(key=lambda r: r.n_tokens)
    examples = [Example.from_dict(r.example) for r in results]
    return examples[:n] if n else examples


def plain_throughput(pruner: Pruner, examples: list[Example], rows: int, repeats: int = 3) -> float:
    """Tokens/s of a plain forward of ``rows`` full sequences (the median example's length)."""
    encoded = sorted((encode_example(pruner, ex).input_ids for ex in examples), key=len)
    ids = encoded[len(encoded) // 2][None].repeat(rows, 1).to(pruner.device)
    best = float("inf")
    with torch.no_grad():
        pruner.model(input_ids=ids)  # warm-up
        for _ in range(repeats):
            best = min(best, timed(pruner.device, pruner.model, input_ids=ids)[1])
    return ids.numel() / best


def agreement(a, b) -> tuple[float, float]:
    """Share of identical deletion orders, and the largest |score difference| at the first step."""
    same = np.mean([x.deletion_order == y.deletion_order for x, y in zip(a, b)])
    diff = max(float(np.nanmax(np.abs(x.candidate_scores[:1] - y.candidate_scores[:1]))) for x, y in zip(a, b))
    return float(same), diff


def part_a(pruner: Pruner, examples: list[Example], batch_sizes: list[int], n_sequential: int,
           max_steps: int | None) -> dict:
    """The dataset, batched against one at a time (module docstring, part a)."""
    dev, kw = pruner.device, {"objective": "joint", "max_steps": max_steps, "max_hours": None}
    greedy_prune(pruner, examples[0], max_steps=1, max_hours=None)  # warm-up: self-check, kernels
    figures: dict = {}
    print(f"\n(a) {pruner.name} {str(pruner.dtype).replace('torch.', '')} on {dev}: {len(examples)} examples, "
          f"greedy joint exact{'' if max_steps is None else f', {max_steps} steps each'}")
    print(f"{'run':<24}{'wall s':>9}{'tokens':>12}{'tokens/s':>12}{'plain tok/s':>13}{'efficiency':>11}")
    sequential = examples[:n_sequential]
    one, seconds = timed(dev, lambda: [greedy_prune(pruner, ex, **kw) for ex in sequential])
    projected = seconds * len(examples) / len(sequential)
    tokens = sum(r.metadata["tokens_computed"] for r in one)
    print(f"{'one at a time':<24}{seconds:>9.1f}{tokens:>12,}{tokens / seconds:>12,.0f}{'':>13}{'':>11}"
          f"   ({len(sequential)} examples; all {len(examples)}: ~{projected:.0f} s)")
    for size in batch_sizes:
        many, wall = timed(dev, greedy_prune_many, pruner, examples, batch_examples=size, **kw)
        tokens = sum(r.metadata["tokens_computed"] for r in many)
        plain = plain_throughput(pruner, examples, size)
        same, diff = agreement(many[: len(one)], one)
        print(f"{f'batched, {size} at a time':<24}{wall:>9.1f}{tokens:>12,}{tokens / wall:>12,.0f}{plain:>13,.0f}"
              f"{tokens / wall / plain:>11.2f}   (same orders as one at a time: {same:.0%}, first-step |d| {diff:.1e})")
        figures[size] = {"wall": wall, "efficiency": tokens / wall / plain, "agreement": same,
                         "tokens_per_s": tokens / wall}
    best = min(figures, key=lambda s: figures[s]["wall"])
    return {"a_examples": len(examples), "a_batch_examples": best, "a_batched_s": figures[best]["wall"],
            "a_sequential_s_projected": projected, "a_speedup": projected / figures[best]["wall"],
            "a_tokens_per_s": figures[best]["tokens_per_s"], "a_efficiency": figures[best]["efficiency"],
            "a_agreement": figures[best]["agreement"]}


class AuthorsScorer(NaiveScorer):
    """The authors' method as described: every candidate a full separate sequence, ``batch_sequences``
    per forward, the full vocabulary's log-softmax at every position, nothing reused between steps."""

    name = "authors"

    def __init__(self, model, batch_sequences: int = 32):
        super().__init__(model)
        self.batch_sequences = batch_sequences

    @torch.no_grad()
    def sequence_logprobs(self, rows: torch.Tensor) -> torch.Tensor:
        p, out = len(self.prefix), []
        for start in range(0, len(rows), self.batch_sequences):
            batch = rows[start : start + self.batch_sequences].to(self.device)
            logprobs = torch.log_softmax(self.model(input_ids=batch, use_cache=False).logits.float(), dim=-1)
            out.append(logprobs[:, p - 1 : -1].gather(-1, batch[:, p:, None]).squeeze(-1).cpu())
            self.tokens_computed += batch.numel()
        return torch.cat(out)


def prune_ids(engine, enc) -> list[int]:
    """Greedy joint pruning to the end with a bare scorer: the deletion order."""
    engine.reset(enc.prefix_ids, enc.reasoning_ids, enc.suffix_ids)
    alive, order = list(range(enc.n_reasoning)), []
    while alive:
        j = int(engine.candidate_logprobs().double().sum(-1).argmax())
        order.append(alive.pop(j))
        engine.delete(j)
    return order


def sized_example(pruner: Pruner, n_prompt: int, n_chain: int, seed: int = 0) -> Example:
    """An example whose encoding has about ``n_prompt`` tokens before the reasoning and ``n_chain`` in it
    (filler words added one by one; the prompt cannot be shorter than the template)."""
    rng = np.random.default_rng(seed)
    question, chain = "How many apples are there in all?", "Each box holds 12 apples."
    for _ in range(400):
        enc = encode_example(pruner, Example(question, chain, "42", id=f"sized-{seed}"))
        grow_q, grow_c = enc.reasoning_start < n_prompt, enc.n_reasoning < n_chain
        if not (grow_q or grow_c):
            break
        word = FILLER[int(rng.integers(len(FILLER)))]
        question = f"{word} {question}" if grow_q else question
        chain = f"{chain} {word}" if grow_c else chain
    return Example(question, chain, "42", id=f"sized-{seed}")


def build_8b(dry_run: bool, tokenizer) -> Pruner:
    """The 8B-shaped Llama with random bf16 weights on the GPU (dry run: the tiny stand-in)."""
    if dry_run:
        return tiny_pruner(tokenizer, seed=1)
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**SHAPE_8B, max_position_embeddings=8192)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            model = LlamaForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(default)
    return Pruner.from_model(model, tokenizer, name="llama-8b-shaped-random")


def part_b(pruner: Pruner, n_prompt: int, n_chain: int, batch: int, skip_slow: bool) -> dict:
    """One long chain of a big model, three ways (module docstring, part b)."""
    dev = pruner.device
    ex = sized_example(pruner, n_prompt, n_chain)
    enc = encode_example(pruner, ex)
    params = sum(p.numel() for p in pruner.model.parameters()) / 1e9
    print(f"\n(b) {pruner.name} ({params:.2f} B parameters) on {dev}: a chain of {enc.n_reasoning} tokens after "
          f"a {enc.reasoning_start}-token prompt ({len(enc.suffix_ids)} after it), pruned to the end")
    greedy_prune(pruner, ex, max_steps=1, max_hours=None)  # warm-up: self-check, kernels
    fast, t_fast = timed(dev, greedy_prune, pruner, ex, max_hours=None)
    copies = [sized_example(pruner, n_prompt, n_chain, seed=s) for s in range(batch)]
    many, t_many = timed(dev, greedy_prune_many, pruner, copies, batch_examples=batch, max_hours=None)
    rows = [("fast exact, one chain", t_fast, fast.metadata["tokens_computed"]),
            (f"fast exact, {batch} chains batched", t_many / batch,
             sum(r.metadata["tokens_computed"] for r in many) / batch)]
    if not skip_slow:
        authors = AuthorsScorer(pruner.model)
        _, t_authors = timed(dev, prune_ids, authors, enc)
        naive, t_naive = timed(dev, greedy_prune, pruner, ex, scorer="naive", max_hours=None)
        rows += [("authors' method (emulated)", t_authors, authors.tokens_computed),
                 ("naive (scorer='naive')", t_naive, naive.metadata["tokens_computed"])]
    per_chain = min(t_fast, t_many / batch)
    print(f"{'scorer':<34}{'s per chain':>12}{'tokens':>12}{'tokens/s':>11}{'x fast':>8}"
          f"{'1,000 chains, 1 GPU':>21}{'8 GPUs':>9}")
    for name, seconds, tokens in rows:
        print(f"{name:<34}{seconds:>12.2f}{tokens:>12,.0f}{tokens / seconds:>11,.0f}{seconds / per_chain:>8.1f}"
              f"{seconds * 1000 / 3600:>19.2f} h{seconds * 1000 / 8 / 3600:>7.2f} h")
    out = {"b_chain_tokens": enc.n_reasoning, "b_prompt_tokens": enc.reasoning_start, "b_fast_s": t_fast,
           "b_fast_batched_s_per_chain": t_many / batch, "b_1000_chains_1gpu_h": per_chain * 1000 / 3600,
           "b_1000_chains_8gpu_h": per_chain * 1000 / 8 / 3600}
    if not skip_slow:
        out.update(b_authors_s=t_authors, b_naive_s=t_naive, b_speedup_vs_authors=t_authors / per_chain,
                   b_speedup_vs_naive=t_naive / per_chain, b_authors_1000_chains_1gpu_h=t_authors * 1000 / 3600)
    return out


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", "--tiny", action="store_true", help="CPU, tiny random models, a few steps: seconds")
    ap.add_argument("--parts", default="ab", help="which parts to run: a, b or ab (default)")
    ap.add_argument("--n", type=int, default=None, help="examples for part a (default: all 120; dry run: 4)")
    ap.add_argument("--batch-examples", default="8,32", help="batch sizes for part a, comma-separated")
    ap.add_argument("--sequential", type=int, default=16, help="examples pruned one at a time in part a")
    ap.add_argument("--prompt-tokens", type=int, default=116)
    ap.add_argument("--chain-tokens", type=int, default=83)
    ap.add_argument("--big-batch", type=int, default=4, help="chains of part b pruned together")
    ap.add_argument("--skip-slow", action="store_true", help="part b without the authors' and naive runs")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.n = args.n or 2
        args.sequential = min(args.sequential, 1)
        args.prompt_tokens, args.chain_tokens = min(args.prompt_tokens, 40), min(args.chain_tokens, 4)
        args.big_batch = min(args.big_batch, 2)
        args.batch_examples = "2"
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        sys.exit("no GPU here: run with --dry-run (CPU, tiny models) to check the script")
    t0 = time.perf_counter()
    figures: dict = {}
    if args.dry_run:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(materialize_embedded("smollm2-135m"))
        small = tiny_pruner(tokenizer)
    else:
        small = load_pruner("smollm2-135m", dtype="bfloat16", device="cuda")
        tokenizer = small.tokenizer
    if "a" in args.parts:
        sizes = [int(s) for s in args.batch_examples.split(",")]
        examples = cached_examples(args.n, shortest=args.dry_run)
        figures.update(part_a(small, examples, sizes, args.sequential, 1 if args.dry_run else None))
    if "b" in args.parts:
        del small
        big = build_8b(args.dry_run, tokenizer)
        figures.update(part_b(big, args.prompt_tokens, args.chain_tokens, args.big_batch, args.skip_slow))
    figures["total_s"] = time.perf_counter() - t0
    print(" ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))
    return figures


if __name__ == "__main__":
    main()
