"""Distillation (docs/method.md, "Sufficiency and distillation"): LoRA-tune a student on question -> pruned reasoning -> answer.

Canonical pattern::

    from pruneprobe import load_pruner
    from pruneprobe.distill import build_sft_data, evaluate_student, heldout_gsm_symbolic, train_student
    from pruneprobe.runs import load_run
    results = list(load_run("runs/greedy").results())
    student = load_pruner("smollm2-135m")
    data = build_sft_data(results, 0.7, student.tokenizer)     # lengths matched in student tokens
    trained = train_student(student, data, "students/greedy-0.7", max_steps=200)   # rerun: resumes
    problems = heldout_gsm_symbolic(100, train_seed=0, train_questions=[d.question for d in data])
    evaluate_student(trained.student, problems, label="greedy@0.7")

Length matching: every method is compared at the same keep ratio rho *in the student's tokens*.
Chains are cut in the pruner's tokens, so per example the number ``k`` of pruner tokens deleted
(the first ``k`` of the result's deletion order) is chosen so that
``len(student_tokens(pruned)) / len(student_tokens(full))`` is closest to rho: a binary search
for the first ``k`` at or below rho (the ratio falls with ``k`` up to token merges), then a scan of
``k +- window``. ``achieved_ratio`` and ``matched`` (within ``tolerance``, default 0.005) are
recorded; short chains cannot always get within 0.005 (one token of 100 is 0.01), and
``require_match=True`` drops those.

Gotchas:
- ``train_student`` injects LoRA into ``student.model`` in place; load a fresh base model per
  student. Zero-shot and full-chain references use the same functions (no training; and
  ``build_sft_data(results, 1.0, ...)``).
- Checkpoints ``out_dir/checkpoint-N`` (adapter, optimizer, scheduler, step, RNG state) are
  written to a temp folder and renamed, so a kill leaves only complete ones; rerunning the same
  call resumes from the latest and ends in the same state as an uninterrupted run. A different
  configuration or data in the same ``out_dir`` is refused, naming the differing fields.
- Generation prompts end where the completion starts in training, less trailing spaces (a token
  like ``" In"`` that straddles the boundary is trained and must be generated).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd
import torch

from .answers import check_answer, extract_answer
from .data import Example
from .errors import PruneprobeError
from .models import Pruner
from .result import atomic_write_text
from .sufficiency import (GenerateFn, assistant_prefix_prompt, generate_greedy, group_results, result_example,
                          summarize_accuracy)
# configurations and the command line (re-exported)
from .distill_cli import CPU_CONFIG, PAPER_GPU_CONFIG, DistillConfig, add_distill_parser, run_distill_command


@dataclass(frozen=True)
class SFTExample:
    """One training pair; ``completion`` = pruned reasoning + newline + answer line."""

    example_id: str
    method: str
    system: str
    question: str
    completion: str
    answer: str
    format: str
    keep_ratio: float  # target rho
    achieved_ratio: float  # student tokens of the kept reasoning / of the full reasoning
    n_student_full: int
    n_student_kept: int
    n_pruner_deleted: int
    matched: bool  # |achieved - target| <= tolerance

    to_dict = asdict

    def prompt(self, student: Pruner) -> str:
        """The rendered prompt in ``student``'s template (the completion follows it in training)."""
        return assistant_prefix_prompt(student, self.system, self.question, "").rstrip(" ")


def _as_tokenizer(tok):
    return tok.tokenizer if isinstance(tok, Pruner) else tok


def _pruned_text(result, k: int) -> str:
    gone = set(result.deletion_order[:k])
    return "".join(t for i, t in enumerate(result.tokens) if i not in gone).strip()


