"""Shared fixtures: tiny randomly initialised models (logic tier) and the embedded pruners (slow tier).

Tiny models use the SmolLM2 tokenizer (from the embedded package, no hub) so prompts, chat
templates and offsets are real; their weights are random, so tests check logic, not quality.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from pruneprobe import Example, Pruner

ARCHS = ("llama", "qwen2", "gemma3", "gpt2")
# attention layouts beyond ARCHS: every-layer sliding windows (Mistral, Phi-3), one KV head,
# softcapping with alternating sliding / full layers (Gemma 2), q/k norms with per-layer windows (Qwen 3)
MORE_ARCHS = ("mistral", "phi3", "llama_mqa", "gemma2", "qwen3")


@functools.lru_cache(maxsize=1)
def smol_tokenizer_dir() -> str:
    from pruneprobe.data.models import materialize_embedded

    return str(materialize_embedded("smollm2-135m"))


@functools.lru_cache(maxsize=None)
def _tokenizer(chat: bool):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smol_tokenizer_dir())
    if not chat:
        tok.chat_template = None
    return tok


def tiny_model(arch: str = "llama", vocab_size: int = 49152, seed: int = 0, sliding_window: int = 16):
    """A 2-3 layer random model of the given architecture shape, fp32, eval mode.

    Weights are drawn wider than the default (``initializer_range`` 0.3, not 0.02) so candidate
    scores spread out: with near-uniform outputs, greedy choices become float-rounding ties."""
    import transformers as tf

    torch.manual_seed(seed)
    common = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=64, max_position_embeddings=1024, initializer_range=0.3)
    if arch == "llama":
        model = tf.LlamaForCausalLM(tf.LlamaConfig(**common))
    elif arch == "qwen2":
        model = tf.Qwen2ForCausalLM(tf.Qwen2Config(**common))
    elif arch == "gemma3":
        cfg = dict(common, num_hidden_layers=3, head_dim=8, sliding_window=sliding_window,
                   layer_types=["sliding_attention", "full_attention", "sliding_attention"])
        model = tf.Gemma3ForCausalLM(tf.Gemma3TextConfig(**cfg))
    elif arch == "mistral":  # ``sliding_window`` with no ``layer_types``: every layer windowed
        model = tf.MistralForCausalLM(tf.MistralConfig(**common, sliding_window=sliding_window))
    elif arch == "phi3":  # the same, fused QKV projection
        model = tf.Phi3ForCausalLM(tf.Phi3Config(**common, sliding_window=sliding_window, pad_token_id=None,
                                                 bos_token_id=None, eos_token_id=None))
    elif arch == "llama_mqa":  # grouped-query attention with one KV head
        model = tf.LlamaForCausalLM(tf.LlamaConfig(**dict(common, num_key_value_heads=1)))
    elif arch == "gemma2":  # attention and final-logit softcapping, alternating sliding / full layers (eager)
        cfg = dict(common, num_hidden_layers=3, num_key_value_heads=1, head_dim=8, sliding_window=sliding_window,
                   attn_logit_softcapping=5.0, final_logit_softcapping=3.0)
        model = tf.Gemma2ForCausalLM(tf.Gemma2Config(**cfg))
    elif arch == "qwen3":  # q/k RMS norms; sliding layers above max_window_layers
        cfg = dict(common, num_hidden_layers=3, head_dim=8, use_sliding_window=True,
                   sliding_window=sliding_window, max_window_layers=1)
        model = tf.Qwen3ForCausalLM(tf.Qwen3Config(**cfg))
    elif arch == "gpt2":
        model = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4,
                                                 n_positions=1024, bos_token_id=0, eos_token_id=0,
                                                 initializer_range=0.3))
    else:
        raise ValueError(arch)
    return model.eval()


def tiny_pruner(arch: str = "llama", chat: bool | None = None, seed: int = 0, **kw) -> Pruner:
    """Tiny random model + SmolLM2 tokenizer; GPT-2 gets the plain template (no chat template)."""
    chat = (arch != "gpt2") if chat is None else chat
    return Pruner.from_model(tiny_model(arch, seed=seed, **kw), _tokenizer(chat), name=f"tiny-{arch}")


def make_model_dir(path: Path, seed: int = 0) -> Path:
    """Save a tiny random Llama and the SmolLM2 tokenizer as a loadable model directory."""
    pruner = tiny_pruner("llama", seed=seed)
    pruner.model.save_pretrained(path)
    pruner.tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a shared 2-core CPU run far faster single-threaded (no spinning threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(params=ARCHS)
def arch(request):
    return request.param


@pytest.fixture
def pruner():
    return tiny_pruner("llama")


@pytest.fixture
def example():
    return Example(
        question="Natalia sold clips to 48 of her friends in April, and then she sold half as many in May. "
        "How many clips did Natalia sell altogether?",
        reasoning="In May she sold 48/2 = 24 clips. In total she sold 48 + 24 = 72 clips.",
        answer="72",
        id="natalia",
    )


@pytest.fixture(scope="session")
def smollm2():
    """The embedded SmolLM2-135M-Instruct pruner (slow tier)."""
    from pruneprobe import load_pruner

    return load_pruner("smollm2-135m", device="cpu")


# -- notebook run times: tests/test_notebooks.py records them, the summary prints them (also with -q) --------------
_NOTEBOOK_SECONDS: dict[str, float] = {}


def pytest_runtest_logreport(report):
    for name, value in getattr(report, "user_properties", ()):
        if name == "notebook_seconds" and report.when == "call":
            _NOTEBOOK_SECONDS[report.nodeid.rpartition("[")[2].rstrip("]")] = value


def pytest_terminal_summary(terminalreporter):
    if _NOTEBOOK_SECONDS:
        terminalreporter.section("notebook run times")
        for stem, seconds in sorted(_NOTEBOOK_SECONDS.items()):
            terminalreporter.write_line(f"{stem}: {seconds:.0f} s")
