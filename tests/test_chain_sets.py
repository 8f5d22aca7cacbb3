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