def match_student_ratio(result, keep_ratio: float, count: Callable[[str], int], window: int = 8) -> tuple[int, str, int, int]:
    """``(k, pruned text, student tokens kept, student tokens full)`` with the student-token ratio
    closest to ``keep_ratio`` over ``k`` pruner deletions (ties: fewer deletions)."""
    full = "".join(result.tokens).strip()
    n_full = count(full)
    if n_full == 0:
        raise PruneprobeError(f"result {result.example_id!r}: empty reasoning")
    cache: dict[int, tuple[str, int]] = {}

    def at(k: int) -> tuple[str, int]:
        if k not in cache:
            text = _pruned_text(result, k)
            cache[k] = (text, count(text) if text else 0)
        return cache[k]

    lo, hi = 0, result.n_steps
    while lo < hi:  # first k whose ratio is <= rho
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if at(mid)[1] / n_full <= keep_ratio else (mid + 1, hi)
    cands = range(max(0, lo - window), min(result.n_steps, lo + window) + 1)
    k = min(cands, key=lambda j: (abs(at(j)[1] / n_full - keep_ratio), j))
    return k, at(k)[0], at(k)[1], n_full


def build_sft_data(results, keep_ratio: float, student_tokenizer, tolerance: float = 0.005, *,
                   require_match: bool = False, window: int = 8) -> list[SFTExample]:
    """SFT pairs from PruneResults at ``keep_ratio``, lengths matched in the student's tokens.

    ``results``: ``{method: [PruneResult]}`` or a flat list; ``student_tokenizer``: a tokenizer or
    a :class:`Pruner`. ``keep_ratio=1.0`` gives the full-chain reference data.

    >>> data = build_sft_data(results, 0.7, student.tokenizer)  # doctest: +SKIP
    >>> describe_sft_data(data)                                  # doctest: +SKIP
    """
    if not 0 < keep_ratio <= 1:
        raise PruneprobeError(f"keep_ratio must be in (0, 1], got {keep_ratio!r}")
    tok = _as_tokenizer(student_tokenizer)

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    out = []
    for method, rs in group_results(results).items():
        for r in rs:
            ex = result_example(r)
            fmt = ex.prompt_format
            k, text, kept, full = match_student_ratio(r, keep_ratio, count, window)
            achieved = kept / full
            matched = abs(achieved - keep_ratio) <= tolerance + 1e-12
            if require_match and not matched:
                continue
            completion = (text + "\n" if text else "") + fmt.render_answer(str(ex.answer).strip())
            out.append(SFTExample(r.example_id, method, fmt.system_prompt, ex.question.strip(), completion,
                                  str(ex.answer).strip(), fmt.name, float(keep_ratio), achieved, full, kept, k,
                                  matched))
    return out


def describe_sft_data(data: Sequence[SFTExample]) -> pd.DataFrame:
    """Per method: n, target rho, mean achieved ratio, max deviation, share matched."""
    df = pd.DataFrame([d.to_dict() for d in data])
    if df.empty:
        return pd.DataFrame(columns=["method", "n", "keep_ratio", "achieved_mean", "max_abs_dev", "matched"])
    df["dev"] = (df.achieved_ratio - df.keep_ratio).abs()
    return df.groupby("method", sort=False).agg(
        n=("example_id", "size"), keep_ratio=("keep_ratio", "first"), achieved_mean=("achieved_ratio", "mean"),
        max_abs_dev=("dev", "max"), matched=("matched", "mean"), student_tokens_kept=("n_student_kept", "mean"),
    ).reset_index()


# -- training ---------------------------------------------------------------------------------------
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


