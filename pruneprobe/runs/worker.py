"""Pruning one example of a run: the step every engine shares (in-process, shards, Ray actors).

>>> config = RunConfig(dataset="gsm_symbolic", pruner="smollm2-135m", method="uniform")
>>> prune_example(config, load_pruner("smollm2-135m"), load_examples("gsm_symbolic", n=1)[0]).method
... # doctest: +SKIP
'uniform'
"""

from __future__ import annotations

from pathlib import Path

from pruneprobe.core.batched import greedy_prune_many
from pruneprobe.core.result import PruneResult
from pruneprobe.data.models import load_pruner
from pruneprobe.errors import PruneprobeError
from pruneprobe.methods.registry import get_method, prune_baseline
from pruneprobe.methods.tokenskip import load_token_classifier
from pruneprobe.runs.config import RunConfig, safe_id


def check_batching(config: RunConfig, batch_examples: int) -> None:
    """``batch_examples > 1`` advances that many greedy chains in lockstep (exact strategy only)."""
    if isinstance(batch_examples, bool) or not isinstance(batch_examples, int) or batch_examples < 1:
        raise PruneprobeError(f"batch_examples must be a positive integer, got {batch_examples!r}")
    if batch_examples > 1 and (config.method != "greedy" or config.strategy != "exact"):
        raise PruneprobeError("--batch-examples > 1 batches exact greedy pruning only, not "
                              f"method {config.method!r} with strategy {config.strategy!r}")


def prune_examples(config: RunConfig, pruner, examples: list, classifier=None, batch_examples: int = 1,
                   progress: bool = False, checkpoints: Path | None = None) -> list[PruneResult | PruneprobeError]:
    """Each example's ``PruneResult``, or the ``PruneprobeError`` it raised. With ``batch_examples > 1``
    greedy chains advance together (``core.batched``); if that batch fails, its examples are pruned one
    at a time, so each error lands on its own example. ``checkpoints``: a directory where greedy pruning
    one at a time keeps each example's step checkpoint (``checkpoint_path``)."""
    if batch_examples > 1 and len(examples) > 1:
        try:
            return list(greedy_prune_many(pruner, examples, config.objective, config.keep_ratio,
                                          batch_examples=batch_examples, scorer=config.scorer,
                                          max_hours=config.max_hours))
        except PruneprobeError:
            pass
    outcomes: list[PruneResult | PruneprobeError] = []
    for example in examples:
        try:
            path = None if checkpoints is None else checkpoint_path(checkpoints, example.id)
            outcomes.append(prune_example(config, pruner, example, classifier, progress, path))
        except PruneprobeError as exc:
            outcomes.append(exc)
    return outcomes


def load_classifier(config: RunConfig):
    """The token classifier a run's method needs (TokenSkip), else ``None``."""
    return load_token_classifier(config.classifier) if get_method(config.method).needs_classifier else None


def checkpoint_path(directory: Path, example_id: str) -> Path:
    """Where a run keeps an example's step checkpoint: hidden beside the results, so loading skips it.

    >>> checkpoint_path(Path("run/examples"), "gsm_symbolic-0-3").name
    '.gsm_symbolic-0-3.steps.json'
    """
    return Path(directory) / f".{safe_id(example_id)}.steps.json"


def prune_example(config: RunConfig, pruner, example, classifier=None, progress: bool = False,
                  checkpoint: Path | None = None) -> PruneResult:
    """Prune ``example`` as the run's configuration says (greedy: resuming from ``checkpoint`` if there)."""
    method = get_method(config.method)
    if method.one_shot:  # always the full order (cheap); keep_ratio does not apply to them
        return prune_baseline(pruner, example, config.method, objective=config.objective, seed=config.seed)
    if method.needs_classifier:
        return method.prune(pruner, example, config.objective, classifier=classifier, keep_ratio=config.keep_ratio)
    return method.prune(pruner, example, config.objective, config.keep_ratio, scorer=config.scorer,
                        strategy=config.strategy, progress=progress, max_hours=config.max_hours, checkpoint=checkpoint)


class RunWorker:
    """Loads a run's pruner (and classifier) once, then prunes the examples it is given; used as a
    Ray actor. ``prune`` returns, per example, the ``PruneResult`` or the ``PruneprobeError`` it raised."""

    def __init__(self, config: dict, device: str | None = None):
        self.config = RunConfig.from_dict(config)
        self.pruner = load_pruner(self.config.pruner, device=device, dtype=self.config.dtype)
        self.classifier = load_classifier(self.config)

    def prune(self, examples: list, batch_examples: int = 1) -> list[PruneResult | PruneprobeError]:
        return prune_examples(self.config, self.pruner, examples, self.classifier, batch_examples)


__all__ = ["checkpoint_path", "prune_example", "prune_examples", "check_batching", "load_classifier", "RunWorker"]
