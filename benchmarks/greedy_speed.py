"""Benchmark: fast exact greedy pruning against the naive reference, and an approximate strategy.

    python benchmarks/greedy_speed.py            # 5 gsm_symbolic + 5 GSM8K chains, full runs
    python benchmarks/greedy_speed.py --quick    # 2 short gsm_symbolic chains, 8 deletions each (< 4 min)
    python benchmarks/greedy_speed.py --dtype bfloat16 --max-steps 10

Resumable: each finished example's row is written (atomically) to ``--results``
(``benchmarks/results/greedy_speed.jsonl``) under a fingerprint of what shapes it (pruner, dtype,
device, threads, steps, strategy settings, torch version, a hash of the package modules it loads,
and the machine: CPU model or GPU name). A full rerun with the same fingerprint reuses those rows,
so a run killed after hours loses only the example in progress; ``--fresh`` re-measures. ``--quick``
always measures (it records its rows, but never reuses any). Rows without a machine (older files)
are never reused; ``--report`` still shows them. Each row keeps its own run's plain throughput, CPU
or card, and date; the output marks every row "measured now" or "reused (date)".

Naive and fast run in the same process, alternating per example. Per example it prints wall
times, speed-up, tokens computed, achieved tokens/s against the model's plain batched forward
(measured in this run), peak memory, and agreement (identical order, Kendall tau). "fast" is the
fast scorer without cross-step reuse; the same chain is then pruned with it
(``reuse_across_steps=True``, ``core/resume.py``): its wall time, tokens, time against fast and
naive, and whether its order is fast's. With
``--dtype bfloat16`` the fast bf16 order is also compared with an fp32 fast order. The approximate
strategy (``--approx shortlist``, default, or ``--approx multi``) is compared with exact: kept-set IoU and joint log-likelihood gap at rho 0.9/0.8/0.7,
Kendall tau. The last line is ``speedup=<x> agreement=<fraction> efficiency=<ratio>``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau

from pruneprobe import greedy_prune, load_pruner
from pruneprobe.core.encoding import encode_example
from pruneprobe.core.io import atomic_write_text
from pruneprobe.data.datasets import load_examples

GSM8K = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gsm8k" / "test.jsonl"
RESULTS = Path(__file__).resolve().parent / "results" / "greedy_speed.jsonl"
RHOS = (0.9, 0.8, 0.7)


class PeakMemory:
    """Peak resident memory (CPU) or peak allocated memory (CUDA) while the block runs, in GiB."""

    def __init__(self, device: torch.device):
        self.device, self.peak, self._stop = device, 0.0, threading.Event()

    def _rss(self) -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30

    def _watch(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._rss())

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        else:
            self.peak = self._rss()
            self._thread = threading.Thread(target=self._watch, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() / 2**30
        else:
            self._stop.set()
            self._thread.join()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def plain_throughput(pruner, examples, batch: int = 8, repeats: int = 3) -> float:
    """Tokens/s of a plain batched forward over full sequences (the model's arithmetic limit)."""
    enc = encode_example(pruner, examples[0])
    ids = enc.input_ids[None].repeat(batch, 1).to(pruner.device)
    with torch.no_grad():
        pruner.model(ids)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            sync(pruner.device)
            t = time.perf_counter()
            pruner.model(ids)
            sync(pruner.device)
            best = min(best, time.perf_counter() - t)
    return ids.numel() / best


def timed(pruner, ex, **kw):
    with PeakMemory(pruner.device) as mem:
        sync(pruner.device)
        t = time.perf_counter()
        result = greedy_prune(pruner, ex, **kw)
        sync(pruner.device)
        elapsed = time.perf_counter() - t
    return result, elapsed, mem.peak


def tau(a, b) -> float:
    """Kendall tau between the two deletion orders, over the tokens a deleted in its first n steps."""
    n = min(a.n_steps, b.n_steps)
    later = b.deletion_order[:n]
    rb = [later.index(i) if i in later else n for i in a.deletion_order[:n]]
    return float(kendalltau(np.arange(n), rb).statistic) if n > 1 else 1.0


def is_exact_tie(naive, fast) -> bool:
    """Orders differ only where the naive scores of the two choices tie (|delta| < 1e-6)."""
    for step, (a, b) in enumerate(zip(naive.deletion_order, fast.deletion_order)):
        if a != b:
            row = naive.candidate_scores[step]
            return abs(row[a] - row[b]) < 1e-6
    return True


def fidelity(exact, approx) -> dict:
    out = {"tau": tau(exact, approx)}
    for rho in RHOS:
        try:
            ke, ka = exact.kept_mask(rho), approx.kept_mask(rho)
        except Exception:
            continue
        out[f"iou{rho}"] = (ke & ka).sum() / max((ke | ka).sum(), 1)
        k = exact.n_tokens - int(ke.sum())
        out[f"gap{rho}"] = exact.traces["joint_logprob"][k] - approx.traces["joint_logprob"][k]
    return out


def pick_examples(args, pruner):
    """Shortest-first selection by a stated rule: reasoning within [min, max] pruner tokens."""
    def take(examples, n):
        sized = [(encode_example(pruner, e).n_reasoning, e) for e in examples]
        ok = [(r, e) for r, e in sized if args.min_tokens <= r <= args.max_tokens]
        return [e for _, e in ok[:n]]

    chosen = [("gsm_symbolic", e) for e in take(load_examples("gsm_symbolic", n=200, seed=args.seed), args.n_symbolic)]
    if args.n_gsm8k:
        if Path(args.gsm8k).exists():
            chosen += [("gsm8k", e) for e in take(load_examples("gsm8k", path=args.gsm8k, n=200), args.n_gsm8k)]
        else:
            print(f"GSM8K skipped: {args.gsm8k} not found")
    return chosen


def long_chain_memory(pruner, examples, n_tokens: int = 300, steps: int = 2, **kw) -> tuple[int, float, float]:
    """Peak memory of the fast scorer (``kw``: its options) on a chain of ``n_tokens`` reasoning tokens (a few steps)."""
    from pruneprobe import Example

    text, base = "", examples[0]
    for ex in examples * 20:
        text += ex.reasoning + "\n"
        if encode_example(pruner, Example(base.question, text, base.answer)).n_reasoning >= n_tokens:
            break
    ids = pruner.tokenizer(text, add_special_tokens=False)["input_ids"]
    chain = Example(base.question, pruner.tokenizer.decode(ids[:n_tokens]), base.answer, id="long")
    result, seconds, peak = timed(pruner, chain, max_steps=steps, **kw)
    return result.n_tokens, peak, seconds / steps


FINGERPRINT = ("pruner", "dtype", "device", "max_steps", "batch_tokens", "approx", "shortlist", "shortlist_fraction",
               "refresh_every", "window", "reach", "shortlist_first", "margin", "multi_fraction", "skip_naive")


def settings_of(args, code: str | None = None, machine: str | None = None) -> dict:
    """What a row's measurement depends on, as it reads back from JSON; ``code`` and ``machine``
    left out for reports."""
    settings = {**{k: getattr(args, k) for k in FINGERPRINT}, "threads": torch.get_num_threads(), "torch": torch.__version__}
    if code is not None:
        settings["code"] = code
    if machine is not None:
        settings["machine"] = machine
    return json.loads(json.dumps(settings))


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), its core count and the vector extensions that set
    its speed (a virtual machine may name two different CPUs just "AMD EPYC"), else what
    ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        name = next(line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name"))
        flags = next(line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine() or "unknown"
    vector = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return f"{name} ({os.cpu_count()} cores; {' '.join(vector) or 'no avx2'})"


def machine_name(device: torch.device) -> str:
    """The machine part of the fingerprint: the GPU's name on CUDA, else the CPU model."""
    return f"GPU: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else f"CPU: {cpu_model()}"


def nats(x: float) -> str:
    """A log-likelihood gap to three decimals, never printed as -0.000."""
    return f"{round(x, 3) + 0.0:.3f}"


def order_label(row: dict, prefix: str = "") -> str:
    """Fast order against naive: yes, tie (differs only at an exact tie of naive scores), NO, or - without
    naive; ``prefix="reuse_"``: the order with cross-step reuse against fast's."""
    if f"{prefix}same" not in row:
        return "-"
    return "yes" if row[f"{prefix}same"] else ("tie" if row.get(f"{prefix}tie") else "NO")


def reuse_cells(row: dict) -> list[str]:
    """Cross-step reuse columns: seconds, tokens, wall time over fast's, times naive, order against
    fast's ("-" in rows measured before it was)."""
    if "reuse_t" not in row:
        return ["-"] * 5
    naive = f"{row['naive_t'] / row['reuse_t']:.2f}" if "naive_t" in row else "-"
    return [f"{row['reuse_t']:.1f}", f"{row['reuse_tok']:,}", f"{row['reuse_t'] / row['fast_t']:.2f}", naive,
            order_label(row, "reuse_")]


class ResultsFile:
    """Finished examples' rows, one JSON record per line, the whole file rewritten atomically per row.

    A record is reused only under the same ``settings`` (the arguments in ``FINGERPRINT``, the thread
    count, torch version and a hash of the code); records made under other settings stay untouched.
    """

    def __init__(self, path, settings: dict, fresh: bool = False):
        self.path, self.settings, self.records = Path(path), json.loads(json.dumps(settings)), []
        if self.path.exists():
            for n, line in enumerate(self.path.read_text().splitlines(), 1):
                try:
                    record = json.loads(line) if line.strip() else None
                except json.JSONDecodeError as exc:
                    sys.exit(f"--results {self.path}: line {n} is not JSON ({exc.msg}); move it aside or pass another --results")
                if record is not None:
                    if not isinstance(record, dict) or "key" not in record or "row" not in record:
                        sys.exit(f"--results {self.path}: line {n} is not a benchmark record (needs 'key' and 'row')")
                    self.records.append(record)
        if fresh:
            self.records = [r for r in self.records if r.get("settings") != self.settings]

    def get(self, key: str) -> dict | None:
        record = self.record(key)
        return None if record is None else record["row"]

    def record(self, key: str) -> dict | None:
        """The whole record (row, date, plain, card) of ``key`` under these settings, or None."""
        return next((r for r in self.records if r["key"] == key and r.get("settings") == self.settings), None)

    def add(self, key: str, row: dict, **meta) -> None:
        meta = {"date": time.strftime("%Y-%m-%d %H:%M"), **meta}
        record = json.loads(json.dumps({"key": key, "settings": self.settings, **meta, "row": row},
                                       default=lambda x: x.item()))
        self.records = [r for r in self.records if not (r["key"] == key and r.get("settings") == self.settings)]
        self.records.append(record)
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.records))


