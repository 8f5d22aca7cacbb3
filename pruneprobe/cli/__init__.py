"""The ``pruneprobe`` command line (``python -m pruneprobe.cli`` is the same): one module per
subcommand, each with ``add_parser(subparsers)`` and ``run(args) -> int``; ``app`` builds the
parser from them and dispatches."""

from pruneprobe.cli.app import main

__all__ = ["main"]
