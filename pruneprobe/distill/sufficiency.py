"""Sufficiency: does a model still reach the right answer from question + pruned reasoning?

Canonical pattern::

    from pruneprobe import load_pruner, load_run
    from pruneprobe.distill.sufficiency import evaluate_sufficiency
    model = load_pruner("smollm2-135m")
    results = {"greedy": list(load_run("runs/greedy").results()),
               "uniform": list(load_run("runs/uniform").results())}
    table = evaluate_sufficiency(model, results, keep_ratios=(0.9, 0.8, 0.7))
    table[["method", "keep_ratio", "accuracy", "ci_low", "ci_high"]]

For each chain the model continues, greedily, from the question, the pruned reasoning, a newline
and the dataset's answer prefix (``{"answer": "`` for GSM8K, ``Thus, the final answer is: `` for
MATH/MMLU-Pro); the continuation's answer is extracted and checked with
:mod:`pruneprobe.data.answers`. References: ``method="full"`` (the unpruned chain, rho 1.0) and
``method="none"`` (no reasoning at all, rho 0.0), one row each per example.

Gotchas:
- The prompt is the model's rendering of the exchange *with* the assistant turn, cut where the
  turn's text starts (:func:`assistant_prefix_prompt`). For chat templates this equals
  ``render(system, question) + text``; for the plain template it keeps the space after
  ``Answer:`` exactly as in pruning and training.
- Only the answer line counts: GSM8K continuations are read up to the closing quote, others up to
  the first newline. A model that rambles or emits garbage scores 0; nothing raises.
- Pruned text is ``result.pruned_text(rho)`` with outer whitespace stripped. A result pruned less
  far than a requested rho raises the ``PruneprobeError`` of ``kept_mask``.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import pandas as pd
import torch

from pruneprobe.analysis.stats import bootstrap_ci, group_runs
from pruneprobe.data.answers import check_answer, extract_answer, get_format
from pruneprobe.data.examples import Example, PromptFormat
from pruneprobe.data.models import Pruner
from pruneprobe.errors import PruneprobeError

_SENTINEL = "\u2063PRUNEPROBE\u2063"  # invisible separator; never produced by a template
GenerateFn = Callable[[list[str]], list[str]]


# -- shared helpers (also used by pruneprobe.distill.sft and .evaluate) -------------------------------------------
def group_results(results) -> dict[str, list]:
    """``{method: [PruneResult, ...]}`` from such a dict or a flat list (``analysis.stats.group_runs`` keyed by
    ``.method``; two objectives of one method share a group).

    >>> group_results([])
    {}
    """
    return group_runs(results, key=lambda r: r.method, unique=False)


def keep_shared_examples(groups: Mapping, also: Iterable[set] = ()) -> dict:
    """Each group's results restricted to the example ids every group (and every id set in
    ``also``) has, in each group's own order: every method compared on the same examples."""
    common = set.intersection(*({r.example_id for r in rs} for rs in groups.values()), *also)
    if not common:
        raise PruneprobeError("the runs share no finished example")
    return {key: [r for r in rs if r.example_id in common] for key, rs in groups.items()}


def result_example(result) -> Example:
    """The :class:`Example` stored in a ``PruneResult`` (question, answer, format)."""
    if not result.example or "question" not in result.example:
        raise PruneprobeError(f"result {result.example_id!r} holds no example (question/answer) to evaluate")
    return Example.from_dict(result.example)


def assistant_prefix_prompt(model: Pruner, system: str | None, question: str, assistant_prefix: str = "") -> str:
    """The prompt text that ends with ``assistant_prefix`` inside the assistant turn.

    >>> assistant_prefix_prompt(pruner, None, "2+2?", "It is")[-5:]  # doctest: +SKIP
    'It is'
    """
    full = model.render(system, question, assistant_prefix + _SENTINEL)
    pos = full.rfind(_SENTINEL)
    if pos < 0:  # a template that rewrote the assistant turn: fall back to the generation prompt
        return model.render(system, question, None) + assistant_prefix
    return full[:pos]


def answer_from_continuation(continuation: str | None, fmt: PromptFormat | str) -> str | None:
    """The answer a model wrote after the answer prefix, or ``None``.

    >>> answer_from_continuation('18"}\\nmore text 99', "gsm8k"), answer_from_continuation("5\\nso 6", "math")
    ('18', '5')
    """
    fmt = get_format(fmt)
    if not isinstance(continuation, str):
        return None
    line = continuation.split("\n", 1)[0]
    if fmt.name == "gsm8k":
        value = line.split('"', 1)[0].strip()
        if not value:
            return None
        return extract_answer(f'{fmt.answer_prefix}{value}"}}', fmt)
    return extract_answer(fmt.answer_prefix + line, fmt)