def code_version() -> str:
    """A hash of the package modules loaded (those the measurement runs): rows measured on other code
    are not reused. Edits to modules a benchmark never imports, or to this script's reporting, keep
    rows valid; if this script's measuring changes, pass ``--fresh``."""
    import hashlib

    digest = hashlib.sha256()
    for name in sorted(m for m in sys.modules if m == "pruneprobe" or m.startswith("pruneprobe.")):
        digest.update(name.encode() + Path(sys.modules[name].__file__).read_bytes())
    return digest.hexdigest()[:12]


def load_code_paths(pruner, args) -> None:
    """One deletion of a tiny chain with each scorer and the approximate strategy, so that the
    modules they import lazily are loaded before ``code_version`` hashes the loaded ones."""
    from pruneprobe import Example

    tiny = Example("What is 1 + 1?", "1 plus 1 is 2.", "2", id="warm-up")
    for kw in ({"scorer": "naive"}, {"scorer": "fast"}, {"strategy": args.approx}):
        greedy_prune(pruner, tiny, max_steps=1, **kw)


def print_row(row: dict, source: str = "measured now") -> None:
    """One table line; ``source`` says whether it was measured now or reused (and from when)."""
    g = row.get
    print(" | ".join(str(x) for x in (
        row["id"], row["R"], f"{g('naive_t', float('nan')):.1f}",
        f"{row['fast_t']:.1f}", f"{g('speedup', float('nan')):.2f}", g("naive_tok", "-"), row["fast_tok"],
        f"{row['fast_tok'] / row['fast_t']:.0f}", f"{row['eff']:.2f}", f"{row['peak']:.2f}",
        order_label(row),
        f"{g('tau', float('nan')):.3f}", f"{row['short_x']:.2f}", *(f"{g(f'iou{r}', float('nan')):.3f}" for r in RHOS),
        f"{nats(g('gap0.7', float('nan')))}", f"{row['short_tau']:.3f}", *reuse_cells(row), source)))
    sys.stdout.flush()


