"""Core: encoding an example (``encoding``), the objectives and the naive scorer (``scoring``), the
fast exact scorer (``fastscore``) and its run-time check (``exactness``), cost estimates (``cost``),
greedy pruning (``greedy``) and its strategies (``strategies``), the result object (``result``) and
atomic file writes (``io``).
Imports ``pruneprobe.data`` and ``pruneprobe.errors`` only; docs/method.md and docs/fast-scorer.md.
"""

from pruneprobe.core.batched import greedy_prune_many
from pruneprobe.core.greedy import greedy_prune
from pruneprobe.core.result import PruneResult
from pruneprobe.core.strategies import Exact, Multi, Shortlist

__all__ = ["greedy_prune", "greedy_prune_many", "PruneResult", "Exact", "Shortlist", "Multi"]
