"""pruneprobe: which tokens of a chain of thought does the model itself need?

Greedy pruning (Singh & Hakkani-Tür, arXiv 2601.03066) deletes, one at a time, the reasoning
token whose removal costs a *pruner* LM the least likelihood, and records the whole order.

>>> from pruneprobe import greedy_prune, load_pruner, Example   # doctest: +SKIP
"""

__version__ = "0.1.0"
