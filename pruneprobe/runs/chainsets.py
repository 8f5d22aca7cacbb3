"""Chain sets: which cached runs under ``data/runs`` belong to one set of chains, for the notebooks and
``pruneprobe features``.

- ``gold``: the 120 short gold ``gsm_symbolic`` chains of the first cached runs (bf16, lent H200);
- ``gold-len128``: full-length gold chains, the first 200 of at most 128 SmolLM2 tokens (fp32, CPU);
- ``self``: chains SmolLM2-135M sampled itself (``pruneprobe generate``) and prunes (fp32, CPU).

Canonical pattern::

    from pruneprobe.runs.chainsets import chain_set
    chains = chain_set("self")            # or chain_set(): $PRUNEPROBE_CHAINS, else "gold"
    chains.runs["greedy joint"]           # 'self-smollm2-greedy-joint'

Gotchas: self-generated chains keep their questions' example ids, so a gold set's file patterns must
never match a ``self`` run's files (its run directories start with ``self-``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from pruneprobe.errors import PruneprobeError

CHAINS_ENV = "PRUNEPROBE_CHAINS"
METHODS = ("greedy joint", "greedy answer", "surprisal", "h2o", "uniform", "random")


@dataclass(frozen=True)
class ChainSet:
    """One set of cached runs the notebooks read: the runs under ``data/runs`` by short label (results
    come back keyed by ``display_name(label)``, e.g. "Greedy, joint objective"), the setting figure
    captions state, and other pruners' greedy joint runs (notebook 05)."""

    name: str
    runs: dict[str, str]
    setting: str
    pruners: dict[str, str] = field(default_factory=dict)
    dtype: str = "float32"  # the pruner's dtype in these runs (attention features are made in it)
    labels_glob: str = ""  # cached rule-label tables of these runs under data/labels

    @property
    def features_file(self) -> str:
        """The cached attention features of the greedy joint run (``pruneprobe features``), under data/features."""
        return f"{self.runs['greedy joint']}-attention.parquet"

    @property
    def subdir(self) -> str:
        """Where its figures and tables go under ``figures/`` and ``data/tables/``: ``""`` for gold."""
        return "" if self.name == "gold" else self.name


def _runs(template: str) -> dict[str, str]:
    return {m: template.format(method=m.replace(" ", "-") if m.startswith("greedy") else f"{m}-joint") for m in METHODS}


CHAIN_SETS = {
    "gold": ChainSet("gold", _runs("smollm2-{method}"), "SmolLM2-135M pruner (bf16, exact greedy), gsm_symbolic chains",
                     {"gemma3": "gemma3-greedy-joint"}, "bfloat16", "smollm2-*-rules.parquet"),
    "gold-len128": ChainSet("gold-len128", _runs("smollm2-{method}-len128"),
                            "SmolLM2-135M pruner (fp32, exact greedy), full-length gold gsm_symbolic chains (≤128 tokens)",
                            {"gemma3": "gemma3-greedy-joint-len128"}, "float32", "smollm2-*-len128-rules.parquet"),
    # "self-" first: the chains reuse their questions' ids, so no "smollm2-*" pattern may match their files
    "self": ChainSet("self", _runs("self-smollm2-{method}"),
                     "SmolLM2-135M pruning its own sampled gsm_symbolic chains (fp32, exact greedy, ≤128 tokens)",
                     {}, "float32", "self-smollm2-*-rules.parquet"),
}


def chain_set(name: str | None = None) -> ChainSet:
    """The chain set called ``name`` (default: ``$PRUNEPROBE_CHAINS``, else ``gold``).

    >>> chain_set("gold-len128").runs["greedy joint"], chain_set("self").subdir
    ('smollm2-greedy-joint-len128', 'self')
    """
    name = name or os.environ.get(CHAINS_ENV) or "gold"
    if name not in CHAIN_SETS:
        raise PruneprobeError(f"unknown chain set {name!r} (from {CHAINS_ENV} or the argument); "
                              f"use one of {', '.join(CHAIN_SETS)}")
    return CHAIN_SETS[name]


__all__ = ["CHAINS_ENV", "CHAIN_SETS", "ChainSet", "METHODS", "chain_set"]
