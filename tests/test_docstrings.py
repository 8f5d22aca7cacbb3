"""Every example in a pruneprobe docstring runs: one test per module under ``pruneprobe/``.

The modules are found from the files, so a new module is covered without listing it. Examples
that need a model, a network or a run directory carry ``# doctest: +SKIP`` in the docstring
itself; nothing here skips a whole module except one whose import needs an optional extra that
is not installed (skipped with ``pytest.importorskip``, which names it).
"""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pruneprobe"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# third-party packages of the optional extras (pyproject.toml), imported by some modules at the top
OPTIONAL = ("nnsight", "peft", "ray", "matplotlib", "seaborn", "ipywidgets", "sentencepiece", "datasets")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        missing = (err.name or "").split(".")[0]
        if missing in OPTIONAL:
            pytest.importorskip(missing, reason=f"{name} needs the optional {missing!r} (a pruneprobe extra)")
        raise


def test_every_module_is_listed():
    assert "pruneprobe.core.greedy" in MODULES and "pruneprobe.data.examples" in MODULES
    assert len(MODULES) > 30


@pytest.mark.parametrize("name", sorted(MODULES))
def test_docstring_examples(name, tmp_path, monkeypatch):
    path = MODULES[name]
    if path.name == "__main__.py":
        # importing it runs the command; it must then hold no examples to run
        assert ">>>" not in path.read_text(), f"{name} runs on import: move its examples elsewhere"
        return
    module = _import(name)
    monkeypatch.chdir(tmp_path)  # an example that writes a relative path writes here
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    tests = [t for t in finder.find(module, name) if t.examples]
    report: list[str] = []
    for test in sorted(tests, key=lambda t: t.name):
        runner.run(test, out=report.append)
    assert runner.failures == 0, f"{runner.failures} of {runner.tries} examples failed in {name}:\n" + "".join(report)


def _documented_modules() -> set[str]:
    """Module paths (relative to ``pruneprobe/``) listed in docs/architecture.md's module tree."""
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    block = text.split("## Where each concept lives", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    folders: list[str] = []
    found = set()
    for line in block.splitlines()[1:]:  # the first line is "pruneprobe/"
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip())) // 2 - 1
        name = line.split()[0]
        del folders[depth:]
        if name.endswith("/"):
            folders.append(name.rstrip("/"))
        else:
            found.add("/".join(folders + [name]))
    return found


def test_architecture_doc_lists_every_module():
    """docs/architecture.md's tree names each module under pruneprobe/ once, and nothing else."""
    actual = {str(p.relative_to(PACKAGE)) for p in MODULES.values()}
    documented = _documented_modules()
    assert not actual - documented, f"modules missing from docs/architecture.md: {sorted(actual - documented)}"
    assert not documented - actual, f"docs/architecture.md lists modules that do not exist: {sorted(documented - actual)}"