def encode_sft(student: Pruner, ex: SFTExample, max_seq_len: int = 1024) -> tuple[list[int], list[int], bool]:
    """Token ids and labels (``-100`` outside the completion) of one pair; ``truncated`` flag."""
    text = student.render(ex.system, ex.question, ex.completion)
    start = text.rfind(ex.completion)
    if start < 0:
        raise PruneprobeError(f"example {ex.example_id!r}: the student's template changed the completion text")
    enc = student.tokenize(text)
    ids = enc["input_ids"]
    labels = [t if e > start else -100 for t, (s, e) in zip(ids, enc["offsets"])]
    truncated = len(ids) > max_seq_len
    return ids[:max_seq_len], labels[:max_seq_len], truncated


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
    atomic_write_text(tmp / "trainer_state.json", json.dumps({"step": step, "losses": losses, "train_seconds": seconds}))
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
    from peft import LoraConfig, PeftModel, get_peft_model
    from tqdm.auto import tqdm

    from .greedy import as_pruner

    student = as_pruner(student)
    if isinstance(student.model, PeftModel):
        raise PruneprobeError("student already holds a LoRA adapter; load a fresh base model per student")
    if not sft_data:
        raise PruneprobeError("no SFT examples to train on")
    for name, v in (("batch_size", batch_size), ("epochs", epochs), ("save_every", save_every)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise PruneprobeError(f"{name} must be a positive integer, got {v!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise PruneprobeError(f"max_steps must be a positive integer or None, got {max_steps!r}")
    encoded = [encode_sft(student, ex, max_seq_len) for ex in sft_data]
    n_trunc = sum(t for _, _, t in encoded)
    encoded = [(i, l) for i, l, _ in encoded if any(x != -100 for x in l)]
    if not encoded:
        raise PruneprobeError(f"no completion token fits in max_seq_len={max_seq_len}")
    per_epoch = math.ceil(len(encoded) / batch_size)
    total = max_steps if max_steps is not None else epochs * per_epoch
    settings = dict(base=student.name, weights_hash=student.weights_hash, lora_r=lora_r, lora_alpha=lora_alpha,
                    lora_dropout=lora_dropout, target_modules=list(target_modules or []), lr=lr,
                    batch_size=batch_size, total_steps=total, seed=seed, warmup_ratio=warmup_ratio,
                    weight_decay=weight_decay, max_seq_len=max_seq_len, grad_clip=grad_clip,
                    n_examples=len(encoded), data=hashlib.sha256(json.dumps(encoded).encode()).hexdigest()[:16])
    out = Path(out_dir)
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
    step, losses, resumed, before = 0, [], None, 0.0  # before: training seconds of earlier calls
    ckpt = _latest_checkpoint(out)
    if ckpt is not None:
        step, losses, before = _load_checkpoint(ckpt, model, optimizer, scheduler)
        resumed = step
    pad_id = student.tokenizer.pad_token_id
    pad_id = pad_id if pad_id is not None else (student.tokenizer.eos_token_id or 0)
    t0 = time.perf_counter()
    model.train()
    bar = tqdm(total=total, initial=step, desc=f"train {out.name}", disable=not progress, unit="step")
    try:
        while step < total:
            epoch, b = divmod(step, per_epoch)
            perm = torch.randperm(len(encoded), generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
            batch = [encoded[i] for i in perm[b * batch_size:(b + 1) * batch_size].tolist()]
            width = max(len(ids) for ids, _ in batch)
            ids = torch.tensor([i + [pad_id] * (width - len(i)) for i, _ in batch], device=student.device)
            mask = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in batch], device=student.device)
            labels = torch.tensor([l + [-100] * (width - len(l)) for _, l in batch], device=student.device)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            if grad_clip:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if step % save_every == 0 or step == total:
                _save_checkpoint(out, step, model, optimizer, scheduler, losses, keep_checkpoints,
                                 before + time.perf_counter() - t0)
            if callback is not None:
                callback(step, losses[-1])
    finally:
        bar.close()
        model.eval()
    adapter = out / "adapter"
    if not (adapter / "adapter_config.json").exists() or resumed != total:
        tmp = out / ".adapter.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        shutil.rmtree(adapter, ignore_errors=True)
        tmp.rename(adapter)
    wrapped = Pruner(model=model, tokenizer=student.tokenizer, name=f"{student.name}+lora:{out.name}",
                     weights_hash=student.weights_hash, source=student.source, info={"adapter": str(adapter)})
    return TrainResult(wrapped, out, adapter, step, total, losses, resumed, before + time.perf_counter() - t0,
                       len(encoded), n_trunc)


def load_student(base, adapter_dir) -> Pruner:
    """A base model (name, path or Pruner) with a trained adapter loaded, for evaluation."""
    from peft import PeftModel

    from .models import load_pruner

    base = load_pruner(base) if isinstance(base, str) else base
    model = PeftModel.from_pretrained(base.model, str(adapter_dir)).eval()
    return Pruner(model=model, tokenizer=base.tokenizer, name=f"{base.name}+lora:{Path(adapter_dir).parent.name}",
                  weights_hash=base.weights_hash, source=base.source, info={"adapter": str(adapter_dir)})


# -- evaluation ---------------------------------------------------------------------------------------
def student_prompt(student: Pruner, example: Example) -> str:
    """Where the completion starts in training (trailing spaces left for the model to write)."""
    fmt = example.prompt_format
    return assistant_prefix_prompt(student, fmt.system_prompt, example.question.strip(), "").rstrip(" ")


def evaluate_student(student: Pruner, problems: Sequence[Example], max_new_tokens: int = 256, batch_size: int = 8,
                     n_boot: int = 1000, seed: int = 0, *, label: str = "student", per_example: bool = False,
                     progress: bool = True, generate: GenerateFn | None = None) -> pd.DataFrame:
    """Greedy accuracy of ``student`` on ``problems``: one row ``label, n, n_correct, accuracy,
    ci_low, ci_high, answered, mean_new_tokens`` (bootstrap 95% CI). Garbage output scores 0.

    >>> evaluate_student(load_pruner("smollm2-135m"), problems, label="zero-shot")  # doctest: +SKIP
    """
    if not problems:
        raise PruneprobeError("no problems to evaluate on")
    prompts = [student_prompt(student, ex) for ex in problems]
    if generate is None:
        outputs = generate_greedy(student, prompts, max_new_tokens, batch_size, progress, desc=f"eval {label}")
    else:
        outputs = list(generate(prompts))
    if len(outputs) != len(prompts):
        raise PruneprobeError(f"generate returned {len(outputs)} outputs for {len(prompts)} prompts")
    rows = []
    for ex, text in zip(problems, outputs):
        fmt = ex.prompt_format
        pred = extract_answer(text, fmt)
        n_new = len(student.tokenizer(text or "", add_special_tokens=False)["input_ids"])
        rows.append(dict(label=label, example_id=ex.id, output=text, predicted=pred, gold=ex.answer,
                         answered=pred is not None, correct=check_answer(pred, str(ex.answer), fmt), n_new_tokens=n_new))
    df = pd.DataFrame(rows)
    if per_example:
        return df
    summary = summarize_accuracy(df, ("label",), n_boot, seed)
    summary["mean_new_tokens"] = float(df.n_new_tokens.mean())
    return summary


def check_disjoint(train_questions: Iterable[str], problems: Sequence[Example]) -> None:
    """Raise when a held-out problem's question (whitespace-normalised) is in the training set."""
    norm = {" ".join(q.split()) for q in train_questions}
    shared = [p.id for p in problems if " ".join(p.question.split()) in norm]
    if shared:
        raise PruneprobeError(f"{len(shared)} held-out problems also appear in training (e.g. {shared[0]!r})")


def heldout_gsm_symbolic(n: int, train_seed: int, train_n: int | None = None,
                         train_questions: Iterable[str] | None = None, offset: int = 1_000_000) -> list[Example]:
    """``n`` gsm_symbolic problems disjoint from a training set made with ``seed=train_seed``.

    Item i of seed s is drawn with ``Random(s + i)``, so nearby seeds share items (seed 1's item 0
    is seed 0's item 1 with another template). The held-out seed is ``train_seed + offset``, whose
    RNG streams do not meet the training ones while ``train_n <= offset``; questions are checked too
    (against ``train_questions``, else a regenerated training set of ``train_n`` or ``n`` items).
    Templates are shared by design: held-out means new instantiations, not new problem types.

    >>> [p.id for p in heldout_gsm_symbolic(2, train_seed=0)]
    ['gsm_symbolic-1000000-0', 'gsm_symbolic-1000000-1']
    """
    from .datasets import load_examples

    if train_n is not None and train_n > offset:
        raise PruneprobeError(f"train_n={train_n} exceeds offset={offset}; pass a larger offset")
    problems = load_examples("gsm_symbolic", n=n, seed=train_seed + offset)
    if train_questions is None:
        train_questions = [e.question for e in load_examples("gsm_symbolic", n=train_n or n, seed=train_seed)]
    check_disjoint(train_questions, problems)
    return problems


__all__ = ["SFTExample", "build_sft_data", "describe_sft_data", "match_student_ratio", "train_student", "TrainResult",
           "load_student", "encode_sft", "evaluate_student", "student_prompt", "heldout_gsm_symbolic",
           "check_disjoint", "DistillConfig", "CPU_CONFIG", "PAPER_GPU_CONFIG", "add_distill_parser",
           "run_distill_command"]
