"""Execute the notebooks (py:percent sources) top to bottom and keep the paired .ipynb output-free.

    python notebooks/execute.py                 # every notebooks/NN_*.py
    python notebooks/execute.py 01 03           # the ones whose name starts with these prefixes
    python notebooks/execute.py --clean         # strip what saving in JupyterLab left in the .ipynb files

Each notebook runs in a fresh ``python3`` kernel with ``notebooks/`` as the working directory, so
it reads ``../data`` and writes ``../figures``. The .ipynb written next to it has no outputs (the
figures are the committed artefacts). Exit status 1 when any notebook fails.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def notebook_sources(prefixes=()) -> list[Path]:
    files = sorted(p for p in HERE.glob("[0-9][0-9]_*.py"))
    return [p for p in files if not prefixes or p.name.startswith(tuple(prefixes))]


def execute(path, timeout: int = 300, write_ipynb: bool = True):
    """Run one py:percent notebook; returns the executed notebook (outputs included)."""
    import jupytext
    from nbclient import NotebookClient

    path = Path(path)
    nb = jupytext.read(path)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    if write_ipynb:  # `jupytext --sync`: keeps the existing .ipynb's cell ids, so no churn in diffs
        from jupytext.cli import jupytext as jupytext_cli

        jupytext_cli(["--sync", "--quiet", str(path)])
    return nb


KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def clean(paths=None) -> list[Path]:
    """Remove outputs, execution counts, cell metadata and any notebook metadata but the jupytext pairing
    from the paired .ipynb files, and reset the kernelspec; returns the files changed."""
    import nbformat

    changed = []
    for path in paths or sorted(HERE.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        for cell in nb.cells:
            cell.metadata = {}
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nb.metadata = {"jupytext": nb.metadata.get("jupytext", {"formats": "ipynb,py:percent"}),
                       "kernelspec": dict(KERNELSPEC)}
        if nbformat.writes(nb) != before:
            nbformat.write(nb, path)
            changed.append(path)
    return changed


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--clean" in argv:
        for p in clean():
            print("cleaned", p.name)
        return 0
    failed = []
    for p in notebook_sources(argv):
        t0 = time.time()
        try:
            execute(p)
        except Exception as exc:  # report and go on with the next notebook
            failed.append(p.name)
            print(f"FAILED {p.name}: {type(exc).__name__}: {str(exc)[-2000:]}", file=sys.stderr)
        else:
            print(f"ok     {p.name} ({time.time() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
