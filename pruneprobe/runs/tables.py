"""Loading runs and their tables: ``load_run``, ``Run``, ``build_tables``, ``read_errors``.

A run directory is written by :func:`pruneprobe.runs.execute.run_pruning` (see that module for its layout);
this module only reads it, plus (best effort) the parquet tables it rebuilds. Import these names
from ``pruneprobe.runs`` (re-exported there) or from here.

Tables are fresh when the fingerprint in their parquet metadata matches the example files: a
hash of their names, sizes and contents (not mtimes), so a fresh clone or a copy keeps committed
tables fresh, and any edit, removal or addition of an example file makes them stale.

A damaged example file (truncated, wrong shape: anything ``PruneResult.load`` refuses) never makes
a run unreadable: ``results()``, the tables and ``example_ids`` skip it with one warning listing
it; resuming the run sets it aside as ``<name>.corrupt`` and recomputes that example.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

import pandas as pd

from pruneprobe.core.io import atomic_write_parquet
from pruneprobe.core.result import PruneResult
from pruneprobe.errors import PruneprobeError
from pruneprobe.runs.config import RunConfig, safe_id
from pruneprobe.runs.locks import is_skipped, read_errors, run_is_locked  # noqa: F401  (re-exported)

TABLES = ("tokens", "steps", "candidates")
_META_KEY = b"pruneprobe"


def _load_results(files: list[Path]) -> tuple[list[PruneResult], list[tuple[Path, str]]]:
    """The readable results, and (file, reason) for each damaged one."""
    results, damaged = [], []
    for p in files:
        try:
            results.append(PruneResult.load(p))
        except PruneprobeError as exc:
            damaged.append((p, str(exc)))
    return results, damaged


def _warn_damaged(run_dir: Path, names: list[str]) -> None:
    if names:
        warnings.warn(f"run {run_dir}: skipped {len(names)} damaged example file(s): {', '.join(names)}; "
                      "rerun the run to set them aside (as .corrupt) and recompute them", stacklevel=3)


# -- tables ----------------------------------------------------------------------------------------
def _result_files(run_dir: Path, manifest: dict) -> list[Path]:
    """Finished example files: in the manifest's order, then any others by name."""
    present = {p.name: p for p in (run_dir / "examples").glob("*.json") if not p.name.startswith(".")}
    ordered = [Path(e["file"]).name for e in manifest.get("examples", [])]
    names = [n for n in ordered if n in present] + sorted(set(present) - set(ordered))
    return [present[n] for n in names]


