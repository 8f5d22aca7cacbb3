"""Every notebook executes top to bottom on the cached data and writes its figures (slow tier)."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "notebooks"
FIG = ROOT / "figures"

# notebook -> figures (stems under figures/) it must (re)write
EXPECTED = {
    "01_greedy_pruning_walkthrough": ["01_traces.png", "01_traces.pdf", "01_traces_all.png", "01_walkthrough.html",
                                      "01_pruned_chain.png", "01_pruned_chain.pdf"],
    "02_functional_categories": ["02_composition.png", "02_composition.pdf", "02_retention_rho50.png",
                                 "02_retention_by_stage.pdf"],
    "03_rank_dynamics": ["03_hit_rate_top1.png", "03_hit_rate_top5.pdf", "03_rank_correlation.png"],
    "04_attention_predicts_rank": ["04_regression_delta_loglik.png", "04_layer_contribution.pdf"],
    "05_objectives_and_pruners": ["05_objective_kept_iou.png", "05_baselines_kendall_tau.pdf",
                                  "05_joint_logprob.png"],
    "06_distillation": ["06_sufficiency.png", "06_sufficiency.pdf", "06_distillation.png", "06_distillation.pdf"],
    "07_chain_sets": ["07_chain_sets.png", "07_chain_sets.pdf"],
}

NEEDS_RUNS = [pytest.mark.slow,
              pytest.mark.skipif(not (ROOT / "data/runs/smollm2-greedy-joint").is_dir(), reason="no cached runs")]


def _executor():
    spec = importlib.util.spec_from_file_location("nb_execute", NB / "execute.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_notebook_is_listed():
    assert {p.stem for p in NB.glob("[0-9][0-9]_*.py")} == set(EXPECTED)


KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_paired_ipynb_is_clean(stem):
    """What JupyterLab saving leaves behind (outputs, execution counts, another kernel, widget state) is caught
    here; ``python notebooks/execute.py --clean`` removes it."""
    import nbformat

    nb = nbformat.read(NB / f"{stem}.ipynb", as_version=4)
    fix = "run `.venv/bin/python notebooks/execute.py --clean`"
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") for c in code), f"{stem}.ipynb has outputs: {fix}"
    assert all(c.get("execution_count") is None for c in code), f"{stem}.ipynb has execution counts: {fix}"
    assert dict(nb.metadata.get("kernelspec", {})) == KERNELSPEC, f"{stem}.ipynb kernelspec changed: {fix}"
    assert set(nb.metadata) <= {"jupytext", "kernelspec"}, f"{stem}.ipynb metadata {set(nb.metadata)}: {fix}"
    assert "kernelspec:\n#     display_name: Python 3" in (NB / f"{stem}.py").read_text()


@pytest.mark.parametrize("stem", sorted(EXPECTED))
@NEEDS_RUNS[0]
@NEEDS_RUNS[1]
def test_notebook_executes_and_writes_figures(stem, record_property, monkeypatch):
    monkeypatch.setenv("PRUNEPROBE_CHAINS", "gold")  # the kernel inherits it: the committed figures
    if stem == "04_attention_predicts_rank" and not list((ROOT / "data/features").glob("*-attention.parquet")):
        pytest.skip("no cached attention features (make features)")
    start = time.time() - 1
    nb = _executor().execute(NB / f"{stem}.py", timeout=300, write_ipynb=False)
    seconds = time.time() - start - 1
    record_property("notebook_seconds", round(seconds, 1))  # printed in the run's summary (tests/conftest.py)
    print(f"{stem}: {seconds:.0f} s")
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    for name in EXPECTED[stem]:
        p = FIG / name
        assert p.exists() and p.stat().st_mtime >= start and p.stat().st_size > 0, name


SET_RUNS = {"self": ROOT / "data/runs/self-smollm2-greedy-joint/examples",
            "gold-len128": ROOT / "data/runs/smollm2-greedy-joint-len128/examples"}


@pytest.mark.slow
@pytest.mark.parametrize("chains", sorted(SET_RUNS))
def test_notebooks_switch_to_other_chain_sets(chains, monkeypatch):
    """``PRUNEPROBE_CHAINS=self`` (the pruner's own chains) or ``gold-len128`` (full-length gold chains): the
    notebooks read that set (whatever the committed snapshot holds) and write their figures under
    ``figures/<set>``; 04 needs two examples or more, 06 is not about chains."""
    if not any(SET_RUNS[chains].glob("*.json")):
        pytest.skip(f"no {chains} chains pruned yet (data/README.md)")
    monkeypatch.setenv("PRUNEPROBE_CHAINS", chains)
    start = time.time() - 1
    for stem in ("01_greedy_pruning_walkthrough", "02_functional_categories", "03_rank_dynamics",
                 "05_objectives_and_pruners"):
        nb = _executor().execute(NB / f"{stem}.py", timeout=300, write_ipynb=False)
        assert not [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"], stem
    written = {p.name for p in (FIG / chains).iterdir() if p.stat().st_mtime >= start}
    assert {"01_traces.png", "02_composition.png", "03_hit_rate_top1.png", "05_joint_logprob.png"} <= written
    assert (FIG / "01_traces.png").stat().st_mtime < start  # the gold figures were left alone
