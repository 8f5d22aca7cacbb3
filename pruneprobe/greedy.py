"""Greedy pruning: delete, one at a time, the reasoning token whose removal costs the least.

Canonical pattern::

    from pruneprobe import Example, greedy_prune, load_pruner
    pruner = load_pruner("smollm2-135m")
    result = greedy_prune(pruner, example, objective="joint")   # prune to the end
    result.pruned_text(0.7)

Strategies:
- ``"exact"`` (default): every kept token is re-scored at every step; fills the whole
  candidate-score matrix. The rank-dynamics analysis needs it.
- ``"shortlist"``: re-scores only the ``shortlist`` best candidates by their last score (taken
  relative to the state it was scored in) plus the ``window`` kept tokens on each side of the
  last deletion, whose scores move most; a full re-score every ``refresh_every`` steps. An
  approximation: its fidelity to exact is measured in ``benchmarks/greedy_speed.py`` (README:
  same kept set at rho >= 0.7 on 3 of 5 chains, IoU 0.66-0.86 on the other two); the category
  and regression analyses take it, the rank-dynamics analysis does not (unscored entries are NaN).
- ``"multi"``: one full scoring, then the ``max(1, floor(multi_fraction * k))`` best candidates
  are deleted (best first) while ``k`` tokens remain; rows of the extra deletions are NaN. Also an
  approximation, measured the same way. Traces are exact for the sequence actually deleted.

Scorers: ``"fast"`` (default, exact suffix-only recomputation, see ``fastscore``) or ``"naive"``
(full recompute; the reference). Ties go to the earliest token.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from . import __version__
from .data import Example
from .encoding import encode_example
from .errors import PruneprobeError
from .fastscore import make_scorer
from .models import Pruner
from .result import TRACE_KEYS, PruneResult, n_keep_for
from .scoring import resolve_objective, traces_from_state

STRATEGIES = ("exact", "shortlist", "multi")


def as_pruner(pruner) -> Pruner:
    if isinstance(pruner, Pruner):
        return pruner
    if isinstance(pruner, tuple) and len(pruner) == 2:
        return Pruner.from_model(*pruner)
    raise PruneprobeError("pruner must be a Pruner (load_pruner / Pruner.from_model) or a (model, tokenizer) pair")


def greedy_prune(
    pruner,
    example: Example,
    objective="joint",
    keep_ratio: float | None = None,
    *,
    max_steps: int | None = None,
    scorer: str = "fast",
    strategy: str = "exact",
    shortlist: int = 16,
    refresh_every: int = 25,
    window: int = 4,
    multi_fraction: float = 0.05,
    batch_tokens: int | None = None,
    progress: bool = False,
    on_step: Callable[[int, int], None] | None = None,
) -> PruneResult:
    """Greedily prune ``example``'s reasoning with ``pruner``; return a ``PruneResult``.

    ``keep_ratio=None`` prunes every token (a full ranking); ``keep_ratio=0.7`` stops when 70% of
    the reasoning tokens remain. ``objective`` is ``"joint"``, ``"answer"`` or a callable
    ``f(logprobs, n_reasoning)`` over the log-probs of the kept reasoning then the suffix.
    """
    pruner = as_pruner(pruner)
    obj = resolve_objective(objective)
    if strategy not in STRATEGIES:
        raise PruneprobeError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if not 0 < multi_fraction < 1:
        raise PruneprobeError(f"multi_fraction must be in (0, 1), got {multi_fraction!r}")
    enc = encode_example(pruner, example)
    r = enc.n_reasoning
    n_steps = r if keep_ratio is None else r - n_keep_for(keep_ratio, r)
    if max_steps is not None:
        n_steps = min(n_steps, max_steps)
    engine = make_scorer(pruner.model, scorer, batch_tokens, answer_only=not obj.needs_reasoning_logprobs)
    t0 = time.perf_counter()
    engine.reset(enc.prefix_ids, enc.reasoning_ids, enc.suffix_ids)
    alive = list(range(r))  # original indices of kept tokens, in order
    start = engine.state_logprobs()
    traces = {k: [v] for k, v in traces_from_state(start, r).items()}
    matrix = np.full((n_steps, r), np.nan)
    order: list[int] = []
    # shortlist strategy: each token's latest score minus the objective of the state it was scored in
    relative = np.full(r, np.nan)
    state_value, last_cut = float(obj.scores(start[None], r)[0]), 0  # current state; last deletion's index
    bar = _progress(progress, n_steps, example.id)
    step = 0
    while step < n_steps:
        k = len(alive)
        full = strategy != "shortlist" or step % refresh_every == 0 or k <= shortlist + 2 * window
        if full:
            cands = list(range(k))
        else:
            prev = np.array([relative[i] for i in alive])
            near = range(max(0, last_cut - window), min(k, last_cut + window))
            cands = sorted(set(np.argsort(-prev, kind="stable")[:shortlist].tolist()) | set(near))
        lp = engine.candidate_logprobs(cands)
        scores = obj.scores(lp, k - 1).numpy()
        if not np.all(np.isfinite(scores)):
            bad = alive[cands[int(np.flatnonzero(~np.isfinite(scores))[0])]]
            raise PruneprobeError(
                f"example {example.id!r}: non-finite score (NaN or inf) at step {step + 1} for reasoning "
                f"token {bad} ({enc.reasoning_pieces[bad]!r}); check the model's dtype and weights"
            )
        for c, sc in zip(cands, scores):
            matrix[step, alive[c]] = sc
            relative[alive[c]] = sc - state_value
        picks = [int(np.argmax(scores))]  # first maximum: ties go to the earliest token
        if strategy == "multi":
            m = min(max(1, int(multi_fraction * k)), n_steps - step)
            picks = np.argsort(-scores, kind="stable")[:m].tolist()
        chosen_ids = [alive[cands[p]] for p in picks]
        state_value, last_cut = float(scores[picks[0]]), alive.index(chosen_ids[0])
        for n_done, orig in enumerate(chosen_ids):
            best = alive.index(orig)
            k = len(alive)
            order.append(alive.pop(best))
            engine.delete(best)
            chosen = lp[picks[0]] if n_done == 0 else None  # the new state's log-probs, when scored
            state = chosen if chosen is not None and not torch.isnan(chosen).any() else engine.state_logprobs()
            for key, v in traces_from_state(state, k - 1).items():
                traces[key].append(v)
            step += 1
            if on_step is not None:
                on_step(step, n_steps)
            bar.update(1)
    bar.close()
    elapsed = time.perf_counter() - t0
    return PruneResult(
        example_id=example.id, method="greedy", objective=obj.name,
        token_ids=enc.reasoning_ids.tolist(), tokens=list(enc.reasoning_pieces), deletion_order=order,
        traces={k: traces[k] for k in TRACE_KEYS}, candidate_scores=matrix,
        example=example.to_dict(), metadata=run_metadata(pruner, enc, obj.name, scorer=engine.name,
                                                         strategy=strategy, elapsed_s=elapsed,
                                                         tokens_computed=engine.tokens_computed),
    )


def run_metadata(pruner: Pruner, enc, objective: str, **extra) -> dict:
    """Provenance shared by greedy pruning and the baselines."""
    return {
        "model": pruner.name, "model_source": pruner.source, "weights_hash": pruner.weights_hash,
        "model_type": pruner.model.config.model_type, "tokenizer": type(pruner.tokenizer).__name__,
        "dtype": str(pruner.dtype).replace("torch.", ""), "device": str(pruner.device),
        "objective": objective, "template": enc.template, "prefix_tokens": enc.reasoning_start,
        "suffix_tokens": len(enc.input_ids) - enc.reasoning_end, "pruneprobe_version": __version__,
        "torch_version": torch.__version__, **extra,
    }


def _progress(enabled: bool, total: int, name: str):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"steps {name}", leave=False, unit="del")


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass
