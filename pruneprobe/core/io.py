"""Atomic file writes, the one way pruneprobe writes a file: a hidden temp file in the target's
folder, flushed and fsynced, given the permissions a plain ``open`` would (``0o666`` less the
umask), then renamed over the target; on any failure the temp file is removed and the target is
untouched. A kill at any moment leaves the old file or the new one, never half of one, plus at
most a hidden ``.<name>.*.tmp`` file.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_json(d / "a.json", {"x": 1}).read_text()
'{"x": 1}'
>>> sorted(p.name for p in d.iterdir())
['a.json']
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Callable

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path, write: Callable[[IO], None], binary: bool = False) -> Path:
    """Call ``write(file)`` on a temp file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; also HTML and JSON Lines."""
    return atomic_write(path, lambda f: f.write(text))


def atomic_write_json(path, obj, **dumps_kw) -> Path:
    """Write ``json.dumps(obj, **dumps_kw)`` to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, **dumps_kw))


def atomic_write_parquet(path, df: pd.DataFrame, metadata: dict[bytes, bytes] | None = None) -> Path:
    """Write ``df`` (no index) to ``path`` atomically; ``metadata`` joins the schema's metadata."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
    return atomic_write(path, lambda f: pq.write_table(table, f), binary=True)


__all__ = ["atomic_write", "atomic_write_text", "atomic_write_json", "atomic_write_parquet"]
