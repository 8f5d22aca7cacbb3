"""A run's configuration: what it computes, checked before any model is loaded, and compared on resume.

>>> RunConfig(dataset="gsm_symbolic", pruner="smollm2-135m", n=10).method
'greedy'
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from pruneprobe.core.cost import check_max_hours
from pruneprobe.core.greedy import STRATEGIES
from pruneprobe.core.result import n_keep_for
from pruneprobe.core.scoring import resolve_objective
from pruneprobe.data.datasets import DATASETS
from pruneprobe.data.models import EMBEDDED_MODELS, _resolve_dtype, default_device
from pruneprobe.errors import PruneprobeError
from pruneprobe.methods.registry import METHODS, get_method

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
    method = get_method(config.method)
    if method.needs_classifier and not config.classifier:
        raise PruneprobeError(f"method {method.name!r} needs a token classifier: pass --classifier PATH_OR_ID")
    if not method.needs_classifier and config.classifier:
        users = [m.name for m in METHODS.values() if m.needs_classifier]
        raise PruneprobeError(f"--classifier is only used by method {', '.join(map(repr, users))}, "
                              f"not {config.method!r}")
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
    check_max_hours(config.max_hours)
    if config.strategy not in STRATEGIES:
        raise PruneprobeError(f"unknown strategy {config.strategy!r}; use one of {', '.join(STRATEGIES)}")
    if config.dtype is not None:
        _resolve_dtype(config.dtype, None)
    if config.device is not None:
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


def refuse_mismatch(out: Path, old: dict, new: RunConfig, names: list[str]) -> None:
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
    if dtype is None and recorded:
        return recorded
    return str(_resolve_dtype(dtype, torch.device(device) if device else default_device())).replace("torch.", "")
