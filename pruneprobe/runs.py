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
  renamed ``<name>.json.corrupt`` and recomputed. A directory made with another configuration is
  refused, naming the differing fields (``device`` is not compared; ``dtype`` is compared as the
  dtype it resolves to, so ``--dtype float32`` resumes a CPU run made with the default).
- ``manifest.json``'s ``status`` is ``running`` while the run works, then ``done`` or
  ``incomplete``; ``Run.status`` derives ``running`` from the lock, so a killed run reads as
  ``incomplete``. Under ``max_reasoning_tokens``, the examples the selection passes over (too long,
  or not encodable: empty reasoning, no answer) are recorded in ``errors.jsonl`` with
  ``"skipped": true`` and their reason; they are not planned, so they are not failures.
- Each table records, in its parquet metadata, a fingerprint of the example files it was built
  from (names, sizes, contents; not mtimes); ``load_run`` rebuilds stale or missing tables, so a
  killed run is still loadable. Loading and tables live in ``runtables.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .errors import PruneprobeError
from .result import PruneResult, atomic_write_text
from .runlocks import (_check_shard, _incomplete_on_error, _run_lock, _set_aside_damaged,  # noqa: F401
                       _update_error_records, _update_errors, run_is_locked)  # locks, errors file, damaged files
from .runselect import examples_of_run, select_short_examples  # noqa: F401  (which examples a run plans)
# the reading side (re-exported: ``from pruneprobe.runs import load_run`` keeps working)
from .runtables import (CACHED_RUNS, TABLES, Run, _read_manifest, build_tables, is_skipped,  # noqa: F401
                        load_cached_results, load_run, read_errors)

METHODS = ("greedy", "surprisal", "h2o", "uniform", "random", "tokenskip")
RECORDED = ("model_id", "weights_hash", "tokenizer", "template", "model_dtype", "pruneprobe_version")
NOT_COMPARED = ("device", "max_hours")
_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class RunConfig:
    """What a run computes. The last six fields are filled in by ``run_pruning`` from the model.

    >>> RunConfig(dataset="gsm_symbolic", pruner="smollm2-135m", n=10, keep_ratio=0.7).method
    'greedy'
    """

    dataset: str
    pruner: str
    n: int | None = None
    split: str = "test"
    seed: int = 0
    data_path: str | None = None
    objective: str = "joint"
    method: str = "greedy"
    keep_ratio: float | None = None  # greedy/tokenskip stop there; None: the full order
    scorer: str = "fast"
    strategy: str = "exact"
    dtype: str | None = None
    classifier: str | None = None  # tokenskip only
    device: str | None = None  # not compared on resume
    max_reasoning_tokens: int | None = None  # keep the first n examples whose reasoning fits
    examples_from: str | None = None  # another run directory: prune its examples (first n), same ids
    keep_calculator: bool = False  # keep GSM8K <<48/2=24>> calculator annotations (default: removed)
    max_hours: float | None = 3.0  # greedy: refuse an example estimated longer (None: no limit); not compared
    # recorded at start
    model_id: str = ""
    weights_hash: str = ""
    tokenizer: str = ""
    template: str = ""
    model_dtype: str = ""
    pruneprobe_version: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def normalized(self) -> "RunConfig":
        """Local paths made absolute, ``keep_ratio`` a float; validates cheap fields (no model)."""
        from .models import EMBEDDED_MODELS

        d = self.to_dict()
        for key in ("pruner", "data_path", "classifier"):
            v = d[key]
            if v and not (key == "pruner" and v in EMBEDDED_MODELS) and Path(v).expanduser().exists():
                d[key] = str(Path(v).expanduser().resolve())
        if isinstance(d["keep_ratio"], int) and not isinstance(d["keep_ratio"], bool):
            d["keep_ratio"] = float(d["keep_ratio"])
        cfg = RunConfig(**d)
        validate_config(cfg)
        return cfg