def generate_greedy(model: Pruner, prompts: list[str], max_new_tokens: int = 32, batch_size: int = 8,
                    progress: bool = False, desc: str = "generate") -> list[str]:
    """Greedy continuations of rendered prompts (left-padded batches, longest first).

    Chat-rendered prompts already hold their special tokens; plain ones get the tokenizer's.
    Decoded without special tokens; stops at the model's end-of-sequence token(s).
    """
    from tqdm.auto import tqdm
    from transformers import GenerationConfig

    if not prompts:
        return []
    tok = model.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    if pad_id is None:
        raise PruneprobeError(f"model {model.name!r}: tokenizer has neither a pad nor an eos token")
    eos = getattr(model.model.generation_config, "eos_token_id", None) or tok.eos_token_id
    config = GenerationConfig(do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=pad_id,
                              eos_token_id=eos)
    add_special = model.template == "plain"
    rows = [list(tok(p, add_special_tokens=add_special)["input_ids"]) for p in prompts]
    too_long = [i for i, r in enumerate(rows) if len(r) + max_new_tokens > model.max_length]
    if too_long:
        raise PruneprobeError(f"prompt {too_long[0]}: {len(rows[too_long[0]])} tokens + max_new_tokens="
                              f"{max_new_tokens} exceed the model's context of {model.max_length}")
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
    out: list[str] = [""] * len(rows)
    was_training = model.model.training
    model.model.eval()
    try:
        for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress, unit="batch"):
            idx = order[start:start + batch_size]
            width = max(len(rows[i]) for i in idx)
            ids = torch.tensor([[pad_id] * (width - len(rows[i])) + rows[i] for i in idx], device=model.device)
            mask = torch.tensor([[0] * (width - len(rows[i])) + [1] * len(rows[i]) for i in idx], device=model.device)
            with torch.no_grad():
                gen = model.model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
            for i, text in zip(idx, tok.batch_decode(gen[:, width:], skip_special_tokens=True)):
                out[i] = text
    finally:
        model.model.train(was_training)
    return out


