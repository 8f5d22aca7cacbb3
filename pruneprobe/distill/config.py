"""Distillation experiments as configurations: ``DistillConfig`` records a whole experiment;
``CPU_CONFIG`` is the one measured here on CPU (and the ``pruneprobe distill`` defaults),
``PAPER_GPU_CONFIG`` the paper-scale one (not run here).

>>> CPU_CONFIG.students
('smollm2-135m',)
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DistillConfig:
    """A whole distillation experiment: chains, pruner, students, training and evaluation settings."""

    name: str
    teacher: str  # "gold": the dataset's own worked chains
    pruner: str
    students: tuple[str, ...]
    train_data: str
    eval_data: tuple[str, ...]
    n_train: int | None
    n_eval: int | None
    keep_ratios: tuple[float, ...] = (0.9, 0.8, 0.7)
    methods: tuple[str, ...] = ("greedy", "surprisal", "h2o", "uniform", "tokenskip")
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lr: float = 2e-4
    epochs: int = 1
    batch_size: int = 4
    max_seq_len: int = 1024
    max_new_tokens: int = 256
    tolerance: float = 0.005
    dtype: str = "float32"
    gradient_checkpointing: bool = False
    est_minutes_per_student: float | None = None
    notes: str = ""


CPU_CONFIG = DistillConfig(
    name="cpu-smollm2", teacher="gold", pruner="smollm2-135m", students=("smollm2-135m",),
    train_data="gsm_symbolic seed 0", eval_data=("gsm_symbolic held-out (heldout_gsm_symbolic)", "gsm8k test"),
    n_train=300, n_eval=100, methods=("greedy", "surprisal", "uniform", "random"),
    est_minutes_per_student=35.0,
    notes="Measured on 2 shared CPU cores (fp32, torch 2 threads): a LoRA step of batch 4 (~200-token "
          "sequences) takes ~19 s, so 75 steps ~24 min; greedy evaluation ~0.15 s per token for a batch of 8, "
          "so 100 problems at 256 new tokens ~9 min. Pruning the chains is separate. gsm_symbolic chains are "
          "~90 student tokens: only about half the examples can get within 0.005 of rho (the mean does).")


PAPER_GPU_CONFIG = DistillConfig(
    name="paper-gpu", teacher="Qwen/Qwen2.5-7B-Instruct", pruner="Qwen/Qwen2.5-7B-Instruct",
    students=("meta-llama/Llama-2-7b-hf", "mistralai/Mistral-7B-v0.1"), train_data="gsm8k train (teacher "
    "chains by rejection sampling: temperature 0.7, up to 10 samples, first correct kept)",
    eval_data=("gsm8k test",), n_train=None, n_eval=1319, lr=1e-4, epochs=3, batch_size=16, max_seq_len=2048,
    dtype="bfloat16", gradient_checkpointing=True, est_minutes_per_student=90.0,
    notes="A configuration, not run here. Teacher/pruner, students, datasets and rho follow the paper; "
          "LoRA rank/alpha, lr, epochs and batch size are NOT given in the sources at hand: TokenSkip-style "
          "LoRA SFT defaults, to be checked against the paper's appendix. MATH and MMLU-Pro: same with "
          "their prompt formats.")


__all__ = ["DistillConfig", "CPU_CONFIG", "PAPER_GPU_CONFIG"]
