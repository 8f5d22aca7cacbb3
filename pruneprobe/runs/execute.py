"""Runs: prune a dataset with one configuration into a resumable, kill-safe run directory.

Canonical pattern::

    from pruneprobe.runs import RunConfig, load_run, run_pruning
    config = RunConfig(dataset="gsm_symbolic", n=100, pruner="smollm2-135m", objective="joint")
    run_pruning(config, "runs/gsm-smol")     # after a kill, the same call resumes
    run = load_run("runs/gsm-smol")
    run.tokens.groupby("example_id").size()  # reasoning tokens per example
    run.result("gsm_symbolic-0-3").show()

Layout of a run directory::

    manifest.json            config, provenance (model id, weights hash, tokenizer, template,
                             pruneprobe version), planned example ids and progress
    examples/<safe id>.json  one PruneResult per finished example
    errors.jsonl             examples that failed with a PruneprobeError, one JSON object a line
                             (and, marked "skipped", those the selection passed over)
    tokens.parquet, steps.parquet, candidates.parquet   tables of all finished examples
    .lock                    held (flock) by the process running in the directory

Gotchas:
- Every file is written to a hidden temp file, fsynced, then renamed (``errors.jsonl`` too: it
  is rewritten whole at each change, never appended), so a kill at any moment leaves only
  complete files plus perhaps hidden ``.*.tmp`` files, which are ignored and removed at the next
  start.
- Finished examples are skipped on resume; failed ones are retried, and a damaged example file is
  renamed ``<name>.json.corrupt`` and recomputed. Greedy pruning (exact strategy, one example at a
  time, in-process) saves its steps every minute in ``examples/.<name>.steps.json`` (``core.checkpoint``),
  so an example killed mid-chain resumes from its last saved step, not from its start. A directory made with another configuration is
  refused, naming the differing fields (``device`` is not compared; ``dtype`` is compared as the
  dtype it resolves to, so ``--dtype float32`` resumes a CPU run made with the default).
- ``manifest.json``'s ``status`` is ``running`` while the run works, then ``done`` or
  ``incomplete``; ``Run.status`` derives ``running`` from the lock, so a killed run reads as
  ``incomplete``. Under ``max_reasoning_tokens``, the examples the selection passes over (too long,
  or not encodable: empty reasoning, no answer) are recorded in ``errors.jsonl`` with
  ``"skipped": true`` and their reason; they are not planned, so they are not failures.
- Each table records, in its parquet metadata, a fingerprint of the example files it was built
  from (names, sizes, contents; not mtimes); ``load_run`` rebuilds stale or missing tables, so a
  killed run is still loadable. Loading and tables live in ``pruneprobe.runs.tables``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
import warnings
from dataclasses import fields
from pathlib import Path

from tqdm.auto import tqdm

from pruneprobe._version import __version__
from pruneprobe.core.cost import RunCosts
from pruneprobe.core.io import atomic_write_text
from pruneprobe.core.result import PruneResult
from pruneprobe.data.datasets import load_examples
from pruneprobe.data.models import load_pruner
from pruneprobe.errors import PruneprobeError
from pruneprobe.runs.config import RECORDED, RunConfig, refuse_mismatch, safe_id
from pruneprobe.runs.locks import (
    _check_shard,
    _incomplete_on_error,
    _run_lock,
    _set_aside_damaged,
    _update_error_records,
    _update_errors,
    is_skipped,
    read_errors,
)
from pruneprobe.runs.ray_engine import RayOptions, run_on_actors
from pruneprobe.runs.select import examples_of_run, select_short_examples
from pruneprobe.runs.tables import Run, _read_manifest, build_tables, load_run
from pruneprobe.runs.worker import RunWorker, check_batching, load_classifier, prune_examples

ENGINES = ("local", "ray")


# -- the run --------------------------------------------------------------------------------------
def run_pruning(config: RunConfig, out_dir, progress: bool = True, *, pruner=None,
                shard: tuple[int, int] | None = None, engine: str = "local",
                ray_options: RayOptions | None = None, batch_examples: int = 1) -> "Run":
    """Prune every example of ``config.dataset`` into ``out_dir``; resume when it exists.

    ``pruner``: an already loaded ``Pruner`` to use instead of loading ``config.pruner``.
    ``shard=(i, n)``: prune only the planned examples whose position is ``i`` mod ``n``; ``n``
    processes (e.g. several on one GPU, whose per-step overhead leaves it idle) then share one run
    directory. Returns the ``Run`` (complete once every shard has finished).
    ``engine="ray"``: prune on Ray actors (``runs.ray_engine``, ``ray_options``: address, workers,
    GPUs per worker); the results are written here, by this process, exactly as in-process.
    ``batch_examples=N``: greedy (exact) advances N examples in lockstep, their candidates packed into
    shared forwards (``core.batched``; same orders in fp32; pays on a GPU, not on a CPU).

    >>> run = run_pruning(RunConfig("gsm_symbolic", "smollm2-135m", n=5), "runs/x")  # doctest: +SKIP
    """
    config = config.normalized()
    shard = _check_shard(shard)
    if engine not in ENGINES:
        raise PruneprobeError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    check_batching(config, batch_examples)
    out = Path(out_dir)
    _check_out_dir(out)
    settings = [f.name for f in fields(RunConfig) if f.name not in RECORDED]
    if (out / "manifest.json").exists():
        refuse_mismatch(out, _read_manifest(out)["config"], config, settings)
    examples = _candidate_examples(config)
    out.mkdir(parents=True, exist_ok=True)
    with _run_lock(out, shard), _incomplete_on_error(out) as written:
        old = _read_manifest(out) if (out / "manifest.json").exists() else None
        if old is not None:  # again, under the lock
            refuse_mismatch(out, old["config"], config, settings)
        if pruner is None:
            pruner = load_pruner(config.pruner, device=config.device, dtype=config.dtype)
        classifier = load_classifier(config) if engine == "local" else None
        _record_model(config, pruner)
        examples = _plan_examples(out, config, pruner, examples)
        files = _example_files(examples)
        if old is not None:
            refuse_mismatch(out, old["config"], config, list(RECORDED))
        manifest = _write_manifest(out, config, pruner, examples, files, old)
        written["manifest"] = manifest  # stored as "incomplete" if what follows fails
        mine = _prepare_examples_dir(out, examples, files, shard)
        todo = [(ex, name) for ex, name in mine if not (out / "examples" / f"{name}.json").exists()]
        if engine == "ray":
            _prune_on_ray(out, config, todo, len(mine), progress, ray_options or RayOptions(), batch_examples)
        else:
            _prune_remaining(out, config, pruner, classifier, mine, todo, progress, batch_examples)
        _finish(out, manifest, files)
    return load_run(out)


def _candidate_examples(config: RunConfig) -> list:
    """The dataset's examples to plan from: all of them when a selection follows, else the first ``n``."""
    selecting = config.max_reasoning_tokens is not None or config.examples_from is not None
    examples = load_examples(config.dataset, n=None if selecting else config.n, split=config.split,
                             path=config.data_path, seed=config.seed, keep_calculator=config.keep_calculator)
    if config.examples_from is not None:
        examples = examples_of_run(config.examples_from, examples, config.n)
    return examples


