"""``pruneprobe run``: prune a dataset into a resumable run directory."""

from __future__ import annotations

import argparse

from pruneprobe.errors import PruneprobeError
from pruneprobe.methods.registry import methods_help
from pruneprobe.runs.config import RunConfig
from pruneprobe.runs.execute import run_pruning
from pruneprobe.runs.ray_engine import RayOptions


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("run", help="prune a dataset into a resumable run directory",
                              description="Prune a dataset into a resumable run directory. Exit status: 0 when "
                              "every planned example is done, 1 when any failed (see errors.jsonl), 2 for bad input.")
    p.add_argument("--dataset", required=True, help="a registered dataset (see `pruneprobe datasets`)")
    p.add_argument("--n", type=int, default=None, help="number of examples (default: all)")
    p.add_argument("--split", default="test")
    p.add_argument("--seed", type=int, default=0, help="data seed (gsm_symbolic) and random-baseline seed")
    p.add_argument("--data-path", default=None, help="JSONL file, directory with {split}.jsonl, or hub id")
    p.add_argument("--pruner", required=True, help="embedded name (`pruneprobe models`), local dir or hub id")
    p.add_argument("--objective", default="joint", help="joint (default) or answer")
    p.add_argument("--method", default="greedy", help=f"pruning method (default greedy); {methods_help()}")
    p.add_argument("--keep", type=float, default=None, dest="keep_ratio",
                   help="stop at this keep ratio in (0, 1] (default: prune to the end)")
    p.add_argument("--scorer", default="fast", help="fast (default) or naive")
    p.add_argument("--strategy", default="exact",
                   help="exact (default), shortlist or multi (approximations; see greedy_prune)")
    p.add_argument("--dtype", default=None, help="float32 or bfloat16 (default: float32 on CPU)")
    p.add_argument("--classifier", default=None, help="token classifier for --method tokenskip")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    p.add_argument("--out", required=True, help="run directory (created, or resumed when it exists)")
    p.add_argument("--max-reasoning-tokens", type=int, default=None,
                   help="select the first --n examples whose reasoning has at most this many pruner tokens "
                   "(those passed over are recorded in errors.jsonl as skipped, not failed)")
    p.add_argument("--examples-from", default=None, metavar="RUN_DIR",
                   help="prune the examples of another run (its first --n), e.g. to compare pruners")
    p.add_argument("--shard", default=None, metavar="I/N",
                   help="prune only examples I mod N, so N processes can share one run directory on a shared "
                   "disk (e.g. a SLURM array without Ray)")
    p.add_argument("--batch-examples", type=int, default=1, metavar="N",
                   help="greedy (exact): advance N examples in lockstep, their candidates packed into shared "
                   "forwards (same orders; fills a GPU with a small pruner; no gain on a CPU). Default 1")
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="local (default): this process; ray: Ray actors, each loading the pruner once, results "
                   "written here (optional extra: pip install 'pruneprobe[ray]')")
    p.add_argument("--address", default=None,
                   help="--engine ray: a running Ray cluster (HOST:PORT or auto; default: start a local Ray)")
    p.add_argument("--ray-workers", type=int, default=None,
                   help="--engine ray: actors (default: one per GPU with --ray-gpus-per-worker, else per CPU)")
    p.add_argument("--ray-gpus-per-worker", type=float, default=0.0,
                   help="--engine ray: GPUs per actor, fractional for small pruners (e.g. 0.25; default 0: CPU)")
    p.add_argument("--ray-cpus-per-worker", type=float, default=1.0, help="--engine ray: CPUs per actor (default 1)")
    p.add_argument("--keep-calculator", action="store_true",
                   help="keep GSM8K <<48/2=24>> calculator annotations in the reasoning (default: removed)")
    p.add_argument("--max-hours", type=float, default=3.0,
                   help="greedy: refuse an example whose estimated cost exceeds this many hours (default 3; "
                   "0: no limit); the estimate is shown at the start and in the progress bar")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def run(args) -> int:
    """Prune (or resume); exit 0 when every planned example of this shard is done, else 1."""
    config = RunConfig(dataset=args.dataset, pruner=args.pruner, n=args.n, split=args.split, seed=args.seed,
                       data_path=args.data_path, objective=args.objective, method=args.method,
                       keep_ratio=args.keep_ratio, scorer=args.scorer, strategy=args.strategy, dtype=args.dtype,
                       classifier=args.classifier, device=args.device,
                       max_reasoning_tokens=args.max_reasoning_tokens, examples_from=args.examples_from,
                       keep_calculator=args.keep_calculator, max_hours=args.max_hours or None)
    shard = _parse_shard(args.shard)
    if args.engine == "ray" and shard is not None:
        raise PruneprobeError("--shard and --engine ray do not mix: Ray spreads the examples itself")
    options = RayOptions(address=args.address, workers=args.ray_workers, gpus_per_worker=args.ray_gpus_per_worker,
                         cpus_per_worker=args.ray_cpus_per_worker, device=args.device)
    pruned = run_pruning(config, args.out, progress=not args.no_progress, shard=shard, engine=args.engine,
                         ray_options=options, batch_examples=args.batch_examples)
    done, errors = set(pruned.example_ids), pruned.errors
    print(f"{pruned.path}: {len(done)}/{pruned.n_planned} examples done, {len(errors)} failed "
          f"(method={pruned.config.method}, objective={pruned.config.objective}, pruner={pruned.config.model_id})")
    for e in errors:
        print(f"  failed {e['example_id']}: {e['error']}")
    planned = [e["id"] for pos, e in enumerate(pruned.manifest.get("examples", []))
               if shard is None or pos % shard[1] == shard[0]]
    failed = {e["example_id"] for e in errors} & set(planned)
    if failed:
        print(f"{len(failed)} of {len(planned)} examples failed; see {pruned.path / 'errors.jsonl'}")
    elif not done.issuperset(planned):
        print(f"{len(set(planned) - done)} of {len(planned)} examples are not done; rerun the same command")
    return 1 if failed or not done.issuperset(planned) else 0


def _parse_shard(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(v) for v in text.split("/"))
    except ValueError:
        raise PruneprobeError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None


__all__ = ["add_parser", "run"]
