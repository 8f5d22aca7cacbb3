"""Runs: prune a dataset with one configuration into a resumable, kill-safe run directory
(docs/run-format.md). ``execute`` runs, ``tables`` reads (``load_run``), ``locks`` holds the run's
lock and errors file, ``select`` chooses the examples.

>>> from pruneprobe.runs import RunConfig
>>> RunConfig(dataset="gsm_symbolic", pruner="smollm2-135m", n=3).method
'greedy'
"""

from pruneprobe.runs.config import RunConfig
from pruneprobe.runs.execute import run_pruning
from pruneprobe.runs.tables import Run, build_tables, load_run, read_errors

__all__ = ["RunConfig", "run_pruning", "Run", "load_run", "build_tables", "read_errors"]