def validate_config(config: RunConfig) -> None:
    """Raise a ``PruneprobeError`` naming the first bad field, before any model is loaded."""
    from .datasets import DATASETS
    from .greedy import STRATEGIES
    from .models import EMBEDDED_MODELS, _resolve_dtype
    from .result import n_keep_for
    from .scoring import resolve_objective

    methods = list_run_methods()
    if config.method not in methods:
        raise PruneprobeError(f"unknown method {config.method!r}; known: {', '.join(methods)}")
    if config.method == "tokenskip" and not config.classifier:
        raise PruneprobeError("method 'tokenskip' needs a token classifier: pass --classifier PATH_OR_ID")
    if config.method != "tokenskip" and config.classifier:
        raise PruneprobeError(f"--classifier is only used by method 'tokenskip', not {config.method!r}")
    if config.dataset not in DATASETS:
        raise PruneprobeError(f"unknown dataset {config.dataset!r}; known: {', '.join(DATASETS)}")
    if config.n is not None and (isinstance(config.n, bool) or not isinstance(config.n, int) or config.n < 1):
        raise PruneprobeError(f"n must be a positive integer or None, got {config.n!r}")
    if config.keep_ratio is not None:
        n_keep_for(config.keep_ratio, 1)  # raises for a ratio outside (0, 1]
    if not isinstance(config.objective, str):
        raise PruneprobeError("a run's objective must be a name ('joint' or 'answer'), not a callable")
    resolve_objective(config.objective)
    if config.scorer not in ("fast", "naive"):
        raise PruneprobeError(f"unknown scorer {config.scorer!r}; use 'fast' or 'naive'")
    from .cost import check_max_hours

    check_max_hours(config.max_hours)
    if config.strategy not in STRATEGIES:
        raise PruneprobeError(f"unknown strategy {config.strategy!r}; use one of {', '.join(STRATEGIES)}")
    if config.dtype is not None:
        _resolve_dtype(config.dtype, None)
    if config.device is not None:
        import torch

        try:
            dev = torch.device(config.device)
        except (RuntimeError, TypeError):
            raise PruneprobeError(f"unknown device {config.device!r}; use cpu, cuda or cuda:N") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise PruneprobeError(f"device {config.device!r} requested but CUDA is not available; use cpu")
    p = config.pruner
    if not (p in EMBEDDED_MODELS or Path(p).expanduser().exists()
            or ("/" in p and not p.startswith((".", "/", "~")))):
        raise PruneprobeError(f"unknown pruner {p!r}: not an embedded name ({', '.join(EMBEDDED_MODELS)}), "
                              "an existing local directory or a hub id (owner/name)")


def list_run_methods() -> list[str]:
    """Methods a run accepts: ``greedy``, the baselines, ``tokenskip``."""
    try:
        from .baselines import list_methods
    except ImportError:
        return list(METHODS)
    extra = [m for m in list_methods() if m not in METHODS]
    return list(METHODS) + extra


def safe_id(example_id: str) -> str:
    """A file-name-safe, stable stem for an example id.

    >>> safe_id("gsm8k-test-3"), safe_id("a/b c")[:6]
    ('gsm8k-test-3', 'a_b_c-')
    """
    s = str(example_id)
    if _SAFE.fullmatch(s):
        return s
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._-")[:60] or "example"
    return f"{cleaned}-{hashlib.sha1(s.encode()).hexdigest()[:10]}"


