"""Distillation: sufficiency of pruned chains (``sufficiency``), SFT data matched in student tokens
(``sft``), LoRA training (``train``) and evaluation (``evaluate``) of students, experiment
configurations (``config``) and the gathered result tables (``collect``). The commands that drive
them are ``pruneprobe sufficiency | distill | collect`` (``pruneprobe.cli``)."""
