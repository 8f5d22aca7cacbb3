"""Cost known before it is spent: token-forward counts, throughput, the refusal, the run display."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import tiny_pruner

import pruneprobe.cli.run as cli_run  # the run command looks run_pruning up there
import pruneprobe.core.greedy as greedy
from pruneprobe import Example, PruneprobeError, greedy_prune
from pruneprobe.cli import main
from pruneprobe.core.cost import CostEstimate, RunCosts, count_token_forwards, estimate_greedy_cost, measure_throughput
from pruneprobe.core.encoding import encode_example
from pruneprobe.runs import RunConfig, read_errors, run_pruning

pytestmark = pytest.mark.usefixtures("one_thread")


class Scored(Exception):
    """Raised by a stand-in ``make_scorer``: pruning got as far as building a scorer."""


def _no_scoring(monkeypatch):
    def make_scorer(*args, **kwargs):
        raise Scored
    monkeypatch.setattr(greedy, "make_scorer", make_scorer)


def test_a_6000_token_chain_is_refused_before_any_scoring(monkeypatch):
    pruner = tiny_pruner("llama")
    pruner.model.config.max_position_embeddings = 8192  # past the context check, onto the cost check
    pruner.info["tokens_per_s"] = 20_000.0  # a given throughput: nothing timed in the test
    example = Example("How many words are there?", " ".join(["word"] * 6000), "6000", id="long")
    r = encode_example(pruner, example).n_reasoning
    assert r >= 5900
    hours = estimate_greedy_cost(pruner, example).hours
    assert hours > 3
    _no_scoring(monkeypatch)
    with pytest.raises(PruneprobeError) as err:
        greedy_prune(pruner, example)
    message = str(err.value)
    for part in (f"{r} reasoning tokens", f"{hours:.1f} h", "strategy='shortlist'", "max_steps", "keep_ratio",
                 "max_hours=None", "--max-hours"):
        assert part in message
    # the ways out: no limit, or few enough deletions, reach the scorer
    for kwargs in ({"max_hours": None}, {"max_steps": 2}, {"max_hours": 2 * hours}):
        with pytest.raises(Scored):
            greedy_prune(pruner, example, **kwargs)


@pytest.mark.parametrize("scorer, strategy, low, high", [
    ("fast", "exact", 0.8, 1.25), ("naive", "exact", 0.8, 1.25), ("fast", "shortlist", 0.5, 2.0),
    ("fast", "multi", 0.5, 2.0),
])
def test_estimate_counts_what_the_scorer_computes(example, scorer, strategy, low, high):
    pruner = tiny_pruner("llama")
    pruner.info["tokens_per_s"] = 1e6
    kw = {"scorer": scorer, "strategy": strategy, "refresh_every": 10}
    result = greedy_prune(pruner, example, **kw)
    estimate = estimate_greedy_cost(pruner, example, **kw)
    assert estimate.n_steps == result.n_steps and estimate.n_reasoning == result.n_tokens
    assert low <= estimate.token_forwards / result.metadata["tokens_computed"] <= high


def test_count_grows_as_r_cubed_and_the_options_shrink_it():
    exact = count_token_forwards(30, 6000, 12, 6000)
    assert 1.0 < exact / (6000 ** 3 / 6) < 1.05
    assert count_token_forwards(30, 6000, 12, 6000, scorer="naive") > 2 * exact
    assert count_token_forwards(30, 6000, 12, 6000, "shortlist") < exact / 10
    assert count_token_forwards(30, 6000, 12, 6000, "multi") < exact / 10
    assert count_token_forwards(30, 6000, 12, 600) < exact / 3  # max_steps / keep_ratio: fewer deletions
    assert count_token_forwards(30, 600, 12, 600) < count_token_forwards(30, 600, 500, 600)  # the tail counts


def test_throughput_is_measured_once_and_cached():
    pruner = tiny_pruner("llama")
    calls = []
    pruner.model.register_forward_hook(lambda mod, args, out: calls.append(1))
    first = measure_throughput(pruner)
    assert first > 0 and pruner.info["tokens_per_s"] == first and len(calls) == 3
    assert measure_throughput(pruner) == first and len(calls) == 3
    measure_throughput(pruner, refresh=True)
    assert len(calls) == 6


def test_cost_estimate_reads_well():
    est = CostEstimate(n_reasoning=400, n_steps=400, strategy="exact", scorer="fast", token_forwards=1.2e7,
                       tokens_per_s=2000.0)
    assert est.seconds == 6000 and est.hours == pytest.approx(6000 / 3600)
    assert str(est) == ("~1.2e+07 token-forwards, about 1.7 h at 2,000 tokens/s (exact, 400 deletions of "
                        "400 reasoning tokens)")


def test_max_hours_must_be_positive_or_none(example):
    with pytest.raises(PruneprobeError, match="max_hours must be a positive number"):
        greedy_prune(tiny_pruner("llama"), example, max_hours=0)
    with pytest.raises(PruneprobeError, match="max_hours must be a positive number"):
        RunConfig(dataset="gsm_symbolic", pruner="smollm2-135m", max_hours=-1.0).normalized()


def test_run_costs_summary_and_postfix():
    def est(seconds):
        return CostEstimate(10, 10, "exact", "fast", seconds * 1000.0, 1000.0)

    costs = RunCosts({"a": est(60), "b": est(120), "c": est(10 * 3600), "d": None}, max_hours=3.0)
    summary = costs.summary()
    assert summary.startswith("estimated cost of 2 example(s): about 3.0 min")
    assert "1 over the 3 h limit will be refused (first: 'c'" in summary
    assert costs.postfix("a") == "~1.0 min, ETA 3.0 min"
    assert costs.postfix("b") == "~2.0 min, ETA 2.0 min"
    assert costs.postfix("c") == "~10.0 h, ETA 0 s" and costs.postfix("d") == "~?, ETA 0 s"


ROWS = [{"question": f"Tom has {i} apples and buys {i} more. How many?", "id": f"ex{i}", "answer": str(2 * i),
         "reasoning": f"He has {i} apples and buys {i}, so {i} + {i} = <<{i}+{i}={2 * i}>>{2 * i} apples."}
        for i in (3, 4)]


def test_run_refuses_costly_examples_shows_the_estimate_and_resumes_with_the_limit_lifted(tmp_path, capsys):
    data = tmp_path / "chains.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    pruner = tiny_pruner("llama")
    pruner.info["tokens_per_s"] = 1.0  # a slow machine: the tiny chains take about an hour each
    config = RunConfig(dataset="jsonl", data_path=str(data), pruner="smollm2-135m", keep_ratio=0.5, max_hours=0.01)
    out = tmp_path / "run"
    run_pruning(config, out, pruner=pruner, progress=True)
    shown = capsys.readouterr()
    assert "estimated cost of 0 example(s)" in shown.out + shown.err
    assert "2 over the 0.01 h limit will be refused" in shown.out + shown.err
    errors = read_errors(out)
    assert [e["example_id"] for e in errors] == ["ex3", "ex4"] and all("over the limit" in e["error"] for e in errors)
    config.max_hours = None  # not compared on resume: the same run, retried without a limit
    run = run_pruning(config, out, pruner=pruner, progress=False)
    assert run.example_ids == ["ex3", "ex4"] and not read_errors(out)
    reasoning = run.result("ex3").example["reasoning"]
    assert "<<" not in reasoning and "3 + 3 = 6 apples" in reasoning  # the default: annotations removed
    kept = run_pruning(RunConfig(dataset="jsonl", data_path=str(data), pruner="smollm2-135m", keep_ratio=0.5,
                                 n=1, keep_calculator=True), tmp_path / "kept", pruner=pruner, progress=False)
    assert "<<3+3=6>>" in kept.result("ex3").example["reasoning"]


def test_cli_passes_keep_calculator_and_max_hours(monkeypatch, tmp_path):
    seen = []

    def fake_run(config, out, progress=True, shard=None, **engine):
        seen.append(config)
        raise PruneprobeError("stop here")

    monkeypatch.setattr(cli_run, "run_pruning", fake_run)
    base = ["run", "--dataset", "gsm_symbolic", "--pruner", "smollm2-135m", "--out", str(tmp_path / "r")]
    assert main(base) == 2 and main(base + ["--keep-calculator", "--max-hours", "0"]) == 2
    assert main(base + ["--max-hours", "7.5"]) == 2
    assert [(c.keep_calculator, c.max_hours) for c in seen] == [(False, 3.0), (True, None), (False, 7.5)]
    assert Path(tmp_path / "r").exists() is False
