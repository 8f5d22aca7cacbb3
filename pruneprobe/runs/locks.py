"""Locks, the errors file and damaged files of a run directory (used by ``pruneprobe.runs.execute``).

A whole run holds an exclusive ``flock`` on ``<run>/.lock``; a shard (``run_pruning(...,
shard=(i, n))``) holds it shared plus an exclusive ``.lock.shard-i-of-n``, so shards run side by
side but never beside an unsharded run. ``run_is_locked`` probes them: a run is "running" only
while some process holds one. ``errors.jsonl`` is rewritten whole, atomically, under a short
lock, so shards merge their error records.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from pruneprobe.core.io import atomic_write_text
from pruneprobe.core.result import PruneResult
from pruneprobe.errors import PruneprobeError


# -- errors file -----------------------------------------------------------------------------------
def read_errors(run_dir) -> list[dict]:
    """Every record of ``errors.jsonl``: failures, and examples the selection skipped (``skipped``)."""
    path = Path(run_dir) / "errors.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def is_skipped(record: dict) -> bool:
    """An errors-file record of an example left out of the plan (too long, or not encodable under
    ``--max-reasoning-tokens``), not a failure."""
    return bool(record.get("skipped"))


def _check_shard(shard) -> tuple[int, int] | None:
    if shard is None:
        return None
    try:
        i, n = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise PruneprobeError(f"shard must be a pair (i, n), got {shard!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise PruneprobeError(f"shard {i}/{n}: need n >= 1 and 0 <= i < n")
    return i, n


@contextmanager
def _flock(path: Path, exclusive: bool = True, what: str = ""):
    """A non-blocking ``flock`` on ``path``; the OS releases it when the process dies."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except OSError:
            raise PruneprobeError(f"run directory {path.parent} is in use by another process{what}") from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


@contextmanager
def _run_lock(out: Path, shard: tuple[int, int] | None = None):
    """Whole run: exclusive ``.lock``. A shard: shared ``.lock`` plus its own exclusive lock file."""
    if shard is None:
        with _flock(out / ".lock"):
            yield
        return
    with _flock(out / ".lock", exclusive=False, what=" without shards"), \
            _flock(out / f".lock.shard-{shard[0]}-of-{shard[1]}", what=f" as shard {shard[0]}/{shard[1]}"):
        yield


def run_is_locked(run_dir) -> bool:
    """Whether a process holds the run's lock (whole run or any shard): a non-blocking shared
    ``flock`` probe of each lock file, which creates nothing (a read-only run reads as not locked)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking, so nothing can be seen running
        return False
    run_dir = Path(run_dir)
    for path in [run_dir / ".lock", *sorted(run_dir.glob(".lock.shard-*"))]:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True  # an exclusive holder
        finally:
            os.close(fd)
    return False


@contextmanager
def _incomplete_on_error(out: Path):
    """Yields a dict; once the block has put the written manifest in it under ``"manifest"``, a
    failure (an exception, Ctrl-C) stores that manifest with status ``incomplete`` before it propagates."""
    written: dict = {}
    try:
        yield written
    except BaseException:
        if "manifest" in written:
            written["manifest"].update(status="incomplete", updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
            atomic_write_text(out / "manifest.json", json.dumps(written["manifest"], indent=1))
        raise


def _update_errors(out: Path, example_id: str, entry: dict | None) -> None:
    """Set (or, with ``None``, clear) one example's error; re-read under a lock so shards merge."""
    _update_error_records(out, {example_id: entry})


def _update_error_records(out: Path, changes: dict[str, dict | None]) -> None:
    """Set (or, with ``None``, clear) several examples' records in one atomic rewrite."""
    import fcntl

    fd = os.open(out / ".lock.errors", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held only for the read-modify-write
        errors = {e["example_id"]: e for e in read_errors(out)}
        new = {**errors, **changes}
        new = {k: v for k, v in new.items() if v is not None}
        if new == errors:
            return
        atomic_write_text(out / "errors.jsonl", "".join(json.dumps(e) + "\n" for e in new.values()))
    finally:
        os.close(fd)


def _set_aside_damaged(examples_dir: Path, names: list[str]) -> list[tuple[str, str]]:
    """Rename each unreadable ``<name>.json`` to ``<name>.json.corrupt`` (``.corrupt.1``, ... when
    taken: never overwritten) so it is recomputed; returns (file, reason) for those set aside."""
    moved = []
    for name in names:
        path = examples_dir / f"{name}.json"
        if not path.exists():
            continue
        try:
            PruneResult.load(path)
            continue
        except PruneprobeError as exc:
            reason = str(exc)
        target, n = path.with_name(path.name + ".corrupt"), 0
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.corrupt.{n}")
        os.rename(path, target)
        moved.append((target.name, reason))
    return moved
