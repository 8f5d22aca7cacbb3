"""LoRA training of a student on SFT pairs (:mod:`pruneprobe.distill.sft`), resumable from checkpoints.

Canonical pattern::

    from pruneprobe import load_pruner
    from pruneprobe.distill.sft import build_sft_data
    from pruneprobe.distill.train import load_student, train_student
    student = load_pruner("smollm2-135m")
    data = build_sft_data(results, 0.7, student.tokenizer)
    trained = train_student(student, data, "students/greedy-0.7", max_steps=200)   # rerun: resumes
    trained.student                                   # the LoRA model, ready for distill.evaluate
    load_student("smollm2-135m", "students/greedy-0.7/adapter")                    # later

Gotchas:
- ``train_student`` injects LoRA into ``student.model`` in place; load a fresh base model per
  student.
- Checkpoints ``out_dir/checkpoint-N`` (adapter, optimizer, scheduler, step, RNG state) are
  written to a temp folder and renamed, so a kill leaves only complete ones; rerunning the same
  call resumes from the latest and ends in the same state as an uninterrupted run. A different
  configuration or data in the same ``out_dir`` is refused, naming the differing fields.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from pruneprobe.core.io import atomic_write_text
from pruneprobe.data.models import Pruner, as_pruner, load_pruner
from pruneprobe.distill.sft import SFTExample, encode_sft
from pruneprobe.errors import PruneprobeError


@dataclass
class TrainResult:
    """What :func:`train_student` did; ``student`` wraps the LoRA model (ready to evaluate)."""

    student: Pruner
    out_dir: Path
    adapter_dir: Path
    step: int
    total_steps: int
    losses: list[float] = field(default_factory=list)
    resumed_from: int | None = None
    elapsed_s: float = 0.0  # training time over all calls (a resumed run adds the earlier ones)
    n_examples: int = 0
    n_truncated: int = 0


@dataclass
class _Session:
    """A LoRA model being trained: its optimizer and schedule, and how far training has got."""

    model: object
    params: list
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    step: int = 0
    losses: list[float] = field(default_factory=list)
    resumed_from: int | None = None
    before_s: float = 0.0  # training seconds of earlier calls


# -- checkpoints ------------------------------------------------------------------------------------
def _latest_checkpoint(out: Path) -> Path | None:
    found = [(int(m.group(1)), p) for p in out.glob("checkpoint-*")
             if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and (p / "trainer_state.json").exists()]
    return max(found)[1] if found else None
def _save_checkpoint(out: Path, step: int, model, optimizer, scheduler, losses: list[float], keep: int,
                     seconds: float = 0.0) -> None:
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    final, tmp = out / f"checkpoint-{step}", out / f".checkpoint-{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in get_peft_model_state_dict(model).items()},
              str(tmp / "adapter.safetensors"))
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng},
               tmp / "state.pt")
    atomic_write_text(tmp / "trainer_state.json",
                      json.dumps({"step": step, "losses": losses, "train_seconds": seconds}))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    done = sorted((int(p.name.split("-")[1]), p) for p in out.glob("checkpoint-*") if p.name[11:].isdigit())
    for _, p in done[:-keep] if keep > 0 else []:
        shutil.rmtree(p, ignore_errors=True)


def _load_checkpoint(path: Path, model, optimizer, scheduler) -> tuple[int, list[float], float]:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(path / "adapter.safetensors")))
    state = torch.load(path / "state.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"]["torch"])
    if "cuda" in state["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    info = json.loads((path / "trainer_state.json").read_text())
    return int(info["step"]), list(info["losses"]), float(info.get("train_seconds", 0.0))



# -- training ---------------------------------------------------------------------------------------
def train_student(student, sft_data: Sequence[SFTExample], out_dir, lora_r: int = 8, lora_alpha: int = 16,
                  lr: float = 2e-4, epochs: int = 1, batch_size: int = 4, max_steps: int | None = None,
                  save_every: int = 50, seed: int = 0, progress: bool = True, *, lora_dropout: float = 0.0,
                  target_modules: Sequence[str] | None = None, warmup_ratio: float = 0.03,
                  weight_decay: float = 0.0, max_seq_len: int = 1024, grad_clip: float = 1.0,
                  gradient_checkpointing: bool = False, keep_checkpoints: int = 2,
                  callback: Callable[[int, float], None] | None = None) -> TrainResult:
    """LoRA-tune ``student`` (a Pruner or ``(model, tokenizer)``) on ``sft_data``; loss on completions only.

    AdamW, linear warmup then linear decay to 0 over ``max_steps`` (default ``epochs`` passes),
    batches drawn from a per-epoch permutation seeded by ``seed``. Checkpoints every
    ``save_every`` steps and at the end; the final adapter goes to ``out_dir/adapter``
    (``PeftModel.from_pretrained``-loadable, or :func:`load_student`). ``callback(step, loss)``
    runs after each step.

    >>> res = train_student(load_pruner("smollm2-135m"), data, "students/x", max_steps=50)  # doctest: +SKIP
    """
    student = as_pruner(student)
    _check_training_inputs(student, sft_data, batch_size=batch_size, epochs=epochs, save_every=save_every,
                           max_steps=max_steps)
    encoded, n_trunc = _encode_pairs(student, sft_data, max_seq_len)
    per_epoch = math.ceil(len(encoded) / batch_size)
    total = max_steps if max_steps is not None else epochs * per_epoch
    settings = dict(base=student.name, weights_hash=student.weights_hash, lora_r=lora_r, lora_alpha=lora_alpha,
                    lora_dropout=lora_dropout, target_modules=list(target_modules or []), lr=lr,
                    batch_size=batch_size, total_steps=total, seed=seed, warmup_ratio=warmup_ratio,
                    weight_decay=weight_decay, max_seq_len=max_seq_len, grad_clip=grad_clip,
                    n_examples=len(encoded), data=hashlib.sha256(json.dumps(encoded).encode()).hexdigest()[:16])
    out = Path(out_dir)
    _prepare_out_dir(out, settings)
    session = _start_session(student, out, total, seed=seed, lora_r=lora_r, lora_alpha=lora_alpha,
                             lora_dropout=lora_dropout, target_modules=target_modules, lr=lr,
                             weight_decay=weight_decay, warmup_ratio=warmup_ratio,
                             gradient_checkpointing=gradient_checkpointing)
    t0 = time.perf_counter()
    _run_steps(session, student, encoded, out, t0, total=total, per_epoch=per_epoch, batch_size=batch_size,
               seed=seed, grad_clip=grad_clip, save_every=save_every, keep_checkpoints=keep_checkpoints,
               callback=callback, progress=progress)
    adapter = _save_adapter(out, session.model, session.resumed_from, total)
    wrapped = Pruner(model=session.model, tokenizer=student.tokenizer, name=f"{student.name}+lora:{out.name}",
                     weights_hash=student.weights_hash, source=student.source, info={"adapter": str(adapter)})
    return TrainResult(wrapped, out, adapter, session.step, total, session.losses, session.resumed_from,
                       session.before_s + time.perf_counter() - t0, len(encoded), n_trunc)


def _check_training_inputs(student: Pruner, sft_data: Sequence[SFTExample], *, batch_size, epochs, save_every,
                           max_steps) -> None:
    from peft import PeftModel

    if isinstance(student.model, PeftModel):
        raise PruneprobeError("student already holds a LoRA adapter; load a fresh base model per student")
    if not sft_data:
        raise PruneprobeError("no SFT examples to train on")
    for name, v in (("batch_size", batch_size), ("epochs", epochs), ("save_every", save_every)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise PruneprobeError(f"{name} must be a positive integer, got {v!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise PruneprobeError(f"max_steps must be a positive integer or None, got {max_steps!r}")


def _encode_pairs(student: Pruner, sft_data: Sequence[SFTExample], max_seq_len: int) -> tuple[list, int]:
    """``([(ids, labels)], n truncated)``, without the pairs left with no completion token."""
    encoded = [encode_sft(student, ex, max_seq_len) for ex in sft_data]
    n_trunc = sum(t for _, _, t in encoded)
    pairs = [(i, l) for i, l, _ in encoded if any(x != -100 for x in l)]
    if not pairs:
        raise PruneprobeError(f"no completion token fits in max_seq_len={max_seq_len}")
    return pairs, n_trunc


def _prepare_out_dir(out: Path, settings: dict) -> None:
    """Create ``out``, drop unfinished checkpoints, and refuse a student trained with other settings."""
    out.mkdir(parents=True, exist_ok=True)
    for tmp in out.glob(".checkpoint-*.tmp"):
        shutil.rmtree(tmp, ignore_errors=True)
    if (out / "distill.json").exists():
        old = json.loads((out / "distill.json").read_text())
        diff = [k for k in settings if k != "base" and old.get(k) != settings[k]]
        if diff:
            raise PruneprobeError(f"{out} holds a student trained with other settings ({', '.join(diff)}); "
                                  "use another --out or delete it")
    else:
        atomic_write_text(out / "distill.json", json.dumps(settings, indent=1))


def _start_session(student: Pruner, out: Path, total: int, *, seed: int, lora_r: int, lora_alpha: int,
                   lora_dropout: float, target_modules, lr: float, weight_decay: float, warmup_ratio: float,
                   gradient_checkpointing: bool) -> _Session:
    """Inject LoRA, build AdamW and the warmup-then-decay schedule, and resume from the latest checkpoint."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)
    cfg = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout, task_type="CAUSAL_LM",
                     target_modules=list(target_modules) if target_modules else None)
    model = get_peft_model(student.model, cfg)
    if gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    warm = int(warmup_ratio * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / (warm + 1) if s < warm else max(0.0, (total - s) / max(1, total - warm)))
    session = _Session(model, params, optimizer, scheduler)
    ckpt = _latest_checkpoint(out)
    if ckpt is not None:
        session.step, session.losses, session.before_s = _load_checkpoint(ckpt, model, optimizer, scheduler)
        session.resumed_from = session.step
    return session


