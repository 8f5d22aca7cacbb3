"""Command line: ``pruneprobe run | demo | show | models | datasets | distill | sufficiency | collect``.

Examples::

    pruneprobe run --dataset gsm_symbolic --n 100 --pruner smollm2-135m --objective joint \\
        --method greedy --out runs/gsm-smol          # rerun the same line to resume after a kill
    pruneprobe show runs/gsm-smol                    # examples with their token counts
    pruneprobe show runs/gsm-smol --example gsm_symbolic-0-3 --keep 0.9 --keep 0.7
    pruneprobe models                                # embedded pruners and how to install them
    pruneprobe datasets
    pruneprobe collect runs/students data/distill    # the students' tables, for the repository

Every subcommand is a module of ``pruneprobe.cli`` (listed in ``COMMAND_MODULES``) with
``add_parser(subparsers)``, which adds its subcommand(s), and ``run(args) -> int``.

Every ``PruneprobeError`` is printed as one ``error: ...`` line on stderr with exit status 2.
``pruneprobe run`` exits 0 only when every planned example is done (with ``--shard``: every example
of that shard), and 1 when any failed, printing ``N of M examples failed; see <run>/errors.jsonl``.
Examples that ``--max-reasoning-tokens`` passes over are not planned: they are listed in
``errors.jsonl`` as skipped, with their reason, and do not count as failures.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType
from typing import Callable

from pruneprobe.cli import (catalog, collect, demo, distill, features, generate, gold, run, show, sufficiency,
                            tables)
from pruneprobe.errors import PruneprobeError

COMMAND_MODULES: tuple[ModuleType, ...] = (run, demo, show, catalog, features, gold, tables, distill, sufficiency,
                                           collect, generate)


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Callable[[argparse.Namespace], int]]]:
    """The ``pruneprobe`` parser and ``{subcommand: run}``, from every module of ``COMMAND_MODULES``."""
    parser = argparse.ArgumentParser(prog="pruneprobe", description="Greedy pruning of LLM chains of thought "
                                     "(arXiv 2601.03066): which reasoning tokens does the model need?")
    sub = parser.add_subparsers(dest="command", required=True)
    handlers: dict[str, Callable[[argparse.Namespace], int]] = {}
    for module in COMMAND_MODULES:
        before = set(sub.choices)
        module.add_parser(sub)
        handlers.update({name: module.run for name in sub.choices if name not in before})
    return parser, handlers


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 1 some examples of a run failed, 2 bad input,
    130 interrupted).

    >>> main(["datasets"])  # doctest: +SKIP
    """
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    try:
        return handlers[args.command](args)
    except PruneprobeError as exc:
        print("error: " + " ".join(str(exc).split()), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


__all__ = ["main", "build_parser", "COMMAND_MODULES"]
