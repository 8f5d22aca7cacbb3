"""The speed benchmark's results file: rows survive a kill and are reused only under the same settings."""

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

from conftest import make_model_dir

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "greedy_speed.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("greedy_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_results_file_reuses_rows_only_under_the_same_settings(bench, tmp_path):
    path = tmp_path / "r.jsonl"
    a = bench.ResultsFile(path, {"dtype": "float32", "threads": 2})
    a.add("gsm_symbolic:x", {"fast_t": 1.5, "same": True})
    assert bench.ResultsFile(path, {"dtype": "float32", "threads": 2}).get("gsm_symbolic:x") == {"fast_t": 1.5, "same": True}
    other = bench.ResultsFile(path, {"dtype": "bfloat16", "threads": 2})
    assert other.get("gsm_symbolic:x") is None
    other.add("gsm_symbolic:x", {"fast_t": 0.7})
    # both records kept; re-adding under the same settings replaces, --fresh forgets only its own
    assert len(path.read_text().splitlines()) == 2
    a = bench.ResultsFile(path, {"dtype": "float32", "threads": 2})
    a.add("gsm_symbolic:x", {"fast_t": 1.2})
    assert [json.loads(l)["row"]["fast_t"] for l in path.read_text().splitlines()] == [0.7, 1.2]
    assert bench.ResultsFile(path, {"dtype": "float32", "threads": 2}, fresh=True).get("gsm_symbolic:x") is None
    assert bench.ResultsFile(path, {"dtype": "bfloat16", "threads": 2}, fresh=True).records[0]["row"] == {"fast_t": 1.2}
    assert not list(tmp_path.glob(".r.jsonl.*"))  # no temp file left behind


def test_results_file_names_a_broken_line(bench, tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"key": "a", "row": {}}\n{"key": "b", "row"\n')
    with pytest.raises(SystemExit, match="line 2 is not JSON"):
        bench.ResultsFile(path, {})
    path.write_text('[1, 2]\n')
    with pytest.raises(SystemExit, match="line 1 is not a benchmark record"):
        bench.ResultsFile(path, {})


def test_a_killed_run_resumes_with_the_rows_it_finished(bench, tmp_path, monkeypatch, capsys, one_thread):
    model = make_model_dir(tmp_path / "tiny")
    results = tmp_path / "bench.jsonl"
    argv = ["--pruner", str(model), "--n-symbolic", "2", "--n-gsm8k", "0", "--min-tokens", "0", "--max-tokens", "60",
            "--max-steps", "3", "--long-chain", "0", "--results", str(results)]
    measure, calls = bench.measure, []

    def dies_on_the_second(*args, **kw):
        calls.append(args[1].id)
        if len(calls) == 2:
            raise KeyboardInterrupt  # what a kill mid-example leaves: the first row only
        return measure(*args, **kw)

    monkeypatch.setattr(bench, "measure", dies_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        bench.main(argv)
    (first,) = [json.loads(l) for l in results.read_text().splitlines()]
    assert first["key"] == f"gsm_symbolic:{calls[0]}" and first["row"]["same"] is True
    assert first["settings"]["max_steps"] == 3 and first["plain"] > 0

    monkeypatch.setattr(bench, "measure", lambda *a, **kw: calls.append(a[1].id) or measure(*a, **kw))
    capsys.readouterr()
    bench.main(argv)
    out = capsys.readouterr().out
    assert calls[2:] == [calls[1]]  # only the unfinished example is measured again
    assert f"gsm_symbolic:{calls[0]} (resumed)" in out and "1 row(s) resumed" in out
    assert out.strip().splitlines()[-1].startswith("speedup=") and "agreement=1.00" in out
    assert len(results.read_text().splitlines()) == 2

    calls.clear()
    bench.main(argv + ["--max-steps", "2"])  # other settings: nothing reused
    assert len(calls) == 2 and len(results.read_text().splitlines()) == 4


def test_report_tables_the_rows_without_a_model(bench, tmp_path, capsys):
    path = tmp_path / "r.jsonl"
    args = argparse.Namespace(**{**{k: None for k in bench.FINGERPRINT}, "approx": "shortlist", "skip_naive": False},
                              results=str(path))
    settings = {**{k: getattr(args, k) for k in bench.FINGERPRINT}, "threads": bench.torch.get_num_threads(),
                "torch": bench.torch.__version__}
    row = {"id": "gsm8k:test-1", "R": 50, "naive_t": 400.0, "fast_t": 80.0, "speedup": 5.0, "naive_tok": 9, "fast_tok": 1234,
           "eff": 0.8, "peak": 1.5, "same": True, "tie": False, "tau": 1.0, "short_t": 25.0, "short_x": 16.0,
           "iou0.9": 1.0, "iou0.8": 1.0, "iou0.7": 0.95, "gap0.7": 0.0, "short_tau": 0.9}
    bench.ResultsFile(path, {**settings, "code": "abc"}).add("gsm8k:test-1", row, plain=500.0, card="CPU: X", date="2026-11-27 08:00")
    bench.ResultsFile(path, {**settings, "dtype": "other", "code": "abc"}).add("gsm8k:test-1", {**row, "R": 7}, date="d")
    bench.report(args)
    out = capsys.readouterr().out
    assert "| gsm8k:test-1 | 50 | 400.0 | 80.0 | 5.00 | yes | 1,234 | 0.80 | 1.50 | 25.0 | 16.0 | 1.00 / 1.00 / 0.95 |" in out
    assert "| 7 |" not in out and out.strip().splitlines()[-1] == "speedup=5.00 agreement=1.00 efficiency=0.80"
    with pytest.raises(SystemExit, match="holds no rows for these settings"):
        bench.report(argparse.Namespace(**{**vars(args), "max_steps": 3}))
