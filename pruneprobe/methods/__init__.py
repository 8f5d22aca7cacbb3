"""Methods other than greedy: one-shot baselines (surprisal, H2O attention, uniform, random) and
TokenSkip, all returning a ``PruneResult``; ``prune_baseline`` dispatches by name."""

from pruneprobe.methods.registry import list_methods, prune_baseline

__all__ = ["list_methods", "prune_baseline"]
