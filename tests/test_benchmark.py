"""The speed benchmark's results file: rows survive a kill and are reused only under the same settings,
on the same machine, and never by a quick benchmark."""

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
    lines = out.splitlines()
    assert next(l for l in lines if l.startswith(f"gsm_symbolic:{calls[0]} |")).endswith(f"| reused ({first['date']})")
    assert next(l for l in lines if l.startswith(f"gsm_symbolic:{calls[1]} |")).endswith("| measured now")
    assert "# 1 row(s) measured now, 1 reused" in out
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


def _tiny_args(tmp_path, results, *extra):
    model = tmp_path / "tiny"
    if not model.exists():
        make_model_dir(model)
    return ["--pruner", str(model), "--n-symbolic", "1", "--n-gsm8k", "0", "--min-tokens", "0", "--max-tokens", "60",
            "--max-steps", "2", "--long-chain", "0", "--results", str(results), *extra]


def _count_measures(bench, monkeypatch) -> list:
    """Count the rows measured; the chains are two short fixed ones (no dataset to load and encode)."""
    from pruneprobe import Example

    chains = [("gsm_symbolic", Example(f"What is {i}+{i}?", f"{i} plus {i} is {2 * i}.", str(2 * i), id=f"s{i}"))
              for i in (2, 3)]
    monkeypatch.setattr(bench, "pick_examples", lambda args, pruner: chains[:args.n_symbolic])
    calls, measure = [], bench.measure
    monkeypatch.setattr(bench, "measure", lambda *a, **kw: calls.append(a[1].id) or measure(*a, **kw))
    return calls


def test_quick_always_measures_and_says_so(bench, tmp_path, monkeypatch, capsys, one_thread):
    results = tmp_path / "bench.jsonl"
    argv = _tiny_args(tmp_path, results, "--quick")
    calls = _count_measures(bench, monkeypatch)
    for attempt in (1, 2):  # the second run finds rows under its own fingerprint, and measures anyway
        capsys.readouterr()
        bench.main(argv)
        out = capsys.readouterr().out
        assert len(calls) == 2 * attempt
        rows = [l for l in out.splitlines() if l.startswith("gsm_symbolic:")]
        assert len(rows) == 2 and all(l.endswith("| measured now") for l in rows)
        assert "# 2 row(s) measured now, 0 reused" in out and "reused (" not in out
    assert len(results.read_text().splitlines()) == 2  # recorded (replaced), for --report


def test_full_runs_reuse_rows_only_from_the_same_machine(bench, tmp_path, monkeypatch, capsys, one_thread):
    results = tmp_path / "bench.jsonl"
    argv = _tiny_args(tmp_path, results)
    calls = _count_measures(bench, monkeypatch)
    monkeypatch.setattr(bench, "machine_name", lambda device: "CPU: Machine A")
    bench.main(argv)
    (record,) = [json.loads(l) for l in results.read_text().splitlines()]
    assert record["settings"]["machine"] == "CPU: Machine A" and len(calls) == 1
    bench.main(argv)
    assert len(calls) == 1  # same machine: reused
    monkeypatch.setattr(bench, "machine_name", lambda device: "GPU: Machine B")
    capsys.readouterr()
    bench.main(argv)
    assert len(calls) == 2 and "# 1 row(s) measured now, 0 reused" in capsys.readouterr().out
    # a row recorded without a machine (older results files) is never reused
    legacy = [json.loads(l) for l in results.read_text().splitlines()]
    for r in legacy:
        r["settings"].pop("machine")
    results.write_text(json.dumps(legacy[0]) + "\n")
    monkeypatch.setattr(bench, "machine_name", lambda device: "CPU: Machine A")
    bench.main(argv)
    assert len(calls) == 3
    # --report shows every machine's rows, the unrecorded machine's too
    capsys.readouterr()
    bench.main(argv + ["--report"])
    out = capsys.readouterr().out
    assert "machine not recorded" in out and "CPU: Machine A" in out and out.count(f"| {legacy[0]['row']['id']} |") == 2


def test_machine_is_the_cpu_model_or_the_gpu_name(bench, monkeypatch):
    import torch

    assert bench.machine_name(torch.device("cpu")) == f"CPU: {bench.cpu_model()}" and bench.cpu_model()
    assert "cores" in bench.cpu_model() or not Path("/proc/cpuinfo").exists()  # two CPUs named alike differ here
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    assert bench.machine_name(torch.device("cuda")) == "GPU: NVIDIA H200"


def test_self_check_benchmark_times_the_resumed_rows_check_on_a_chain():
    """``benchmarks/self_check.py`` captures a real resumed scoring and times its check: exact rows."""
    from conftest import tiny_pruner
    from test_fast_exact import chain, example_with

    from pruneprobe.core.encoding import encode_example

    spec = importlib.util.spec_from_file_location("self_check", SCRIPT.with_name("self_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pruner = tiny_pruner("llama")
    enc = encode_example(pruner, example_with(chain(10)))
    seconds, diff, rows, scoring = module.resumed_check_seconds(pruner, enc, repeats=1)
    assert rows == enc.n_reasoning // 2 - 1 and 0 <= diff < 1e-4 and seconds > 0 and scoring > 0
