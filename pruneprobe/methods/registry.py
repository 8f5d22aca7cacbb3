"""The one list of pruning methods: names, what each needs, and ``prune_baseline`` to run one by name.

Run configuration, the run loop and the CLI help all read ``METHODS``; a new method is added here
once.

>>> list_methods()
['greedy', 'surprisal', 'h2o', 'uniform', 'random', 'tokenskip']
>>> [m.name for m in METHODS.values() if m.one_shot]
['surprisal', 'h2o', 'uniform', 'random']
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from pruneprobe.core.greedy import greedy_prune
from pruneprobe.core.result import PruneResult
from pruneprobe.data.examples import Example
from pruneprobe.errors import PruneprobeError
from pruneprobe.methods.baselines import h2o_prune, random_prune, surprisal_prune, uniform_prune
from pruneprobe.methods.tokenskip import tokenskip_prune


@dataclass(frozen=True)
class Method:
    """A pruning method: ``prune(pruner, example, objective, **kw) -> PruneResult``.

    ``one_shot``: a fixed order from one score per token (cheap; always the full order, so a keep
    ratio does not apply); ``needs_classifier``: takes ``classifier=`` (TokenSkip); ``takes_seed``:
    takes ``seed=``."""

    name: str
    prune: Callable[..., PruneResult]
    description: str
    one_shot: bool = False
    needs_classifier: bool = False

    @property
    def takes_seed(self) -> bool:
        return "seed" in inspect.signature(self.prune).parameters


def _tokenskip(pruner, example: Example, objective="joint", *, classifier=None, **kw) -> PruneResult:
    if classifier is None:
        raise PruneprobeError("method 'tokenskip' needs classifier= (a hub id, local directory or "
                              "load_token_classifier(...) result)")
    return tokenskip_prune(pruner, example, classifier, objective=objective, **kw)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("greedy", greedy_prune, "delete the token whose removal costs the least likelihood, one at a time"),
    Method("surprisal", surprisal_prune, "most predictable tokens first (one forward)", one_shot=True),
    Method("h2o", h2o_prune, "least attended-to tokens first (one forward, eager attention)", one_shot=True),
    Method("uniform", uniform_prune, "evenly spaced deletions", one_shot=True),
    Method("random", random_prune, "a seeded random order", one_shot=True),
    Method("tokenskip", _tokenskip, "a token classifier's keep probabilities (LLMLingua-2)", needs_classifier=True),
)}


def list_methods() -> list[str]:
    """Every pruning method's name: ``greedy`` first, then the baselines."""
    return list(METHODS)


def get_method(name: str) -> Method:
    """The registered method called ``name``; an error lists the known ones."""
    if name not in METHODS:
        raise PruneprobeError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    return METHODS[name]


def methods_help() -> str:
    """One line per method, for the CLI's ``--method`` help."""
    return "; ".join(f"{m.name}: {m.description}" for m in METHODS.values())


def prune_baseline(pruner, example: Example, method: str, objective="joint", seed: int = 0, **kw) -> PruneResult:
    """Run any method by name (``list_methods()``); ``seed`` goes to methods that take one.

    >>> prune_baseline(pruner, example, "random", seed=3)   # doctest: +SKIP
    """
    spec = get_method(method)
    if spec.takes_seed:
        kw["seed"] = seed
    return spec.prune(pruner, example, objective, **kw)
