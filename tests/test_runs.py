"""Run directories: resume, refusal of other configurations, error records, tables, kill safety.

A tiny random Llama (SmolLM2 tokenizer) is saved to a temp directory and loaded by path, and the
data are a few JSONL examples with very short reasoning, so full greedy runs take well under a second.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import make_model_dir

from pruneprobe.core.result import PruneResult
from pruneprobe.errors import PruneprobeError
from pruneprobe.runs import RunConfig, build_tables, load_run, read_errors, run_pruning
from pruneprobe.runs.config import safe_id
from pruneprobe.runs.locks import _run_lock

SHORT = [
    {"id": "a", "question": "What is 2+3?", "reasoning": "2 plus 3 is 5.", "answer": "5"},
    {"id": "b/2", "question": "What is 4+4?", "reasoning": "4 plus 4 makes 8.", "answer": "8"},
    {"id": "empty", "question": "What is 1+1?", "reasoning": "  ", "answer": "2"},
]
# for the kill test: a quick first example, then slower ones (~0.5 s each on one thread)
KILL = [{"id": "k0", "question": "What is 2+3?", "reasoning": "2 plus 3 is 5.", "answer": "5"}] + [
    {"id": f"k{i}", "question": f"What is {i}+{i}?",
     "reasoning": f"We add {i} and {i}, so we get {2 * i}. Then {2 * i} is the total.", "answer": str(2 * i)}
    for i in range(1, 5)
]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def short_data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "short.jsonl", SHORT)


@pytest.fixture(scope="module")
def done_run(tmp_path_factory, model_dir, short_data) -> Path:
    """One finished run of SHORT (2 done, 1 failed), computed once; tests work on copies."""
    out = tmp_path_factory.mktemp("done") / "run"
    run_pruning(config_for(model_dir, short_data), out, progress=False)
    return out


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)  # the tables stay fresh: their fingerprint hashes contents, not mtimes
    return dst


def config_for(model_dir, data, keep_ratio=0.5, **kw) -> RunConfig:
    """A run of the JSONL ``data``; pruning half of each chain keeps the tests quick."""
    return RunConfig(dataset="jsonl", data_path=str(data), pruner=str(model_dir), keep_ratio=keep_ratio, **kw)


def check_files_readable(run_dir: Path) -> None:
    """Every visible file parses (JSON, JSONL, parquet); hidden files are temp files or the lock."""
    import pyarrow.parquet as pq

    for p in run_dir.rglob("*"):
        if p.is_dir() or p.name.startswith("."):
            continue
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".jsonl":
            [json.loads(line) for line in p.read_text().splitlines()]
        elif p.suffix == ".parquet":
            pq.read_table(p)
        else:
            raise AssertionError(f"unexpected file {p}")


def assert_same_results(run1, run2) -> None:
    r1, r2 = list(run1.results()), list(run2.results())
    assert [r.example_id for r in r1] == [r.example_id for r in r2]
    for a, b in zip(r1, r2):
        assert a.deletion_order == b.deletion_order
        assert a.token_ids == b.token_ids
        np.testing.assert_allclose(a.candidate_scores, b.candidate_scores, rtol=0, atol=1e-6)
    for kind in ("tokens", "steps", "candidates"):
        pd.testing.assert_frame_equal(run1.tables[kind], run2.tables[kind], check_exact=False, atol=1e-6)


def test_run_writes_manifest_results_errors_and_tables(done_run):
    out = done_run
    run = load_run(out)
    manifest = json.loads((out / "manifest.json").read_text())
    cfg = manifest["config"]
    assert cfg["method"] == "greedy" and cfg["objective"] == "joint" and cfg["keep_ratio"] == 0.5
    assert len(cfg["weights_hash"]) == 16 and cfg["tokenizer"].count("/") == 2
    assert cfg["template"].startswith("chat:") and cfg["pruneprobe_version"] and cfg["model_dtype"] == "float32"
    assert [e["id"] for e in manifest["examples"]] == ["a", "b/2", "empty"]
    assert manifest["status"] == "incomplete" and manifest["n_done"] == 2 and manifest["n_errors"] == 1
    assert sorted(p.name for p in (out / "examples").iterdir()) == ["a.json", f"{safe_id('b/2')}.json"]
    # the failing example is recorded and the run went on
    errors = read_errors(out)
    assert [e["example_id"] for e in errors] == ["empty"] and "empty reasoning" in errors[0]["error"]
    assert run.example_ids == ["a", "b/2"] and run.n_planned == 3
    assert run.result("b/2").example_id == "b/2"
    with pytest.raises(PruneprobeError, match="failed"):
        run.result("empty")
    with pytest.raises(PruneprobeError, match="no example 'zzz'"):
        run.result("zzz")
    # tables: expected columns, one row per token / step / scored candidate
    assert {"example_id", "method", "objective", "index", "token_id", "token", "pruning_rank",
            "normalized_rank"} <= set(run.tokens.columns)
    assert {"example_id", "step", "deleted_index", "deleted_token", "n_kept", "joint_logprob", "joint_ppl",
            "answer_logprob", "answer_ppl", "reasoning_ppl"} <= set(run.steps.columns)
    assert {"example_id", "step", "index", "score"} <= set(run.candidates.columns)
    results = list(run.results())
    assert len(run.tokens) == sum(r.n_tokens for r in results)
    assert len(run.steps) == sum(r.n_steps + 1 for r in results)
    assert len(run.candidates) == sum(int(np.isfinite(r.candidate_scores).sum()) for r in results)
    for kind in ("tokens", "steps", "candidates"):
        assert (out / f"{kind}.parquet").exists()
    check_files_readable(out)


def _patch_greedy(monkeypatch, prune):
    """Make runs call ``prune`` for method "greedy" (runs find it in the method registry)."""
    from pruneprobe.methods import registry

    monkeypatch.setitem(registry.METHODS, "greedy", dataclasses.replace(registry.METHODS["greedy"], prune=prune))


def test_resume_skips_done_examples_and_retries_failures(model_dir, short_data, done_run, tmp_path, monkeypatch):
    import pruneprobe.core.greedy as greedy

    out = copy_run(done_run, tmp_path / "run")
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "examples").iterdir()}
    calls = []
    real = greedy.greedy_prune
    _patch_greedy(monkeypatch, lambda p, ex, *a, **k: calls.append(ex.id) or real(p, ex, *a, **k))
    run = run_pruning(config_for(model_dir, short_data), out, progress=False)
    assert calls == ["empty"]  # only the failed example is tried again
    assert {p.name: p.stat().st_mtime_ns for p in (out / "examples").iterdir()} == mtimes
    assert len(read_errors(out)) == 1 and run.example_ids == ["a", "b/2"]


def test_other_configuration_is_refused_naming_the_field(model_dir, short_data, done_run, tmp_path, monkeypatch):
    import pruneprobe.runs.execute as models  # where runs load the pruner

    out = copy_run(done_run, tmp_path / "run")

    def no_model(*a, **k):
        raise AssertionError("config mismatch must be found before loading the model")

    with monkeypatch.context() as m:
        m.setattr(models, "load_pruner", no_model)
        with pytest.raises(PruneprobeError, match=r"keep_ratio: 0\.5 in the run, 0\.7 now"):
            run_pruning(config_for(model_dir, short_data, keep_ratio=0.7), out, progress=False)
        with pytest.raises(PruneprobeError, match="method: 'greedy' in the run, 'uniform' now"):
            run_pruning(config_for(model_dir, short_data, method="uniform"), out, progress=False)
        with pytest.raises(PruneprobeError, match="n: None in the run, 2 now"):
            run_pruning(config_for(model_dir, short_data, n=2), out, progress=False)
    # same path, other weights: found from the recorded weights hash
    make_model_dir(model_dir.parent / "copy", seed=0)
    out2 = tmp_path / "run2"
    run_pruning(config_for(model_dir.parent / "copy", short_data, n=1), out2, progress=False)
    make_model_dir(model_dir.parent / "copy", seed=1)
    with pytest.raises(PruneprobeError, match="weights_hash"):
        run_pruning(config_for(model_dir.parent / "copy", short_data, n=1), out2, progress=False)
    # device is not compared (and the finished examples are not redone)
    run_pruning(config_for(model_dir, short_data, device="cpu"), out, progress=False)


def test_refuses_non_run_directory_and_a_locked_run(model_dir, short_data, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(PruneprobeError, match="not empty and holds no run"):
        run_pruning(config_for(model_dir, short_data, n=1), other, progress=False)
    out = tmp_path / "run"
    out.mkdir()
    with _run_lock(out):
        with pytest.raises(PruneprobeError, match="in use by another process"):
            run_pruning(config_for(model_dir, short_data, n=1), out, progress=False)
    with pytest.raises(PruneprobeError, match="not a pruneprobe run"):
        load_run(other)


def test_load_run_uses_fresh_tables_and_rebuilds_stale_ones(done_run, tmp_path, monkeypatch):
    import pruneprobe.runs.tables as runtables

    out = copy_run(done_run, tmp_path / "run")
    with monkeypatch.context() as m:
        m.setattr(runtables, "build_tables", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rebuilt")))
        assert len(load_run(out).tokens) > 0  # read from parquet, not rebuilt
    (out / "examples" / "a.json").unlink()  # tables now stale
    (out / "examples" / ".a.json.123.tmp").write_text('{"half')  # a temp file left by a kill
    run = load_run(out)
    assert set(run.tokens.example_id) == {"b/2"} and run.example_ids == ["b/2"]
    assert load_run(out).tables["tokens"].equals(run.tokens)  # the rebuilt tables were written


def test_table_freshness_follows_file_contents_not_mtimes(done_run, tmp_path, monkeypatch):
    """A fresh clone gives every file a new mtime: committed tables must stay fresh; an edit must not."""
    import pruneprobe.runs.tables as runtables

    out = tmp_path / "run"
    shutil.copytree(done_run, out, copy_function=shutil.copyfile)  # new mtimes, like a clone
    for p in (out / "examples").glob("*.json"):
        os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**12))
    with monkeypatch.context() as m:
        m.setattr(runtables, "build_tables", lambda *a, **k: (_ for _ in ()).throw(AssertionError("rebuilt")))
        assert len(load_run(out).tokens) > 0  # read from parquet, not rebuilt
    edited = out / "examples" / "a.json"
    data = json.loads(edited.read_text())
    data["example_id"] = "edited"
    st = edited.stat()
    edited.write_text(json.dumps(data))
    os.utime(edited, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime, new content
    assert "edited" in set(load_run(out).tokens.example_id)  # stale: rebuilt from the JSONs


def test_dispatch_to_baselines_and_tokenskip(model_dir, short_data, tmp_path, monkeypatch):
    seen = []

    def fake_result(ex, method):
        return PruneResult(ex.id, method, "joint", [1, 2], ["a", "b"], [1, 0],
                           {"joint_ppl": [1.0, 2.0, 3.0]}, token_scores=[0.5, 0.1])

    def prune_baseline(pruner, ex, method, objective="joint", seed=0, **kw):
        seen.append((ex.id, method, objective, seed, kw))
        return fake_result(ex, method)

    def tokenskip_prune(pruner, ex, objective="joint", *, classifier=None, keep_ratio=None):
        seen.append((ex.id, classifier, keep_ratio, objective))
        return fake_result(ex, "tokenskip")

    import pruneprobe.runs.worker as worker
    from pruneprobe.methods import registry

    monkeypatch.setattr(worker, "prune_baseline", prune_baseline)
    monkeypatch.setattr(worker, "load_token_classifier", lambda name: f"clf:{name}")
    monkeypatch.setitem(registry.METHODS, "tokenskip", dataclasses.replace(registry.METHODS["tokenskip"],
                                                                          prune=tokenskip_prune))
    config = RunConfig(dataset="gsm_symbolic", n=3, seed=3, pruner=str(model_dir), method="random", objective="answer")
    run = run_pruning(config, tmp_path / "r", progress=False)
    ids = [f"gsm_symbolic-3-{i}" for i in range(3)]
    assert seen == [(i, "random", "answer", 3, {}) for i in ids] and run.example_ids == ids
    assert "token_score" in run.tokens.columns and len(run.candidates) == 0
    seen.clear()
    run_pruning(config_for(model_dir, short_data, n=1, method="tokenskip", classifier="xlmr", keep_ratio=0.7),
                tmp_path / "t", progress=False)
    assert seen == [("a", "clf:xlmr", 0.7, "joint")]


def test_sigkill_mid_run_leaves_readable_files_and_resume_matches_uninterrupted(model_dir, tmp_path):
    data = write_jsonl(tmp_path / "kill.jsonl", KILL)
    out = tmp_path / "killed"
    args = ["run", "--dataset", "jsonl", "--data-path", str(data), "--pruner", str(model_dir),
            "--out", str(out), "--keep", "0.5"]
    log = open(tmp_path / "log.txt", "w")
    proc = subprocess.Popen([sys.executable, "-m", "pruneprobe.cli", *args], stdout=log, stderr=log,
                            cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 60
    try:
        while not list((out / "examples").glob("*.json")):
            assert proc.poll() is None, (tmp_path / "log.txt").read_text()
            assert time.time() < deadline, "no example finished within 60 s"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
        log.close()
    assert proc.returncode == -signal.SIGKILL
    done = sorted(p.name for p in (out / "examples").glob("*.json"))
    assert 1 <= len(done) < len(KILL), done
    check_files_readable(out)
    partial = load_run(out)
    assert len(list(partial.results())) == len(done) == len(partial.example_ids)
    # the killed process could not update its manifest; the released lock tells the truth
    assert partial.manifest["status"] == "running" and partial.status == "incomplete"
    assert set(partial.tokens.example_id) == set(partial.example_ids)
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "examples").glob("*.json")}

    from pruneprobe.cli import main

    assert main(args + ["--no-progress"]) == 0  # resume in-process
    assert {n: (out / "examples" / n).stat().st_mtime_ns for n in mtimes} == mtimes
    resumed = load_run(out)
    assert resumed.manifest["status"] == "done" == resumed.status and not list(out.rglob(".*.tmp"))
    fresh = run_pruning(RunConfig(dataset="jsonl", data_path=str(data), pruner=str(model_dir), keep_ratio=0.5),
                        tmp_path / "fresh", progress=False)
    assert resumed.example_ids == [r["id"] for r in KILL]
    assert_same_results(resumed, fresh)


def test_shards_share_a_run_and_equal_an_unsharded_run(done_run, model_dir, short_data, tmp_path):
    out = tmp_path / "sharded"
    config = config_for(model_dir, short_data)
    first = run_pruning(config, out, progress=False, shard=(1, 2))  # positions 1: "b/2"
    assert sorted(p.name for p in (out / "examples").glob("*.json")) == [f"{safe_id('b/2')}.json"]
    assert first.manifest["status"] == "incomplete"
    with _run_lock(out, (0, 2)):  # another shard may run beside shard 0; the whole run may not
        run_pruning(config, out, progress=False, shard=(1, 2))
        with pytest.raises(PruneprobeError, match="as shard 0/2"):
            run_pruning(config, out, progress=False, shard=(0, 2))
        with pytest.raises(PruneprobeError, match="in use by another process"):
            run_pruning(config, out, progress=False)
    run = run_pruning(config, out, progress=False, shard=(0, 2))  # positions 0 and 2 ("empty" fails)
    assert [e["example_id"] for e in read_errors(out)] == ["empty"]
    ref = load_run(done_run)
    assert run.example_ids == ref.example_ids and run.manifest["n_done"] == 2
    for eid in ref.example_ids:
        assert run.result(eid).deletion_order == ref.result(eid).deletion_order
    for bad in [(2, 2), (0, 0), ("x", 1)]:
        with pytest.raises(PruneprobeError, match="shard"):
            run_pruning(config, tmp_path / "bad", progress=False, shard=bad)


def test_examples_from_another_run_keeps_the_same_ids(done_run, model_dir, short_data, tmp_path):
    run = run_pruning(config_for(model_dir, short_data, examples_from=str(done_run), n=1, method="uniform"),
                      tmp_path / "u", progress=False)
    assert run.example_ids == load_run(done_run).example_ids[:1]
    with pytest.raises(PruneprobeError, match="no manifest.json"):
        run_pruning(config_for(model_dir, short_data, examples_from=str(tmp_path / "none")), tmp_path / "v",
                    progress=False)


def _truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def _wrong_shape(path: Path) -> None:
    data = json.loads(path.read_text())
    data["candidate_scores"][0] = data["candidate_scores"][0][:-1]  # one row an entry short
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("damage", [_truncate, _wrong_shape], ids=["truncated", "wrong shape"])
def test_a_damaged_example_file_is_skipped_with_a_warning_and_recomputed_on_resume(
        done_run, model_dir, short_data, tmp_path, damage):
    out = copy_run(done_run, tmp_path / "run")
    good = out / "examples" / "a.json"
    original = good.read_text()
    damage(good)
    damaged_text = good.read_text()
    run = load_run(out)
    with pytest.warns(UserWarning, match=r"skipped 1 damaged example file\(s\): a\.json"):
        results = list(run.results())
    assert [r.example_id for r in results] == ["b/2"]
    with pytest.warns(UserWarning, match=r"a\.json"):
        tables = load_run(out).tables
    assert set(tables["tokens"].example_id) == {"b/2"} and set(tables["steps"].example_id) == {"b/2"}
    with pytest.warns(UserWarning, match=r"a\.json"):  # the rebuilt tables remember what they left out
        again = load_run(out)
        assert again.example_ids == ["b/2"] and again.damaged == ["a.json"] and again.status == "incomplete"
    with pytest.warns(UserWarning, match=r"a\.json"):
        build_tables(out)
    with pytest.raises(PruneprobeError, match=r"a\.json: not a readable PruneResult"):
        load_run(out).result("a")
    (out / "examples" / "a.json.corrupt").write_text("an older casualty")  # never overwritten
    with pytest.warns(UserWarning, match=r"set aside and recomputed: a\.json\.corrupt\.1"):
        resumed = run_pruning(config_for(model_dir, short_data), out, progress=False)
    assert (out / "examples" / "a.json.corrupt").read_text() == "an older casualty"
    assert (out / "examples" / "a.json.corrupt.1").read_text() == damaged_text
    assert resumed.example_ids == ["a", "b/2"] and not resumed.damaged
    assert resumed.result("a").deletion_order == json.loads(original)["deletion_order"]
    assert set(resumed.tokens.example_id) == {"a", "b/2"}


def test_status_running_only_while_the_lock_is_held(done_run, tmp_path):
    out = copy_run(done_run, tmp_path / "run")
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))  # stale: nobody runs it
    assert load_run(out).status == "incomplete"
    with _run_lock(out):  # another open file description: as another process would hold it
        assert load_run(out).status == "running"
        assert "running" in repr(load_run(out))
    with _run_lock(out, (1, 2)):
        assert load_run(out).status == "running"
    assert load_run(out).status == "incomplete"
    # every planned example done: "done", whatever the stored field says
    manifest["examples"] = [e for e in manifest["examples"] if e["id"] != "empty"]
    (out / "manifest.json").write_text(json.dumps({**manifest, "status": "running"}))
    assert load_run(out).status == "done"


def test_a_failed_resume_leaves_the_manifest_incomplete(model_dir, short_data, done_run, tmp_path, monkeypatch):

    out = copy_run(done_run, tmp_path / "run")

    def crash(*a, **k):
        raise RuntimeError("out of memory")

    _patch_greedy(monkeypatch, crash)
    with pytest.raises(RuntimeError, match="out of memory"):
        run_pruning(config_for(model_dir, short_data), out, progress=False)
    assert json.loads((out / "manifest.json").read_text())["status"] == "incomplete"
    assert load_run(out).status == "incomplete"


def test_selection_records_the_examples_it_passes_over(model_dir, tmp_path):
    rows = [SHORT[2], {"id": "long", "question": "What is 3+3?", "answer": "6",
                       "reasoning": "We add 3 and 3, so we get 6. Then 6 is the total, which we check twice over."},
            {"id": "no-answer", "question": "What is 1+2?", "reasoning": "1 plus 2 is 3.", "answer": ""},
            *SHORT[:2]]
    data = write_jsonl(tmp_path / "mixed.jsonl", rows)
    run = run_pruning(config_for(model_dir, data, max_reasoning_tokens=12, method="uniform"), tmp_path / "run",
                      progress=False)
    assert run.example_ids == ["a", "b/2"] and run.n_planned == 2 and run.errors == [] and run.status == "done"
    reasons = {e["example_id"]: e["error"] for e in run.skipped}
    assert set(reasons) == {"empty", "long", "no-answer"}
    assert "empty reasoning" in reasons["empty"] and "answer missing" in reasons["no-answer"]
    assert "27 pruner tokens" in reasons["long"] and "max_reasoning_tokens=12" in reasons["long"]
    assert run.manifest["n_errors"] == 0 and len(read_errors(tmp_path / "run")) == 3


def test_an_explicit_dtype_equal_to_the_default_is_the_same_configuration(done_run, model_dir, short_data, tmp_path,
                                                                          monkeypatch):
    import pruneprobe.core.greedy as greedy

    out = copy_run(done_run, tmp_path / "run")
    assert json.loads((out / "manifest.json").read_text())["config"]["dtype"] is None  # made with the default
    calls = []
    real = greedy.greedy_prune
    _patch_greedy(monkeypatch, lambda p, ex, *a, **k: calls.append(ex.id) or real(p, ex, *a, **k))
    for dtype in ("float32", "fp32", None):  # on this CPU the default is float32
        run = run_pruning(config_for(model_dir, short_data, dtype=dtype, device="cpu"), out, progress=False)
        assert run.example_ids == ["a", "b/2"]
    assert calls == ["empty"] * 3  # resumed: only the failed example was tried again
    with pytest.raises(PruneprobeError, match=r"dtype: 'float32' in the run, 'bfloat16' now"):
        run_pruning(config_for(model_dir, short_data, dtype="bfloat16"), out, progress=False)


def test_batched_examples_give_the_same_run(model_dir, short_data, done_run, tmp_path):
    """--batch-examples: the examples advance in lockstep; same orders and scores, the failing one recorded."""
    run = run_pruning(config_for(model_dir, short_data), tmp_path / "batched", progress=False, batch_examples=2)
    reference = load_run(done_run)
    assert run.example_ids == reference.example_ids == ["a", "b/2"]
    for example_id in run.example_ids:
        a, b = reference.result(example_id), run.result(example_id)
        assert a.deletion_order == b.deletion_order
        np.testing.assert_allclose(np.asarray(a.candidate_scores, float), np.asarray(b.candidate_scores, float),
                                   atol=1e-3, equal_nan=True)
    assert [e["example_id"] for e in read_errors(tmp_path / "batched")] == ["empty"]


@pytest.mark.parametrize("kw, message", [({"batch_examples": 0}, "batch_examples must be a positive integer"),
                                         ({"batch_examples": 2, "method": "uniform"}, "exact greedy pruning only"),
                                         ({"batch_examples": 2, "strategy": "shortlist"}, "exact greedy pruning only")])
def test_bad_batching_is_refused_before_loading(model_dir, short_data, tmp_path, kw, message):
    batch = kw.pop("batch_examples")
    with pytest.raises(PruneprobeError, match=message):
        run_pruning(config_for(model_dir, short_data, **kw), tmp_path / "x", progress=False, batch_examples=batch)
