"""``pruneprobe tables``: remake the slow tables the notebooks read (data/tables: rank correlation,
the attention study, per-layer and per-head scores) from the cached runs and features."""

from __future__ import annotations

import argparse

from pruneprobe.viz.notebook import build_tables


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("tables", help="remake the cached tables of data/tables the notebooks read",
                              description="Remake the cached tables of data/tables (rank correlation by lag, the "
                              "attention study, per-layer and per-head scores) from data/runs and data/features. "
                              "Minutes on a CPU; the notebooks rebuild a stale table themselves.")
    p.add_argument("--if-stale", action="store_true", help="only the tables whose inputs changed")
    return p


def run(args) -> int:
    build_tables(refresh=not args.if_stale)
    return 0


__all__ = ["add_parser", "run"]