def _fingerprint(files: list[Path]) -> str:
    """Hash of the files' names, sizes and contents: mtimes are ignored, so a clone or a copy of a
    run keeps its tables fresh (hashing a few MB of JSON takes milliseconds)."""
    h = hashlib.sha256()
    for p in files:
        data = p.read_bytes()
        h.update(f"{p.name}\0{len(data)}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return h.hexdigest()[:20]


def _empty_tables() -> dict[str, pd.DataFrame]:
    probe = PruneResult("", "", "", [], [], [], {})
    return {kind: probe.to_dataframe(kind).iloc[:0] for kind in TABLES}


def build_tables(run_dir, write: bool = True) -> dict[str, pd.DataFrame]:
    """Tables ``tokens``/``steps``/``candidates`` of every finished, readable example (damaged
    files are skipped with a warning); written atomically as ``<name>.parquet`` when ``write``
    (best effort: a read-only directory is fine)."""
    run_dir = Path(run_dir)
    tables, damaged = _build_tables(run_dir, write)
    _warn_damaged(run_dir, damaged)
    return tables


def _build_tables(run_dir: Path, write: bool) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The tables and the names of the damaged example files left out of them."""
    files = _result_files(run_dir, _read_manifest(run_dir))
    fp = _fingerprint(files)
    results, bad = _load_results(files)
    damaged = [p.name for p, _ in bad]
    parts: dict[str, list[pd.DataFrame]] = {kind: [] for kind in TABLES}
    for result in results:
        for kind in TABLES:
            parts[kind].append(result.to_dataframe(kind))
    empty = _empty_tables()
    tables = {kind: pd.concat(parts[kind], ignore_index=True) if parts[kind] else empty[kind] for kind in TABLES}
    if write:
        meta = {"fingerprint": fp, "n_examples": len(results), "damaged": damaged}
        try:
            for kind, df in tables.items():
                atomic_write_parquet(run_dir / f"{kind}.parquet", df, {_META_KEY: json.dumps(meta).encode()})
        except OSError:
            pass
    return tables, damaged


def _read_fresh_parquet(path: Path, fp: str) -> tuple[pd.DataFrame | None, dict]:
    """The table at ``path`` and its metadata if it was built from the current example files,
    else ``(None, {})``."""
    import pyarrow.parquet as pq

    try:
        meta = json.loads((pq.read_schema(path).metadata or {}).get(_META_KEY, b"{}"))
        if meta.get("fingerprint") != fp:
            return None, {}
        return pq.read_table(path).to_pandas(), meta
    except (OSError, ValueError):
        return None, {}


# -- loading ---------------------------------------------------------------------------------------
def _read_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / "manifest.json"
    if not path.exists():
        raise PruneprobeError(f"{run_dir} is not a pruneprobe run directory (no manifest.json)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PruneprobeError(f"{path}: not valid JSON ({exc.msg})") from None
    if not isinstance(manifest, dict) or "config" not in manifest:
        raise PruneprobeError(f"{path}: not a pruneprobe run manifest (no config)")
    return manifest


@dataclass(repr=False)
class Run:
    """A run directory: its manifest, per-example results and tidy tables (loaded on first use).

    >>> run = load_run("runs/gsm-smol")                     # doctest: +SKIP
    >>> run.steps.query("step == 0").joint_ppl.describe()   # doctest: +SKIP
    """

    path: Path
    manifest: dict

    def __repr__(self) -> str:
        return (f"Run({str(self.path)!r}, method={self.config.method!r}, objective={self.config.objective!r}, "
                f"{len(self.example_ids)}/{self.n_planned} examples done, {len(self.errors)} errors, {self.status})")

    @property
    def status(self) -> str:
        """``running`` while a process holds the run's lock (whatever the manifest says), ``done``
        when every planned example has a readable result, else ``incomplete`` (killed, failed
        examples, a failed resume, damaged files)."""
        if run_is_locked(self.path):
            return "running"
        planned = {Path(e["file"]).name for e in self.manifest.get("examples", [])}
        readable = {p.name for p in self.files} - set(self.damaged)
        return "done" if planned <= readable else "incomplete"

    @property
    def config(self) -> RunConfig:
        return RunConfig.from_dict(self.manifest["config"])

    @property
    def n_planned(self) -> int:
        return len(self.manifest.get("examples", []))

    @property
    def errors(self) -> list[dict]:
        """The examples that failed (each with its ``error``)."""
        return [e for e in read_errors(self.path) if not is_skipped(e)]

    @property
    def skipped(self) -> list[dict]:
        """Examples the selection left out of the plan, each with its ``error`` (the reason)."""
        return [e for e in read_errors(self.path) if is_skipped(e)]

    @property
    def damaged(self) -> list[str]:
        """Names of example files that exist but cannot be read (skipped by tables and results)."""
        self.tables  # noqa: B018  (fills it)
        return self.__dict__["_damaged"]

    @property
    def files(self) -> list[Path]:
        return _result_files(self.path, self.manifest)

    @property
    def example_ids(self) -> list[str]:
        """Ids of the finished examples with a readable result, in dataset order."""
        by_file = {Path(e["file"]).name: e["id"] for e in self.manifest.get("examples", [])}
        damaged = set(self.damaged)
        return [by_file.get(p.name) or PruneResult.load(p).example_id for p in self.files if p.name not in damaged]

    def results(self) -> Iterator[PruneResult]:
        """Every finished example's ``PruneResult``, loaded one at a time; damaged files are
        skipped, with one warning listing them once the iteration ends."""
        damaged = []
        for p in self.files:
            try:
                result = PruneResult.load(p)
            except PruneprobeError:
                damaged.append(p.name)
                continue
            yield result
        _warn_damaged(self.path, damaged)

    def result(self, example_id: str) -> PruneResult:
        """One example's result; a clear error when it failed or is not done yet."""
        entry = next((e for e in self.manifest.get("examples", []) if e["id"] == str(example_id)), None)
        path = self.path / (entry["file"] if entry else f"examples/{safe_id(example_id)}.json")
        if path.exists():
            return PruneResult.load(path)
        failed = next((e for e in self.errors if e["example_id"] == str(example_id)), None)
        if failed:
            raise PruneprobeError(f"example {example_id!r} failed in this run: {failed['error']}")
        if entry:
            raise PruneprobeError(f"example {example_id!r} is not done yet; rerun the run to resume it")
        some = ", ".join(self.example_ids[:3])
        raise PruneprobeError(f"no example {example_id!r} in run {self.path} (e.g. {some or 'none done'})")

    @cached_property
    def tables(self) -> dict[str, pd.DataFrame]:
        """All three tables, from the parquet files when up to date, else rebuilt from the JSONs;
        damaged example files are left out, with a warning."""
        fp = _fingerprint(self.files)
        fresh = {kind: _read_fresh_parquet(self.path / f"{kind}.parquet", fp) for kind in TABLES}
        if all(df is not None for df, _ in fresh.values()):
            tables, damaged = {kind: df for kind, (df, _) in fresh.items()}, fresh["tokens"][1].get("damaged", [])
        else:
            tables, damaged = _build_tables(self.path, write=os.access(self.path, os.W_OK))
        self.__dict__["_damaged"] = damaged
        _warn_damaged(self.path, damaged)
        return tables

    tokens = property(lambda self: self.tables["tokens"], doc="One row per reasoning token of every example.")
    steps = property(lambda self: self.tables["steps"], doc="One row per step (0 = before any deletion).")
    candidates = property(lambda self: self.tables["candidates"], doc="One row per scored (step, candidate).")


def load_run(path) -> Run:
    """Open a run directory (finished, killed or still running).

    >>> load_run("runs/gsm-smol").tokens.columns[:4].tolist()  # doctest: +SKIP
    ['example_id', 'method', 'objective', 'index']
    """
    path = Path(path)
    return Run(path, _read_manifest(path))


__all__ = ["Run", "load_run", "build_tables", "read_errors", "is_skipped", "TABLES"]
