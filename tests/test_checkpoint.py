"""Step checkpoints (``core/checkpoint.py``): a greedy pruning killed mid-chain resumes where it stopped
and ends as the uninterrupted one does; a run resumes its example from the checkpoint."""

import json

import numpy as np
import pytest
from conftest import tiny_pruner
from test_fast_exact import assert_same_pruning, chain, example_with

from pruneprobe import greedy_prune
from pruneprobe.runs import RunConfig, load_run, run_pruning
from pruneprobe.runs.worker import checkpoint_path

pytestmark = pytest.mark.usefixtures("one_thread")


class Killed(Exception):
    pass


def killed_after(n_steps: int):
    def on_step(step, total):
        if step == n_steps:
            raise Killed

    return on_step


def prune(pruner, ex, objective="joint", **kw):
    return greedy_prune(pruner, ex, objective, batch_tokens=64, checkpoint_every_s=0, **kw)


@pytest.mark.parametrize("objective", ["joint", "answer"])
def test_a_killed_pruning_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_one(tmp_path, objective):
    pruner = tiny_pruner("llama")
    ex = example_with(chain(10))
    whole = prune(pruner, ex, objective)
    path = tmp_path / "steps.json"
    with pytest.raises(Killed):
        prune(pruner, ex, objective, checkpoint=path, on_step=killed_after(5))
    saved = json.loads(path.read_text())
    assert saved["order"] == whole.deletion_order[:5] and saved["key"]["objective"] == objective
    steps = []
    resumed = prune(pruner, ex, objective, checkpoint=path, on_step=lambda step, total: steps.append(step))
    assert steps[0] == 6 and resumed.metadata["resumed_from_step"] == 5 and not path.exists()
    assert resumed.deletion_order == whole.deletion_order
    assert_same_pruning(resumed, whole, atol=1e-4)
    assert np.allclose(resumed.candidate_scores, whole.candidate_scores, atol=1e-4, equal_nan=True)
    assert resumed.metadata["tokens_computed"] > 0 and "resumed_from_step" not in whole.metadata


def test_a_checkpoint_of_another_pruning_or_a_damaged_one_is_ignored_with_a_warning(tmp_path, caplog):
    pruner = tiny_pruner("llama")
    ex = example_with(chain(8))
    path = tmp_path / "steps.json"
    with pytest.raises(Killed):
        prune(pruner, ex, "joint", checkpoint=path, on_step=killed_after(3))
    with caplog.at_level("WARNING", logger="pruneprobe.core.checkpoint"):
        answer = prune(pruner, ex, "answer", checkpoint=path)
    assert "checkpoint of another pruning (objective differ)" in caplog.text
    assert "resumed_from_step" not in answer.metadata
    assert answer.deletion_order == prune(pruner, ex, "answer").deletion_order
    path.write_text('{"key": {"example_id": "t"}, "order": [1, 2')  # a torn file
    caplog.clear()
    with caplog.at_level("WARNING", logger="pruneprobe.core.checkpoint"):
        again = prune(pruner, ex, "joint", checkpoint=path)
    assert "unreadable checkpoint" in caplog.text and "resumed_from_step" not in again.metadata


def test_shortlist_and_multi_keep_no_checkpoint(tmp_path):
    pruner = tiny_pruner("llama")
    path = tmp_path / "steps.json"
    with pytest.raises(Killed):
        prune(pruner, example_with(chain(8)), strategy="multi", checkpoint=path, on_step=killed_after(2))
    assert not path.exists()


def test_a_run_resumes_its_example_from_the_step_checkpoint(tmp_path):
    """The run keeps the checkpoint hidden beside the results (not read as one) and resumes from it."""
    rows = [{"question": "Tom has 3 apples and buys 4 more. How many?", "id": "ex3", "answer": "7",
             "reasoning": "He has 3 apples and buys 4, so 3 + 4 = 7 apples in all, which is the answer."}]
    data = tmp_path / "chains.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pruner = tiny_pruner("llama")
    config = RunConfig(dataset="jsonl", data_path=str(data), pruner="smollm2-135m", max_hours=None)
    out = tmp_path / "run"
    first = run_pruning(config, out, pruner=pruner, progress=False)  # the reference, then a killed one
    reference = first.result("ex3")
    (out / "examples" / "ex3.json").unlink()
    example = reference.example
    from pruneprobe.data.examples import Example

    path = checkpoint_path(out / "examples", "ex3")
    with pytest.raises(Killed):
        greedy_prune(pruner, Example.from_dict(example), "joint", checkpoint=path, checkpoint_every_s=0,
                     on_step=killed_after(4), max_hours=None)
    assert path.exists() and load_run(out).example_ids == []
    run = run_pruning(config, out, pruner=pruner, progress=False)
    result = run.result("ex3")
    assert result.metadata["resumed_from_step"] == 4 and not path.exists()
    assert result.deletion_order == reference.deletion_order
