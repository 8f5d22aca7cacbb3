"""``pruneprobe show RUN [--example ID --keep K ...]``: a run's examples, or one pruned chain."""

from __future__ import annotations

import argparse

from pruneprobe.core.result import n_keep_for
from pruneprobe.runs.tables import load_run


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("show", help="list a run's examples, or show one pruned chain")
    p.add_argument("run", help="run directory")
    p.add_argument("--example", default=None, help="example id (without it: list the examples)")
    p.add_argument("--keep", type=float, action="append", default=None,
                   help="keep ratio to show; repeat for several (default 0.9, 0.8, 0.7)")
    return p


def run(args) -> int:
    loaded = load_run(args.run)
    if args.example is not None:
        keeps = tuple(args.keep) if args.keep else (0.9, 0.8, 0.7)
        for k in keeps:
            n_keep_for(k, 1)  # validates the ratio
        print(loaded.result(args.example).show(keeps))
        return 0
    cfg = loaded.config
    print(f"run {loaded.path}: method={cfg.method} objective={cfg.objective} pruner={cfg.model_id or cfg.pruner} "
          f"dataset={cfg.dataset} ({loaded.status})")
    n_tok = loaded.tokens.groupby("example_id", sort=False).size()
    n_del = loaded.steps.groupby("example_id", sort=False)["step"].max()
    print(f"{'example':<32} {'tokens':>7} {'deleted':>8}")
    for ex_id in loaded.example_ids:
        print(f"{ex_id:<32} {int(n_tok.get(ex_id, 0)):>7} {int(n_del.get(ex_id, 0)):>8}")
    errors, damaged, skipped = loaded.errors, loaded.damaged, loaded.skipped
    pending = loaded.n_planned - len(loaded.example_ids) - len(errors) - len(damaged)
    print(f"{len(loaded.example_ids)} done, {len(errors)} failed, {max(pending, 0)} not run yet"
          + (f", {len(damaged)} damaged (rerun the run to recompute them)" if damaged else "")
          + (f"; {len(skipped)} passed over by the selection (errors.jsonl)" if skipped else ""))
    for e in errors:
        print(f"  failed {e['example_id']}: {e['error']}")
    for name in damaged:
        print(f"  damaged examples/{name}")
    return 0


__all__ = ["add_parser", "run"]