def measure(pruner, ex, source: str, first_naive: bool, args, plain: float, fp32=None) -> dict:
    """Naive (unless skipped), fast and the approximate strategy on one example: one table row."""
    kw = dict(max_steps=args.max_steps, batch_tokens=args.batch_tokens)
    naive = naive_t = None
    if not args.skip_naive and first_naive:  # the caller alternates which scorer goes first
        naive, naive_t, _ = timed(pruner, ex, scorer="naive", **kw)
    fast, fast_t, peak = timed(pruner, ex, scorer="fast", reuse_across_steps=False, **kw)
    if not args.skip_naive and not first_naive:
        naive, naive_t, _ = timed(pruner, ex, scorer="naive", **kw)
    reuse, reuse_t, reuse_peak = timed(pruner, ex, scorer="fast", reuse_across_steps=True, **kw)
    short, short_t, _ = timed(pruner, ex, strategy=args.approx, shortlist=args.shortlist, shortlist_fraction=args.shortlist_fraction,
                              refresh_every=args.refresh_every or None, window=args.window,
                              reach=None if args.reach < 0 else args.reach, shortlist_first=args.shortlist_first or None,
                              margin=args.margin, multi_fraction=args.multi_fraction, **kw)
    row = {"id": f"{source}:{ex.id}", "R": fast.n_tokens, "fast_t": fast_t,
           "fast_tok": fast.metadata["tokens_computed"], "peak": peak, "short_t": short_t}
    row["eff"] = row["fast_tok"] / fast_t / plain
    same = reuse.deletion_order == fast.deletion_order
    row.update(reuse_t=reuse_t, reuse_tok=reuse.metadata["tokens_computed"], reuse_peak=reuse_peak, reuse_same=same,
               reuse_tie=(not same) and is_exact_tie(fast, reuse))
    if naive is not None:
        same = naive.deletion_order == fast.deletion_order
        row.update(naive_t=naive_t, naive_tok=naive.metadata["tokens_computed"], speedup=naive_t / fast_t,
                   same=same, tie=(not same) and is_exact_tie(naive, fast), tau=tau(naive, fast))
    row["short_x"] = (naive_t if naive is not None else fast_t) / short_t
    fid = fidelity(fast, short)
    row.update({k: v for k, v in fid.items() if k != "tau"}, short_tau=fid["tau"])
    if fp32 is not None:
        ref32 = greedy_prune(fp32, ex, **kw)
        row["bf16_same"] = ref32.deletion_order == fast.deletion_order
        row["bf16_tau"] = tau(ref32, fast)
    return row