# -- the run --------------------------------------------------------------------------------------
def run_pruning(config: RunConfig, out_dir, progress: bool = True, *, pruner=None,
                shard: tuple[int, int] | None = None) -> "Run":
    """Prune every example of ``config.dataset`` into ``out_dir``; resume when it exists.

    ``pruner``: an already loaded ``Pruner`` to use instead of loading ``config.pruner``.
    ``shard=(i, n)``: prune only the planned examples whose position is ``i`` mod ``n``; ``n``
    processes (e.g. several on one GPU, whose per-step overhead leaves it idle) then share one run
    directory. Returns the ``Run`` (complete once every shard has finished).

    >>> run = run_pruning(RunConfig("gsm_symbolic", "smollm2-135m", n=5), "runs/x")  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from .data import load_examples

    config = config.normalized()
    shard = _check_shard(shard)
    out = Path(out_dir)
    _check_out_dir(out)
    settings = [f.name for f in fields(RunConfig) if f.name not in RECORDED]
    if (out / "manifest.json").exists():
        _refuse_mismatch(out, _read_manifest(out)["config"], config, settings)
    selecting = config.max_reasoning_tokens is not None or config.examples_from is not None
    examples = load_examples(config.dataset, n=None if selecting else config.n, split=config.split,
                             path=config.data_path, seed=config.seed, keep_calculator=config.keep_calculator)
    if config.examples_from is not None:
        examples = examples_of_run(config.examples_from, examples, config.n)
    out.mkdir(parents=True, exist_ok=True)
    with _run_lock(out, shard), _incomplete_on_error(out) as written:
        old = _read_manifest(out) if (out / "manifest.json").exists() else None
        if old is not None:  # again, under the lock
            _refuse_mismatch(out, old["config"], config, settings)
        if pruner is None:
            from .models import load_pruner

            pruner = load_pruner(config.pruner, device=config.device, dtype=config.dtype)
        classifier = None
        if config.method == "tokenskip":
            from .tokenskip import load_token_classifier

            classifier = load_token_classifier(config.classifier)
        _record_model(config, pruner)
        if config.max_reasoning_tokens is not None:
            rejected: list = []
            examples = select_short_examples(pruner, examples, config.max_reasoning_tokens, config.n, rejected=rejected)
            _update_error_records(out, {ex.id: {"example_id": ex.id, "skipped": True, "error": reason,
                                                "type": "skipped", "time": _now()} for ex, reason in rejected})
        files = _example_files(examples)
        if old is not None:
            _refuse_mismatch(out, old["config"], config, list(RECORDED))
        manifest = {
            "config": config.to_dict(), "format": "pruneprobe-run/1",
            "created": (old or {}).get("created", _now()), "updated": _now(), "status": "running",
            "provenance": {"model_source": pruner.source, "python": sys.version.split()[0],
                           "tokenizer_path": getattr(pruner.tokenizer, "name_or_path", ""),
                           "device": str(getattr(pruner, "device", ""))},
            "examples": [{"id": ex.id, "file": f"examples/{name}.json"} for ex, name in zip(examples, files)],
        }
        atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1))
        written["manifest"] = manifest  # stored as "incomplete" if what follows fails
        (out / "examples").mkdir(exist_ok=True)
        if shard is None:  # a shard leaves them: a sibling shard may be writing one right now
            _remove_temp_files(out)
        mine = [(ex, name) for pos, (ex, name) in enumerate(zip(examples, files))
                if shard is None or pos % shard[1] == shard[0]]
        moved = _set_aside_damaged(out / "examples", [name for _, name in mine])
        if moved:
            warnings.warn(f"run {out}: {len(moved)} damaged example file(s) set aside and recomputed: "
                          + "; ".join(f"{name} ({reason})" for name, reason in moved), stacklevel=2)
        todo = [(ex, name) for ex, name in mine if not (out / "examples" / f"{name}.json").exists()]
        bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="examples", unit="ex",
                   disable=not progress)
        costs = _greedy_costs(config, pruner, [ex for ex, _ in todo]) if progress else None
        if costs is not None:
            bar.write(costs.summary())
        n_failed = 0
        for ex, name in todo:
            bar.set_postfix_str(f"{ex.id}{' ' + costs.postfix(ex.id) if costs else ''} ({n_failed} errors)")
            try:
                result = _prune_one(config, pruner, ex, classifier, progress)
            except PruneprobeError as exc:
                n_failed += 1
                _update_errors(out, ex.id, {"example_id": ex.id, "file": f"examples/{name}.json", "error": str(exc),
                                            "type": type(exc).__name__, "time": _now()})
                if progress:
                    bar.write(f"example {ex.id} failed: {exc}")
            else:
                result.save(out / "examples" / f"{name}.json")
                _update_errors(out, ex.id, None)
            bar.update(1)
        bar.close()
        build_tables(out)
        n_done = sum((out / "examples" / f"{name}.json").exists() for name in files)
        manifest.update(updated=_now(), status="done" if n_done == len(files) else "incomplete",
                        n_done=n_done, n_errors=sum(not is_skipped(e) for e in read_errors(out)))
        atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1))
    return load_run(out)


def _greedy_costs(config: RunConfig, pruner, examples):
    """Cost estimates of a greedy run's remaining examples (``cost.RunCosts``), else ``None``."""
    if config.method != "greedy" or not examples:
        return None
    from .cost import RunCosts

    return RunCosts.plan(pruner, examples, config.keep_ratio, config.strategy, config.scorer, config.max_hours)