def _run_steps(session: _Session, student: Pruner, encoded: list, out: Path, t0: float, *, total: int,
               per_epoch: int, batch_size: int, seed: int, grad_clip: float, save_every: int,
               keep_checkpoints: int, callback, progress: bool) -> None:
    """Train from ``session.step`` to ``total``, checkpointing every ``save_every`` steps and at the end."""
    model, optimizer, scheduler = session.model, session.optimizer, session.scheduler
    pad_id = student.tokenizer.pad_token_id
    pad_id = pad_id if pad_id is not None else (student.tokenizer.eos_token_id or 0)
    model.train()
    bar = tqdm(total=total, initial=session.step, desc=f"train {out.name}", disable=not progress, unit="step")
    try:
        while session.step < total:
            epoch, b = divmod(session.step, per_epoch)
            perm = torch.randperm(len(encoded), generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
            batch = [encoded[i] for i in perm[b * batch_size:(b + 1) * batch_size].tolist()]
            loss = model(**_batch_tensors(batch, pad_id, student.device)).loss
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(session.params, grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            session.step += 1
            session.losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{session.losses[-1]:.4f}")
            if session.step % save_every == 0 or session.step == total:
                _save_checkpoint(out, session.step, model, optimizer, scheduler, session.losses, keep_checkpoints,
                                 session.before_s + time.perf_counter() - t0)
            if callback is not None:
                callback(session.step, session.losses[-1])
    finally:
        bar.close()
        model.eval()


def _batch_tensors(batch: list, pad_id: int, device) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``labels`` of ``[(ids, labels)]``."""
    width = max(len(ids) for ids, _ in batch)
    ids = torch.tensor([i + [pad_id] * (width - len(i)) for i, _ in batch], device=device)
    mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch], device=device)
    labels = torch.tensor([l + [-100] * (width - len(l)) for _, l in batch], device=device)
    return dict(input_ids=ids, attention_mask=mask, labels=labels)


def _save_adapter(out: Path, model, resumed_from: int | None, total: int) -> Path:
    """Write the final adapter to ``out/adapter`` (unless a finished run's is already there)."""
    adapter = out / "adapter"
    if not (adapter / "adapter_config.json").exists() or resumed_from != total:
        tmp = out / ".adapter.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        shutil.rmtree(adapter, ignore_errors=True)
        tmp.rename(adapter)
    return adapter


def load_student(base, adapter_dir) -> Pruner:
    """A base model (name, path or Pruner) with a trained adapter loaded, for evaluation."""
    from peft import PeftModel

    base = load_pruner(base) if isinstance(base, str) else base
    model = PeftModel.from_pretrained(base.model, str(adapter_dir)).eval()
    return Pruner(model=model, tokenizer=base.tokenizer, name=f"{base.name}+lora:{Path(adapter_dir).parent.name}",
                  weights_hash=base.weights_hash, source=base.source, info={"adapter": str(adapter_dir)})




__all__ = ["TrainResult", "train_student", "load_student"]