def _plan_examples(out: Path, config: RunConfig, pruner, examples: list) -> list:
    """The planned examples: under ``max_reasoning_tokens`` the first ``n`` short enough, the
    others recorded in ``errors.jsonl`` as skipped."""
    if config.max_reasoning_tokens is None:
        return examples
    rejected: list = []
    examples = select_short_examples(pruner, examples, config.max_reasoning_tokens, config.n, rejected=rejected)
    _update_error_records(out, {ex.id: {"example_id": ex.id, "skipped": True, "error": reason,
                                        "type": "skipped", "time": _now()} for ex, reason in rejected})
    return examples


def _write_manifest(out: Path, config: RunConfig, pruner, examples: list, files: list[str], old: dict | None) -> dict:
    """Write (and return) the manifest of a run that starts now, with status ``running``."""
    manifest = {
        "config": config.to_dict(), "format": "pruneprobe-run/1",
        "created": (old or {}).get("created", _now()), "updated": _now(), "status": "running",
        "provenance": {"model_source": pruner.source, "python": sys.version.split()[0],
                       "tokenizer_path": getattr(pruner.tokenizer, "name_or_path", ""),
                       "device": str(getattr(pruner, "device", ""))},
        "examples": [{"id": ex.id, "file": f"examples/{name}.json"} for ex, name in zip(examples, files)],
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1))
    return manifest


