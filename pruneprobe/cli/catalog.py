"""``pruneprobe models`` and ``pruneprobe datasets``: what can be named on the command line."""

from __future__ import annotations

import importlib.util

from pruneprobe.data.datasets import list_datasets
from pruneprobe.data.models import list_models


def add_parser(subparsers) -> None:
    subparsers.add_parser("models", help="embedded pruners with descriptions and install commands")
    subparsers.add_parser("datasets", help="registered datasets")


def run(args) -> int:
    return _datasets() if args.command == "datasets" else _models()


def _models() -> int:
    for m in list_models():
        installed = importlib.util.find_spec(m.package) is not None
        print(f"{m.name}  ({'installed' if installed else 'not installed'})")
        print(f"    {m.description}")
        print(f"    install: {m.install}")
    print("Any local model directory or hub id (owner/name) works as --pruner too.")
    return 0


def _datasets() -> int:
    for name, description in list_datasets().items():
        print(f"{name:<14} {description}")
    return 0


__all__ = ["add_parser", "run"]
