"""The notebooks' chain sets (``viz.notebook``): which runs, figures and tables a set means, and labels
that are never taken from another chain with the same example id."""

import pandas as pd
import pytest

from pruneprobe.analysis.categories import label_result
from pruneprobe.errors import PruneprobeError
from pruneprobe.methods import prune_baseline
from pruneprobe.viz import notebook


def test_chain_set_comes_from_the_environment_and_names_the_choices(monkeypatch):
    monkeypatch.delenv(notebook.CHAINS_ENV, raising=False)
    assert notebook.chain_set().name == "gold"
    monkeypatch.setenv(notebook.CHAINS_ENV, "self")
    chosen = notebook.chain_set()
    assert chosen.runs["greedy joint"] == "self-smollm2-greedy-joint" and chosen.features_file.startswith("self-")
    assert chosen.subdir == "self"  # figures/self/, data/tables/self/
    assert notebook.chain_set("gold").subdir == ""  # the committed figures and tables stay where they are
    monkeypatch.setenv(notebook.CHAINS_ENV, "gold-len64")
    with pytest.raises(PruneprobeError, match="unknown chain set 'gold-len64'.*gold, gold-len128, self"):
        notebook.chain_set()


def test_no_gold_pattern_matches_another_sets_files():
    """Self-generated chains reuse their questions' ids: the gold sets' label globs must not reach their files."""
    from fnmatch import fnmatch

    sets = notebook.CHAIN_SETS
    for run in sets["self"].runs.values():
        for name in ("gold", "gold-len128"):
            assert not fnmatch(f"{run}-rules.parquet", sets[name].labels_glob)
    for run in sets["gold-len128"].runs.values():
        assert fnmatch(f"{run}-rules.parquet", sets["gold-len128"].labels_glob)
        assert not fnmatch(f"{run}-rules.parquet", sets["self"].labels_glob)


def test_cached_labels_of_other_text_under_the_same_id_are_made_again(pruner, example, tmp_path, capsys):
    result = prune_baseline(pruner, example, "uniform", traces=False)
    good = label_result(result)
    good.to_parquet(tmp_path / "a-rules.parquet")
    labels = notebook.load_labels([result], "a-*.parquet", labels_dir=tmp_path)
    assert "0 labelled now" in capsys.readouterr().out
    pd.testing.assert_frame_equal(labels[good.columns].reset_index(drop=True), good.reset_index(drop=True), check_dtype=False)

    other = good.assign(token=["x"] * len(good), category="Grammar")  # another chain's tokens under this id
    other.to_parquet(tmp_path / "b-rules.parquet")
    labels = notebook.load_labels([result], "b-*.parquet", labels_dir=tmp_path)
    assert "1 labelled now" in capsys.readouterr().out
    assert list(labels.sort_values("index")["token"]) == list(result.tokens)


def test_cached_results_leave_out_runs_without_results(tmp_path):
    """A run just started (its manifest, no example yet) is left out rather than shown with n = 0."""
    import shutil

    run = tmp_path / "smollm2-uniform-joint"
    (run / "examples").mkdir(parents=True)
    shutil.copy(notebook.DATA / "runs" / "smollm2-uniform-joint" / "manifest.json", run)
    shutil.copytree(notebook.DATA / "runs" / "smollm2-random-joint", tmp_path / "smollm2-random-joint",
                    ignore=lambda d, names: [n for n in names if n.endswith(".parquet")])
    found = notebook.load_cached_results(["uniform", "random"], runs_dir=tmp_path, require=())
    assert list(found) == ["Random"] and len(found["Random"]) == 120
    with pytest.raises(PruneprobeError, match="no results yet in smollm2-greedy-joint, smollm2-uniform-joint"):
        notebook.load_cached_results(["uniform", "random"], runs_dir=tmp_path, require=("greedy joint", "uniform"))


# -- headline numbers side by side (analysis.headlines, viz.chain_sets) ----------------------------------------
def _result(eid, order, scores=None, method="greedy"):
    import numpy as np

    from pruneprobe.core.result import PruneResult

    r = len(order)
    matrix = None
    if scores is not None:  # one fixed score per token for every step: rankings never change
        matrix = np.tile(np.asarray(scores, dtype=float), (r, 1))
        for step, token in enumerate(order):
            matrix[step + 1:, token] = np.nan
    return PruneResult(eid, method, "joint", list(range(r)), [f"t{i}" for i in range(r)], list(order), {},
                       candidate_scores=matrix)