def _prepare_examples_dir(out: Path, examples: list, files: list[str], shard: tuple[int, int] | None) -> list:
    """``[(example, file name)]`` of this process (its shard), with damaged example files set aside."""
    (out / "examples").mkdir(exist_ok=True)
    if shard is None:  # a shard leaves them: a sibling shard may be writing one right now
        _remove_temp_files(out)
    mine = [(ex, name) for pos, (ex, name) in enumerate(zip(examples, files))
            if shard is None or pos % shard[1] == shard[0]]
    moved = _set_aside_damaged(out / "examples", [name for _, name in mine])
    if moved:
        warnings.warn(f"run {out}: {len(moved)} damaged example file(s) set aside and recomputed: "
                      + "; ".join(f"{name} ({reason})" for name, reason in moved), stacklevel=3)
    return mine


def _prune_remaining(out: Path, config: RunConfig, pruner, classifier, mine: list, todo: list,
                     progress: bool, batch_examples: int = 1) -> None:
    """Prune the examples of ``todo`` in this process (``batch_examples`` at a time), saving each
    result or recording its error as soon as its group is done."""
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="examples", unit="ex",
               disable=not progress)
    costs = _greedy_costs(config, pruner, [ex for ex, _ in todo]) if progress else None
    if costs is not None:
        bar.write(costs.summary())
    n_failed = 0
    for group in _groups(todo, batch_examples):
        ex = group[0][0]
        bar.set_postfix_str(f"{ex.id}{' ' + costs.postfix(ex.id) if costs else ''} ({n_failed} errors)")
        outcomes = prune_examples(config, pruner, [ex for ex, _ in group], classifier, batch_examples,
                                  progress and batch_examples == 1, checkpoints=out / "examples")
        for (ex, name), outcome in zip(group, outcomes):
            n_failed += isinstance(outcome, PruneprobeError)
            _record_outcome(out, ex, name, outcome, bar if progress else None)
            bar.update(1)
    bar.close()


def _groups(todo: list, batch_examples: int) -> list[list]:
    """``todo`` cut into groups pruned together: one example each, or twice ``batch_examples`` (so the
    lockstep batch refills as chains finish, and a kill loses at most one group's work)."""
    size = 1 if batch_examples == 1 else 2 * batch_examples
    return [todo[i:i + size] for i in range(0, len(todo), size)]


def _prune_on_ray(out: Path, config: RunConfig, todo: list, n_mine: int, progress: bool,
                  options: RayOptions, batch_examples: int = 1) -> None:
    """Prune the examples of ``todo`` on Ray actors, a group per call; this process writes each outcome."""
    bar = tqdm(total=n_mine, initial=n_mine - len(todo), desc="examples (ray)", unit="ex", disable=not progress)

    def on_result(group, outcomes) -> None:
        for (example, name), outcome in zip(group, outcomes):
            _record_outcome(out, example, name, outcome, bar if progress else None)
            bar.update(1)

    device = options.device or ("cuda" if options.gpus_per_worker > 0 else "cpu")
    groups = [[(ex, name) for ex, name in group] for group in _groups(todo, batch_examples)]
    failed = run_on_actors(groups, _GroupWorker, (config.to_dict(), device, batch_examples), "prune", on_result,
                           options)
    for group, reason in failed:
        on_result(group, [PruneprobeError(f"example {ex.id} not pruned: {reason}") for ex, _ in group])
    bar.close()


