"""Locks and the errors file of a run directory (used by ``pruneprobe.runs``).

A whole run holds an exclusive ``flock`` on ``<run>/.lock``; a shard (``run_pruning(...,
shard=(i, n))``) holds it shared plus an exclusive ``.lock.shard-i-of-n``, so shards run side by
side but never beside an unsharded run. ``errors.jsonl`` is rewritten whole, atomically, under a
short lock, so shards merge their error records.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from .errors import PruneprobeError
from .result import atomic_write_text
from .runtables import read_errors


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


def _update_errors(out: Path, example_id: str, entry: dict | None) -> None:
    """Set (or, with ``None``, clear) one example's error; re-read under a lock so shards merge."""
    import fcntl

    fd = os.open(out / ".lock.errors", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held only for the read-modify-write
        errors = {e["example_id"]: e for e in read_errors(out)}
        if entry is None and example_id not in errors:
            return
        errors.pop(example_id, None) if entry is None else errors.__setitem__(example_id, entry)
        atomic_write_text(out / "errors.jsonl", "".join(json.dumps(e) + "\n" for e in errors.values()))
    finally:
        os.close(fd)
