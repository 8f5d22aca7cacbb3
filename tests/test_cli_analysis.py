"""The analysis subcommands: ``pruneprobe features`` (cached labels and attention features) and
``pruneprobe gold`` (annotator agreement on the gold set)."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_model_dir
from test_runs import SHORT, write_jsonl

from pruneprobe.analysis.features import compute_attention_features
from pruneprobe.cli import main
from pruneprobe.data.models import load_pruner
from pruneprobe.runs import load_run

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """A data directory whose runs/smollm2-greedy-joint is a tiny model's run of two short chains."""
    root = tmp_path_factory.mktemp("data")
    model = make_model_dir(root / "model")
    chains = write_jsonl(root / "short.jsonl", SHORT[:2])
    argv = ["run", "--dataset", "jsonl", "--data-path", str(chains), "--pruner", str(model), "--keep", "0.5",
            "--out", str(root / "runs" / "smollm2-greedy-joint"), "--no-progress"]
    assert main(argv) == 0
    return root


def test_features_writes_the_label_tables(data_dir, capsys):
    assert main(["features", "--data", str(data_dir), "--only", "labels"]) == 0
    labels = pd.read_parquet(data_dir / "labels" / "smollm2-greedy-joint-rules.parquet")
    run = load_run(data_dir / "runs" / "smollm2-greedy-joint")
    assert sorted(labels.example_id.unique()) == sorted(run.example_ids)
    assert len(labels) == len(run.tokens) and set(labels.category) <= {"SymbMath", "VerbalMath", "EntName", "CoRef",
                                                                         "MetaDisc", "Grammar"}
    assert "labels smollm2-greedy-joint: 2 examples" in capsys.readouterr().out
    assert not [p for p in (data_dir / "labels").iterdir() if p.name.startswith(".")]  # no temp file left


def test_attention_features_of_a_run(data_dir, tmp_path):
    pruner = load_pruner(str(data_dir / "model"))
    out = tmp_path / "attention.parquet"
    df = compute_attention_features(data_dir / "runs" / "smollm2-greedy-joint", out, pruner, progress=False)
    assert out.exists() and pd.read_parquet(out).shape == df.shape
    assert len(df) == len(load_run(data_dir / "runs" / "smollm2-greedy-joint").tokens)
    assert any(c.startswith("attn_") for c in df.columns)


def test_gold_scores_the_rule_annotator(tmp_path, capsys):
    out = tmp_path / "agreement.csv"
    assert main(["gold", "--max-chains", "2", "--out", str(out)]) == 0
    rows = pd.read_csv(out)
    kappa = rows[(rows.metric == "cohen_kappa") & (rows.category == "all")]
    assert list(kappa.annotator) == ["rules"] and 0.5 < kappa.value.iloc[0] <= 1
    assert "cohen_kappa" in capsys.readouterr().out
    assert main(["gold", "--max-chains", "1", "--out", str(out)]) == 0  # appends, one header
    assert len(pd.read_csv(out)) > len(rows)