class _GroupWorker(RunWorker):
    """A ``RunWorker`` taking ``[(example, file name)]`` groups, as the Ray engine hands them out."""

    def __init__(self, config: dict, device: str | None, batch_examples: int):
        super().__init__(config, device)
        self.batch_examples = batch_examples

    def prune(self, group: list) -> list:
        return super().prune([ex for ex, _ in group], self.batch_examples)


def _record_outcome(out: Path, example, name: str, outcome: PruneResult | PruneprobeError, bar=None) -> None:
    """Save a finished example atomically, or record its error in ``errors.jsonl``: every engine's one
    way of writing results."""
    if isinstance(outcome, PruneprobeError):
        _update_errors(out, example.id, {"example_id": example.id, "file": f"examples/{name}.json",
                                         "error": str(outcome), "type": type(outcome).__name__, "time": _now()})
        if bar is not None:
            bar.write(f"example {example.id} failed: {outcome}")
    else:
        outcome.save(out / "examples" / f"{name}.json")
        _update_errors(out, example.id, None)


def _finish(out: Path, manifest: dict, files: list[str]) -> None:
    """Build the tables and store the manifest as ``done`` or ``incomplete``, with its counts."""
    build_tables(out)
    n_done = sum((out / "examples" / f"{name}.json").exists() for name in files)
    manifest.update(updated=_now(), status="done" if n_done == len(files) else "incomplete",
                    n_done=n_done, n_errors=sum(not is_skipped(e) for e in read_errors(out)))
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1))


def _greedy_costs(config: RunConfig, pruner, examples):
    """Cost estimates of a greedy run's remaining examples (``cost.RunCosts``), else ``None``."""
    if config.method != "greedy" or not examples:
        return None
    return RunCosts.plan(pruner, examples, config.keep_ratio, config.strategy, config.scorer, config.max_hours)


def _record_model(config: RunConfig, pruner) -> None:
    """Fill the recorded fields: tokenizer and chat template are compared by content hashes."""
    vocab = json.dumps(sorted(pruner.tokenizer.get_vocab().items())).encode()
    tokenizer = f"{type(pruner.tokenizer).__name__}/{len(pruner.tokenizer)}/{hashlib.sha256(vocab).hexdigest()[:12]}"
    template = pruner.template
    if template == "chat":
        template += ":" + hashlib.sha256(str(pruner.tokenizer.chat_template).encode()).hexdigest()[:12]
    config.model_id, config.weights_hash, config.tokenizer, config.template = (
        pruner.name, pruner.weights_hash, tokenizer, template)
    config.model_dtype, config.pruneprobe_version = str(pruner.dtype).replace("torch.", ""), __version__


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise PruneprobeError(f"output {out} exists and is not a directory")
    if out.is_dir() and not (out / "manifest.json").exists():
        stray = [p.name for p in out.iterdir() if p.name != "examples" and not p.name.startswith(".")]
        if stray:
            raise PruneprobeError(f"output directory {out} is not empty and holds no run (no manifest.json); "
                                  f"found {', '.join(sorted(stray)[:5])}; pick a new directory")


def _example_files(examples) -> list[str]:
    names = [safe_id(ex.id) for ex in examples]
    seen: dict[str, str] = {}
    for ex, name in zip(examples, names):
        if name.casefold() in seen:
            raise PruneprobeError(f"example ids {seen[name.casefold()]!r} and {ex.id!r} collide "
                                  "(duplicate or differ only in case); give the examples unique ids")
        seen[name.casefold()] = ex.id
    return names


def _remove_temp_files(out: Path) -> None:
    for folder in (out, out / "examples"):
        for p in folder.glob(".*.tmp"):
            p.unlink(missing_ok=True)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


__all__ = ["run_pruning"]