def _prune_one(config: RunConfig, pruner, example, classifier, progress: bool) -> PruneResult:
    if config.method == "greedy":
        from .greedy import greedy_prune

        return greedy_prune(pruner, example, config.objective, config.keep_ratio, scorer=config.scorer,
                            strategy=config.strategy, progress=progress, max_hours=config.max_hours)
    if config.method == "tokenskip":
        from .tokenskip import tokenskip_prune

        return tokenskip_prune(pruner, example, classifier, keep_ratio=config.keep_ratio, objective=config.objective)
    from .baselines import prune_baseline

    # one-shot baselines always give the full order (cheap); keep_ratio does not apply to them
    return prune_baseline(pruner, example, config.method, objective=config.objective, seed=config.seed)


def _record_model(config: RunConfig, pruner) -> None:
    """Fill the recorded fields: tokenizer and chat template are compared by content hashes."""
    from . import __version__

    vocab = json.dumps(sorted(pruner.tokenizer.get_vocab().items())).encode()
    tokenizer = f"{type(pruner.tokenizer).__name__}/{len(pruner.tokenizer)}/{hashlib.sha256(vocab).hexdigest()[:12]}"
    template = pruner.template
    if template == "chat":
        template += ":" + hashlib.sha256(str(pruner.tokenizer.chat_template).encode()).hexdigest()[:12]
    config.model_id, config.weights_hash, config.tokenizer, config.template = (
        pruner.name, pruner.weights_hash, tokenizer, template)
    config.model_dtype, config.pruneprobe_version = str(pruner.dtype).replace("torch.", ""), __version__


def _refuse_mismatch(out: Path, old: dict, new: RunConfig, names: list[str]) -> None:
    defaults = RunConfig(dataset="", pruner="").to_dict()
    old = {**defaults, **old}
    if "dtype" in names:  # the dtype each resolves to: the default is float32 on a CPU, bfloat16 on CUDA
        old["dtype"] = _dtype_name(old["dtype"], old["device"], old["model_dtype"])
        new = RunConfig.from_dict({**new.to_dict(), "dtype": _dtype_name(new.dtype, new.device)})
    diffs = [f"{k}: {old[k]!r} in the run, {getattr(new, k)!r} now"
             for k in names if k not in NOT_COMPARED and old[k] != getattr(new, k)]
    if diffs:
        raise PruneprobeError(f"run directory {out} was made with another configuration ({'; '.join(diffs)}); "
                              "use a new output directory, or the run's own settings to resume it")


def _dtype_name(dtype: str | None, device: str | None, recorded: str = "") -> str:
    """The dtype a run's settings load the pruner in (``float32``, ``bfloat16``, ...): an alias is
    canonicalised, the default resolved for the device (what the run recorded, when it did)."""
    import torch

    from .models import _resolve_dtype, default_device

    if dtype is None and recorded:
        return recorded
    return str(_resolve_dtype(dtype, torch.device(device) if device else default_device())).replace("torch.", "")


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


__all__ = ["RunConfig", "Run", "run_pruning", "load_run", "build_tables", "read_errors", "safe_id",
           "validate_config", "list_run_methods", "METHODS"]