def summarize_accuracy(per_example: pd.DataFrame, by: Iterable[str] = ("method", "keep_ratio"),
                       n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Accuracy with a bootstrap 95% CI per group of a per-example table (``correct`` column)."""
    by = list(by)
    rows = []
    for key, group in per_example.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        correct = group["correct"].astype(float).to_numpy()
        lo, hi = bootstrap_ci(correct, n_boot, seed)
        row = dict(zip(by, key))
        row.update(n=len(correct), n_correct=int(correct.sum()), accuracy=float(correct.mean()),
                   ci_low=lo, ci_high=hi)
        if "answered" in group:
            row["answered"] = float(group["answered"].astype(float).mean())
        rows.append(row)
    return pd.DataFrame(rows, columns=by + ["n", "n_correct", "accuracy", "ci_low", "ci_high", "answered"])


def paired_difference(per_example: pd.DataFrame, reference: str, by: Iterable[str] = ("keep_ratio",),
                      method_col: str = "method", n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Accuracy of ``reference`` minus each other method, paired on the same examples, per ``by``
    group: ``diff`` with a bootstrap 95% CI over examples (resampled in pairs).

    >>> df = pd.DataFrame(dict(method=["a", "b"] * 2, keep_ratio=0.7, example_id=[1, 1, 2, 2],
    ...                        correct=[True, False, True, True]))
    >>> paired_difference(df, "a")[["method", "n", "diff"]].values.tolist()
    [['b', 2, 0.5]]
    """
    by = list(by)
    rows = []
    for key, group in per_example.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        wide = group.pivot_table(index="example_id", columns=method_col, values="correct", aggfunc="first")
        if reference not in wide:
            continue
        for other in [c for c in wide.columns if c != reference]:
            pair = wide[[reference, other]].dropna().astype(float)
            d = (pair[reference] - pair[other]).to_numpy()
            lo, hi = bootstrap_ci(d, n_boot, seed)
            rows.append(dict(zip(by, key), reference=reference, method=other, n=len(d),
                             diff=float(d.mean()) if len(d) else float("nan"), ci_low=lo, ci_high=hi))
    return pd.DataFrame(rows, columns=by + ["reference", "method", "n", "diff", "ci_low", "ci_high"])


# -- sufficiency ------------------------------------------------------------------------------------
def sufficiency_prompt(model: Pruner, example: Example, reasoning: str | None) -> str:
    """Question + reasoning + newline + answer prefix (no reasoning: the answer prefix alone)."""
    fmt = example.prompt_format
    body = (reasoning + "\n" if reasoning else "") + fmt.answer_prefix
    return assistant_prefix_prompt(model, fmt.system_prompt, example.question.strip(), body)


def evaluate_sufficiency(model: Pruner, results, keep_ratios: Sequence[float] = (0.9, 0.8, 0.7),
                         max_new_tokens: int = 32, n_boot: int = 1000, seed: int = 0, include_full: bool = True,
                         include_none: bool = True, *, batch_size: int = 8, per_example: bool = False,
                         progress: bool = False, generate: GenerateFn | None = None) -> pd.DataFrame:
    """Accuracy of ``model`` answering from question + pruned reasoning, per (method, rho).

    ``results``: ``{method: [PruneResult]}`` or a flat list (grouped by ``result.method``).
    Returns one row per (method, keep_ratio) with ``n, n_correct, accuracy, ci_low, ci_high``
    (bootstrap 95% CI over examples) and ``answered`` (share with an extractable answer), plus
    ``full`` (rho 1.0) and ``none`` (rho 0.0) rows over the distinct examples. ``per_example=True``
    returns the per-example table instead (prompt reasoning, continuation, predicted, gold,
    correct). ``generate``: a function ``prompts -> continuations`` replacing greedy decoding.

    >>> evaluate_sufficiency(model, {"greedy": results}, keep_ratios=(0.7,))  # doctest: +SKIP
      method  keep_ratio  n  n_correct  accuracy  ci_low  ci_high  answered
    0   full         1.0  5          4       0.8     0.4      1.0       1.0
    """
    grouped = group_results(results)
    if not any(grouped.values()):
        raise PruneprobeError("no results to evaluate")
    for method in grouped:
        if method in ("full", "none"):
            raise PruneprobeError(f"method name {method!r} is reserved for the reference rows")
    rows: list[dict] = []  # example_id, method, keep_ratio, example, reasoning
    first: dict[str, tuple] = {}
    for method, rs in grouped.items():
        for r in rs:
            ex = result_example(r)
            first.setdefault(r.example_id, (r, ex))
            for rho in keep_ratios:
                try:
                    text = r.pruned_text(rho).strip()
                except PruneprobeError as exc:
                    raise PruneprobeError(f"{method} result {r.example_id!r}: {exc}") from None
                rows.append(dict(example_id=r.example_id, method=method, keep_ratio=float(rho), example=ex,
                                 reasoning=text))
    refs = []
    for ex_id, (r, ex) in first.items():
        if include_full:
            refs.append(dict(example_id=ex_id, method="full", keep_ratio=1.0, example=ex,
                             reasoning="".join(r.tokens).strip()))
        if include_none:
            refs.append(dict(example_id=ex_id, method="none", keep_ratio=0.0, example=ex, reasoning=""))
    rows = refs + rows
    prompts = [sufficiency_prompt(model, row["example"], row["reasoning"]) for row in rows]
    if generate is None:
        outputs = generate_greedy(model, prompts, max_new_tokens, batch_size, progress, desc="sufficiency")
    else:
        outputs = list(generate(prompts))
    if len(outputs) != len(prompts):
        raise PruneprobeError(f"generate returned {len(outputs)} continuations for {len(prompts)} prompts")
    table = []
    for row, out in zip(rows, outputs):
        ex = row.pop("example")
        fmt = ex.prompt_format
        pred = answer_from_continuation(out, fmt)
        table.append(dict(row, continuation=out, predicted=pred, gold=ex.answer,
                          answered=pred is not None, correct=check_answer(pred, str(ex.answer), fmt)))
    df = pd.DataFrame(table)
    if per_example:
        return df
    return summarize_accuracy(df, ("method", "keep_ratio"), n_boot, seed)


__all__ = ["evaluate_sufficiency", "keep_shared_examples", "paired_difference", "sufficiency_prompt",
           "answer_from_continuation", "generate_greedy", "bootstrap_ci", "summarize_accuracy", "group_results",
           "assistant_prefix_prompt", "result_example"]
