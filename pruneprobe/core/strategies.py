"""How greedy pruning picks each deletion: ``Exact()`` (the default), or the approximations
``Shortlist(...)`` and ``Multi(...)``.

Canonical pattern::

    from pruneprobe import Shortlist, greedy_prune
    result = greedy_prune(pruner, example, strategy=Shortlist(window=16, reach=8))

The string forms with keywords (``strategy="shortlist", window=16, reach=8``) still work:
``resolve_strategy`` turns them into the same objects. The keyword names map onto the fields as
``shortlist`` → ``Shortlist.size``, ``shortlist_fraction`` → ``fraction``, ``shortlist_first`` →
``first``, ``multi_fraction`` → ``Multi.fraction``; ``window``, ``reach``, ``refresh_every`` and
``margin`` keep their names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from pruneprobe.errors import PruneprobeError


@dataclass(frozen=True)
class Exact:
    """Re-score every kept token at every step and delete the best: the paper's greedy pruning.

    Fills the whole candidate-score matrix; the rank-dynamics analysis needs it."""

    name: ClassVar[str] = "exact"


@dataclass(frozen=True)
class Shortlist:
    """Score exactly only the candidates with the best estimate and delete the best of them.

    An approximation. Each step scores the ``first`` best-estimated candidates, then, in a second
    forward, those whose estimate is within ``margin`` nats of the best exact score so far, up to
    ``fraction`` of the ``k`` kept tokens but at least ``size // 2`` and at most ``size`` in all
    (``first=None``: all of those at once). Every candidate is scored at the first step and every
    ``refresh_every`` steps (``None``: only the first). The estimate: the cached log-prob of the
    token after the cut given the tokens before it, then each later kept token's current log-prob
    plus the change the candidate's deletion made to it when last scored exactly; where a deletion
    since then fell within ``reach`` kept tokens of the cut (``None``: anywhere), the ``window``
    tokens past it are recomputed in one packed forward. Long-range interactions (a token that
    stops mattering once a far token goes) are invisible to it; ``window=16, reach=8`` catches
    most of them, at a cost in speed. Its fidelity to exact is measured in
    ``benchmarks/greedy_speed.py``; the category and regression analyses take it, the
    rank-dynamics analysis does not (unscored entries are NaN).
    """

    window: int = 2
    reach: int | None = 4
    size: int = 16
    fraction: float = 1 / 3
    refresh_every: int | None = 25
    first: int | None = 4
    margin: float = 5.0
    name: ClassVar[str] = "shortlist"

    def __post_init__(self):
        if not 0 < self.fraction <= 1 or self.size < 1:
            raise PruneprobeError(f"need shortlist >= 1 and shortlist_fraction in (0, 1], got {self.size!r}, "
                                  f"{self.fraction!r}")
        if self.refresh_every is not None and self.refresh_every < 1:
            raise PruneprobeError("refresh_every must be >= 1 or None (score every candidate only at the first step), "
                                  f"got {self.refresh_every!r}")
        if self.window < 0 or (self.reach is not None and self.reach < 0):
            raise PruneprobeError(f"need window >= 0 and reach >= 0 or None, got window={self.window!r}, "
                                  f"reach={self.reach!r}")
        if (self.first is not None and self.first < 1) or not self.margin >= 0:
            raise PruneprobeError(f"need shortlist_first >= 1 or None and margin >= 0, got {self.first!r}, "
                                  f"{self.margin!r}")

    def size_for(self, k: int) -> int:
        """Candidates scored exactly with ``k`` kept tokens.

        >>> [Shortlist().size_for(k) for k in (90, 40, 30, 12)]
        [16, 14, 10, 8]
        """
        return min(self.size, max(self.size // 2, math.ceil(self.fraction * k)))

    def scores_all(self, step: int, k: int) -> bool:
        """Whether step ``step`` (from 0) with ``k`` kept tokens scores every candidate."""
        return step == 0 or bool(self.refresh_every and step % self.refresh_every == 0) or k <= self.size_for(k)


@dataclass(frozen=True)
class Multi:
    """One full scoring, then the ``max(1, floor(fraction * k))`` best candidates are deleted (best
    first) while ``k`` tokens remain; rows of the extra deletions are NaN.

    An approximation, measured like ``Shortlist``. Traces are exact for the sequence actually deleted."""

    fraction: float = 0.05
    name: ClassVar[str] = "multi"

    def __post_init__(self):
        if not 0 < self.fraction < 1:
            raise PruneprobeError(f"multi_fraction must be in (0, 1), got {self.fraction!r}")

    def deletions(self, k: int, remaining: int) -> int:
        """Tokens deleted after one scoring with ``k`` kept tokens and ``remaining`` deletions to go."""
        return min(max(1, int(self.fraction * k)), remaining)


Strategy = Exact | Shortlist | Multi
STRATEGIES = (Exact.name, Shortlist.name, Multi.name)
# the keywords greedy_prune took before strategy objects, and the fields they set
SHORTLIST_KEYWORDS = {"shortlist": "size", "shortlist_fraction": "fraction", "refresh_every": "refresh_every",
                      "window": "window", "reach": "reach", "shortlist_first": "first", "margin": "margin"}
MULTI_KEYWORDS = {"multi_fraction": "fraction"}


def resolve_strategy(strategy: Strategy | str = "exact", **legacy_keywords) -> Strategy:
    """A strategy object from an object, or from a name and the old keywords (``shortlist=16``, ...).

    With a name, every keyword given is checked whatever the strategy (as before objects); an
    object comes with its settings, so keywords beside it are refused."""
    unknown = sorted(set(legacy_keywords) - set(SHORTLIST_KEYWORDS) - set(MULTI_KEYWORDS))
    if unknown:
        raise TypeError(f"unexpected strategy keyword argument(s): {', '.join(unknown)}")
    if isinstance(strategy, (Exact, Shortlist, Multi)):
        if legacy_keywords:
            raise PruneprobeError(f"strategy={strategy!r} carries its own settings; do not also pass "
                                  f"{', '.join(sorted(legacy_keywords))} (set them on the strategy object)")
        return strategy
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise PruneprobeError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)} "
                              "(or Exact(), Shortlist(...), Multi(...))")
    shortlist = Shortlist(**{field: legacy_keywords[kw] for kw, field in SHORTLIST_KEYWORDS.items()
                             if kw in legacy_keywords})
    multi = Multi(**{field: legacy_keywords[kw] for kw, field in MULTI_KEYWORDS.items() if kw in legacy_keywords})
    return {"exact": Exact(), "shortlist": shortlist, "multi": multi}[strategy]
