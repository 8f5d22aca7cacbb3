"""The GPU benchmark (benchmarks/gpu_scale.py) runs end to end in its dry-run mode: CPU, tiny random
models, the same code paths, so the script cannot rot between the runs a lent GPU makes."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_scale.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("gpu_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dry_run_prints_the_table_and_the_figures(bench, one_thread, capsys):
    figures = bench.main(["--dry-run"])
    out = capsys.readouterr().out
    assert "(a) tiny-llama" in out and "(b) tiny-llama" in out and "authors' method" in out
    last = dict(pair.split("=") for pair in out.strip().splitlines()[-1].split())
    for key in ("a_batched_s", "a_speedup", "a_efficiency", "a_agreement", "b_fast_s", "b_authors_s", "b_naive_s",
                "b_speedup_vs_authors", "b_1000_chains_1gpu_h", "b_1000_chains_8gpu_h"):
        assert key in last and key in figures
    assert figures["a_agreement"] == 1.0  # fp32: batched orders equal one-at-a-time orders


def test_sized_example_hits_its_lengths(bench):
    from transformers import AutoTokenizer

    from pruneprobe.core.encoding import encode_example
    from pruneprobe.data.models import materialize_embedded

    pruner = bench.tiny_pruner(AutoTokenizer.from_pretrained(materialize_embedded("smollm2-135m")))
    enc = encode_example(pruner, bench.sized_example(pruner, 80, 30))
    assert 80 <= enc.reasoning_start <= 83 and 30 <= enc.n_reasoning <= 33


def test_no_gpu_means_a_clear_exit(bench, monkeypatch):
    monkeypatch.setattr(bench.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="--dry-run"):
        bench.main([])
