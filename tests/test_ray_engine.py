"""The Ray engine on a local Ray (2 CPUs): tasks retried when their actor dies, clear errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pruneprobe import PruneprobeError
from pruneprobe.runs.ray_engine import RayOptions, run_on_actors

ray = pytest.importorskip("ray", reason="the Ray engine needs the optional extra: pip install 'pruneprobe[ray]'")


@pytest.fixture(scope="module")
def local_ray():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


class Doubler:
    """Doubles numbers; dies (the whole worker process) the first time it meets ``die_on``."""

    def __init__(self, marker_dir: str, die_on: int | None = None):
        self.marker_dir, self.die_on = Path(marker_dir), die_on

    def work(self, x: int) -> tuple[int, int]:
        marker = self.marker_dir / f"died-on-{x}"
        if x == self.die_on and not marker.exists():
            marker.write_text("once")
            os._exit(1)
        return 2 * x, os.getpid()


def test_every_task_finishes_and_a_killed_actors_task_is_retried(local_ray, tmp_path):
    got = {}
    failed = run_on_actors(list(range(6)), Doubler, (str(tmp_path), 3), "work",
                           lambda task, value: got.__setitem__(task, value), RayOptions(workers=2))
    assert failed == [] and {k: v for k, (v, _) in got.items()} == {i: 2 * i for i in range(6)}
    assert (tmp_path / "died-on-3").exists()  # the actor really died on task 3, which then finished elsewhere
    assert len({pid for _, pid in got.values()}) >= 2


def test_a_task_that_keeps_killing_its_actor_is_reported(local_ray, tmp_path):
    class AlwaysDies(Doubler):
        def work(self, x):
            if x == 1:
                os._exit(1)
            return 2 * x, os.getpid()

    got = {}
    failed = run_on_actors([0, 1, 2], AlwaysDies, (str(tmp_path),), "work",
                           lambda task, value: got.__setitem__(task, value), RayOptions(workers=1, max_retries=1))
    assert sorted(got) == [0, 2]
    assert [task for task, _ in failed] == [1] and "died 2 times" in failed[0][1]


def test_a_worker_that_cannot_start_stops_the_run(local_ray):
    class Broken:
        def __init__(self):
            raise PruneprobeError("unknown pruner 'nope'")

        def work(self, x):
            return x

    with pytest.raises(PruneprobeError, match="could not start.*unknown pruner 'nope'"):
        run_on_actors([1, 2], Broken, (), "work", lambda *a: None, RayOptions(workers=1))


@pytest.mark.parametrize("kw, message", [({"workers": 0}, "workers must be a positive integer"),
                                         ({"gpus_per_worker": -1}, "gpus_per_worker must be >= 0"),
                                         ({"max_retries": -1}, "max_retries must be an integer >= 0")])
def test_bad_options_name_the_field(kw, message):
    with pytest.raises(PruneprobeError, match=message):
        RayOptions(**kw)


def test_a_ray_run_equals_the_in_process_run_and_resumes(local_ray, tmp_path):
    """A tiny model pruned on two Ray actors: the same files as in-process, errors recorded, resumable."""
    import json

    from conftest import make_model_dir
    from pruneprobe.runs import RunConfig, load_run, read_errors, run_pruning

    rows = [{"id": "a", "question": "What is 2+3?", "reasoning": "2 plus 3 is 5.", "answer": "5"},
            {"id": "b", "question": "What is 4+4?", "reasoning": "4 plus 4 makes 8.", "answer": "8"},
            {"id": "empty", "question": "What is 1+1?", "reasoning": "  ", "answer": "2"}]
    data = tmp_path / "short.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = RunConfig(dataset="jsonl", data_path=str(data), pruner=str(make_model_dir(tmp_path / "model")),
                       keep_ratio=0.5)
    local = run_pruning(config, tmp_path / "local", progress=False)
    on_ray = run_pruning(config, tmp_path / "ray", progress=False, engine="ray", ray_options=RayOptions(workers=2),
                         batch_examples=2)  # one actor gets all three examples as one lockstep group
    assert on_ray.example_ids == local.example_ids == ["a", "b"] and on_ray.status == "incomplete"
    for example_id in local.example_ids:
        a, b = local.result(example_id), on_ray.result(example_id)
        assert a.deletion_order == b.deletion_order and a.tokens == b.tokens
    assert [e["example_id"] for e in read_errors(tmp_path / "ray")] == ["empty"]
    assert "empty reasoning" in read_errors(tmp_path / "ray")[0]["error"]
    (tmp_path / "ray" / "examples" / "b.json").unlink()  # resume: only b is pruned again
    again = run_pruning(config, tmp_path / "ray", progress=False, engine="ray", ray_options=RayOptions(workers=1))
    assert again.result("b").deletion_order == local.result("b").deletion_order
    assert load_run(tmp_path / "ray").manifest["n_done"] == 2
    with pytest.raises(PruneprobeError, match="unknown engine 'spark'"):
        run_pruning(config, tmp_path / "x", progress=False, engine="spark")


def test_cli_engine_flags_reach_the_run(monkeypatch, tmp_path, capsys):
    import pruneprobe.cli.run as cli_run
    from pruneprobe.cli import main

    seen = []

    def fake_run(config, out, progress=True, shard=None, engine="local", ray_options=None, batch_examples=1):
        seen.append((engine, ray_options))
        raise PruneprobeError("stop here")

    monkeypatch.setattr(cli_run, "run_pruning", fake_run)
    base = ["run", "--dataset", "gsm_symbolic", "--pruner", "smollm2-135m", "--out", str(tmp_path / "r")]
    assert main(base + ["--engine", "ray", "--address", "auto", "--ray-workers", "3",
                        "--ray-gpus-per-worker", "0.25"]) == 2
    assert seen == [("ray", RayOptions(address="auto", workers=3, gpus_per_worker=0.25))]
    assert main(base + ["--engine", "ray", "--shard", "0/2"]) == 2
    assert "--shard and --engine ray do not mix" in capsys.readouterr().err