def test_headline_numbers_measure_what_they_say():
    from pruneprobe.analysis.headlines import HIT_RATE, LENGTH, RETENTION, TAU, headline_numbers

    order = [3, 1, 0, 2, 4, 5]  # a fixed score per token, highest deleted first
    scores = [4, 5, 3, 6, 2, 1]
    greedy = [_result("a", order, scores), _result("b", order, scores)]
    labels = {"a": ["SymbMath", "Grammar", "SymbMath", "Grammar", "SymbMath", "SymbMath"]}
    labels["b"] = labels["a"]
    others = {"same": [_result("a", order, method="x")], "reversed": [_result("b", order[::-1], method="y")],
              "elsewhere": [_result("z", order, method="w")]}
    t = headline_numbers(greedy, labels, others, n_boot=200).set_index(["quantity", "detail"])
    assert t.loc[(LENGTH, "mean"), "value"] == 6 and t.loc[(LENGTH, "mean"), "n_examples"] == 2
    # at rho = 0.5 tokens 3 and 1 (both Grammar) and 0 are gone: SymbMath keeps 3 of 4 while 3 of 6 are kept
    assert t.loc[(RETENTION.format(rho=0.5), "SymbMath"), "value"] == pytest.approx(1.5)
    assert t.loc[(RETENTION.format(rho=0.5), "Grammar"), "value"] == 0
    lag1 = t.loc[HIT_RATE.format(lag=1)]
    assert lag1.loc["dynamic", "value"] == 1 and lag1.loc["frozen", "value"] == 1  # fixed scores: both always right
    assert 0 < lag1.loc["chance", "value"] < 1
    assert t.loc[(TAU, "same"), "value"] == pytest.approx(1) and t.loc[(TAU, "same"), "n_examples"] == 1
    assert t.loc[(TAU, "reversed"), "value"] == pytest.approx(-1)
    assert (TAU, "elsewhere") not in t.index  # no shared example: no row rather than a number of nothing


def test_headline_numbers_without_exact_scores_or_results():
    from pruneprobe.analysis.headlines import headline_numbers

    t = headline_numbers([_result("a", [1, 0])], {"a": ["SymbMath", "Grammar"]}, n_boot=0)
    assert not t.quantity.str.startswith("top-1").any()  # no candidate-score matrix: no hit rates
    assert t.ci_lo.isna().all()  # one example: no interval
    with pytest.raises(PruneprobeError, match="at least one greedy result"):
        headline_numbers([], {})


def test_chain_set_table_leaves_out_sets_without_results(tmp_path, capsys):
    import shutil

    from pruneprobe.viz.chain_sets import chain_set_table, headline_cells

    runs = tmp_path / "runs"
    shutil.copytree(notebook.DATA / "runs" / "self-smollm2-greedy-joint", runs / "self-smollm2-greedy-joint")
    out = tmp_path / "chain_sets.csv"
    tables = tmp_path / "tables"
    table = chain_set_table(["gold-len128", "self"], runs_dir=runs, labels_dir=tmp_path, path=out, n_boot=100,
                            tables_dir=tables)
    assert "gold-len128: left out" in capsys.readouterr().out
    assert set(table.chain_set) == {"self"} and pd.read_csv(out).shape == table.shape
    assert not table.quantity.str.contains("Pearson").any()  # notebook 04 has cached no attention study for it
    (tables / "self").mkdir(parents=True)
    pd.DataFrame({"target": ["normalized_rank"] * 2, "feature_set": ["attention"] * 2, "model": ["mlp"] * 2,
                  "fold": ["0", "mean"], "pearson": [0.1, 0.3], "pearson_lo": [None, 0.2], "pearson_hi": [None, 0.4],
                  "n_examples": [2, 2]}).to_csv(tables / "self" / "attention_study.csv", index=False)
    with_study = chain_set_table(["self"], runs_dir=runs, labels_dir=tmp_path, path=False, n_boot=0, tables_dir=tables)
    attention = with_study[with_study.quantity.str.contains("Pearson")]
    assert attention[["detail", "value", "ci_lo", "n_examples"]].values.tolist() == [["attention", 0.3, 0.2, 2]]
    results = notebook.load_cached_results(runs_dir=runs, chains=notebook.chain_set("self"))
    greedy = results[notebook.GREEDY_JOINT]
    mean = table.query("detail == 'mean'").value.item()
    assert mean == pytest.approx(sum(r.n_tokens for r in greedy) / len(greedy))
    assert headline_cells(table).columns.tolist() == ["self"]
    with pytest.raises(PruneprobeError, match="no chain set among"):
        chain_set_table(["gold-len128"], runs_dir=runs, path=False)


def test_cached_data_tracks_no_derived_run_tables_and_stays_under_100_mb():
    """``data/`` is what a clone downloads: the run tables are rebuilt from the example JSONs, so only those count."""
    import shutil
    import subprocess

    from pruneprobe.runs.tables import TABLES

    if shutil.which("git") is None or not (notebook.DATA.parent / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "-z", "data"], cwd=notebook.DATA.parent, capture_output=True,
                             check=True).stdout.decode().split("\0")
    tracked = [p for p in tracked if p]
    derived = [p for p in tracked if p.startswith("data/runs/") and p.rsplit("/", 1)[-1] in
               {f"{kind}.parquet" for kind in TABLES}]
    assert tracked and not derived, f"derived run tables are tracked: {derived[:3]}"
    size = sum((notebook.DATA.parent / p).stat().st_size for p in tracked if (notebook.DATA.parent / p).exists())
    assert size < 100e6, f"data/ tracks {size / 1e6:.1f} MB, over the 100 MB the issue allows"