def print_summary(rows: list[dict], args, probe: dict | None = None) -> None:
    """Medians, the long-chain probe, ties, bf16 agreement, and the last line."""
    def med(key):
        vals = [r[key] for r in rows if key in r]
        return statistics.median(vals) if vals else float("nan")

    print(f"# medians: speedup {med('speedup'):.2f}x  efficiency {med('eff'):.2f}  peak {max(r['peak'] for r in rows):.2f} GiB  "
          f"{args.approx} speedup vs {'naive' if not args.skip_naive else 'fast'} {med('short_x'):.2f}x  "
          f"IoU@0.7 {med('iou0.7'):.3f}  gap@0.7 {nats(med('gap0.7'))} nats")
    if probe:
        print(f"# long chain: {probe['n']} reasoning tokens, fast scorer peak memory {probe['peak']:.2f} GiB, "
              f"{probe['per_step']:.1f} s per step" + (f"; with reuse {probe['reuse_peak']:.2f} GiB, "
                                                      f"{probe['reuse_per_step']:.1f} s per step" if "reuse_peak" in probe else ""))
    reuse = [r for r in rows if "reuse_t" in r]
    if reuse:
        vs_naive = [r["naive_t"] / r["reuse_t"] for r in reuse if "naive_t" in r]
        print(f"# cross-step reuse: tokens {sum(r['reuse_tok'] for r in reuse) / sum(r['fast_tok'] for r in reuse):.2f} "
              f"of fast's (all rows), wall time median {statistics.median(r['reuse_t'] / r['fast_t'] for r in reuse):.2f} "
              f"of fast's, {statistics.median(vs_naive) if vs_naive else float('nan'):.2f}x naive; same order as fast in "
              f"{sum(r['reuse_same'] for r in reuse)}/{len(reuse)}, ties in {sum(r['reuse_tie'] for r in reuse)}")
    ties = sum(r.get("tie", False) for r in rows)
    if ties:
        print(f"# {ties} example(s) differ from naive only at an exact tie of naive scores")
    bf16 = [r for r in rows if "bf16_same" in r]
    if bf16:
        print(f"# bf16 vs fp32 orders: identical in {sum(r['bf16_same'] for r in bf16)}/{len(bf16)}, "
              f"median tau {med('bf16_tau'):.3f}")
    agree = [r["same"] for r in rows if "same" in r]
    agreement = sum(agree) / len(agree) if agree else float("nan")
    print(f"speedup={med('speedup'):.2f} agreement={agreement:.2f} efficiency={med('eff'):.2f}")


def report(args) -> None:
    """Markdown table of the results file's rows under these settings (any code version, any
    machine: rows recorded before machines were, too), no model."""
    settings = settings_of(args)
    records = [r for r in ResultsFile(args.results, {}).records
               if {k: v for k, v in r.get("settings", {}).items() if k not in ("code", "machine")} == settings]
    if not records:
        sys.exit(f"--report: {args.results} holds no rows for these settings ({settings})")
    for code, machine in dict.fromkeys((r["settings"]["code"], r["settings"].get("machine")) for r in records):
        mine = [r for r in records if (r["settings"]["code"], r["settings"].get("machine")) == (code, machine)]
        rows = [r["row"] for r in mine if "id" in r["row"]]
        probe = next((r["row"] for r in mine if r["key"].startswith("long-chain:")), None)
        print(f"code {code}; {machine or 'machine not recorded'}; {mine[0].get('card', '?')}; "
              f"rows measured {min(r['date'] for r in mine)} to "
              f"{max(r['date'] for r in mine)}; plain forward {', '.join(str(p) for p in sorted({round(r['plain']) for r in mine if 'plain' in r}))} tokens/s\n")
        print("| chain | R | naive s | fast s | fast × naive | same order | fast tok | eff | peak GiB | "
              f"{args.approx} s | {args.approx} × {'fast' if args.skip_naive else 'naive'} | IoU 0.9 / 0.8 / 0.7 | gap at 0.7 | tau | "
              "reuse s | reuse tok | reuse / fast (time) | reuse × naive | reuse order |")
        print("|" + " --- |" * 19)
        for r in rows:
            g = r.get
            iou = " / ".join(f"{g(f'iou{x}', float('nan')):.2f}" for x in RHOS)
            print(f"| {r['id']} | {r['R']} | {g('naive_t', float('nan')):.1f} | {r['fast_t']:.1f} | {g('speedup', float('nan')):.2f} | "
                  f"{order_label(r)} | {r['fast_tok']:,} | "
                  f"{r['eff']:.2f} | {r['peak']:.2f} | {g('short_t', float('nan')):.1f} | {r['short_x']:.1f} | "
                  f"{iou} | {nats(g('gap0.7', float('nan')))} | {r['short_tau']:.3f} | {' | '.join(reuse_cells(r))} |")
        print()
        print_summary(rows, args, probe)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 short gsm_symbolic chains")
    ap.add_argument("--pruner", default="smollm2-135m")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--device", default=None)
    ap.add_argument("--n-symbolic", type=int, default=5)
    ap.add_argument("--n-gsm8k", type=int, default=5)
    ap.add_argument("--min-tokens", type=int, default=40)
    ap.add_argument("--max-tokens", type=int, default=120)
    ap.add_argument("--max-steps", type=int, default=None, help="stop each run after this many deletions")
    ap.add_argument("--batch-tokens", type=int, default=None)
    ap.add_argument("--shortlist", type=int, default=16, help="strategy shortlist: most candidates scored exactly per step")
    ap.add_argument("--shortlist-fraction", type=float, default=1 / 3, help="strategy shortlist: share of the kept tokens scored (at least shortlist // 2)")
    ap.add_argument("--refresh-every", type=int, default=25, help="strategy shortlist: score every candidate every this many steps (0: first step only)")
    ap.add_argument("--window", type=int, default=2, help="strategy shortlist: tokens past a changed cut recomputed for its estimate")
    ap.add_argument("--reach", type=int, default=4, help="strategy shortlist: a deletion with fewer kept tokens between marks a cut changed (-1: every cut)")
    ap.add_argument("--shortlist-first", type=int, default=4, help="strategy shortlist: candidates in the first exact round (0: the whole shortlist at once)")
    ap.add_argument("--margin", type=float, default=5.0, help="strategy shortlist: nats below the best exact score an estimate may be and still be scored")
    ap.add_argument("--approx", default="shortlist", choices=("shortlist", "multi"),
                    help="the approximate strategy compared with exact")
    ap.add_argument("--multi-fraction", type=float, default=0.05, help="strategy multi: share of k deleted per scoring")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--long-chain", type=int, default=300, help="peak-memory probe on a chain this long (0: off)")
    ap.add_argument("--ids", default=None, help="comma-separated example ids: run only these (from the selection above)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gsm8k", default=str(GSM8K), help="GSM8K test JSONL (default: the GSM8K copy beside the repository)")
    ap.add_argument("--results", default=str(RESULTS),
                    help="JSONL of finished rows, reused by a rerun with the same settings ('': keep none)")
    ap.add_argument("--fresh", action="store_true", help="re-measure rows the results file holds for these settings")
    ap.add_argument("--report", action="store_true", help="print the results file's rows for these settings as a table; measure nothing")
    args = ap.parse_args(argv)
    if args.quick:
        args.long_chain = 0
        args.n_symbolic, args.n_gsm8k, args.min_tokens, args.max_tokens = 2, 0, 0, 40
        args.max_steps = args.max_steps or 8
    if args.report:
        return report(args)

    pruner = load_pruner(args.pruner, device=args.device, dtype=args.dtype)
    dev = pruner.device
    machine = machine_name(dev)
    card = machine if dev.type == "cuda" else f"{machine}, {torch.get_num_threads()} threads"
    examples = pick_examples(args, pruner)
    if args.ids:
        wanted = args.ids.split(",")
        examples = [(src, e) for src, e in examples if e.id in wanted]
        if len(examples) != len(wanted):
            sys.exit(f"--ids: not in the selection: {sorted(set(wanted) - {e.id for _, e in examples})}")
    plain = plain_throughput(pruner, [e for _, e in examples])
    print(f"# {card}; model {args.pruner} ({args.dtype}); plain batched forward {plain:.0f} tokens/s")
    fp32 = None
    if args.dtype != "float32":
        fp32 = load_pruner(args.pruner, device=args.device, dtype="float32")
    load_code_paths(pruner, args)
    results = (ResultsFile(args.results, settings_of(args, code_version(), machine), fresh=args.fresh)
               if args.results else None)
    reuse = results is not None and not args.quick  # a quick benchmark always measures
    header = ("example", "R", "naive_s", "fast_s", "speedup", "naive_tok", "fast_tok", "fast_tok/s", "eff",
              "peakGiB", "same_order", "tau", "short_x", "iou.9", "iou.8", "iou.7", "gap.7", "short_tau",
              "reuse_s", "reuse_tok", "reuse/fast_t", "reuse_x_naive", "reuse_same", "source")
    print(" | ".join(header))
    rows, reused = [], []
    for i, (source, ex) in enumerate(examples):
        key = f"{source}:{ex.id}"
        record = results.record(key) if reuse else None
        if record is not None:
            row = record["row"]
            reused.append(record)
            print_row(row, f"reused ({record.get('date', '?')})")
        else:
            row = measure(pruner, ex, source, i % 2 == 0, args, plain, fp32)
            if results:
                results.add(key, row, plain=plain, card=card)
            print_row(row)
        rows.append(row)
    runs = sorted({(r.get("date", "?"), round(r.get("plain", float("nan")))) for r in reused})
    print(f"# {len(rows) - len(reused)} row(s) measured now, {len(reused)} reused"
          + (f" from {results.path} (--fresh re-measures); their runs (date, plain tokens/s): "
             f"{', '.join(f'{d} {p}' for d, p in runs)}" if reused else ""))

    probe = None
    if args.long_chain:
        record = results.record(f"long-chain:{args.long_chain}") if reuse else None
        probe = None if record is None else record["row"]
        if record is not None:
            print(f"# long-chain probe reused ({record.get('date', '?')})")
        if probe is None:
            chains = [e for _, e in examples]
            probe = dict(zip(("n", "peak", "per_step"), long_chain_memory(pruner, chains, args.long_chain,
                                                                         reuse_across_steps=False)))
            probe.update(zip(("reuse_n", "reuse_peak", "reuse_per_step"),
                             long_chain_memory(pruner, chains, args.long_chain, reuse_across_steps=True)))
            if results:
                results.add(f"long-chain:{args.long_chain}", probe, card=card)
    print_summary(rows, args, probe)


if __name__ == "__main__":
    main()
