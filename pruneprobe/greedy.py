"""Greedy pruning: delete, one at a time, the reasoning token whose removal costs the least.

Canonical pattern::

    from pruneprobe import Example, greedy_prune, load_pruner
    pruner = load_pruner("smollm2-135m")
    result = greedy_prune(pruner, example, objective="joint")   # prune to the end
    result.pruned_text(0.7)

Strategies:
- ``"exact"`` (default): every kept token is re-scored at every step; fills the whole
  candidate-score matrix. The rank-dynamics analysis needs it.
- ``"shortlist"``: scores exactly only candidates with the best estimate, and deletes the best
  of them: first the best ``shortlist_first`` (4), then, in a second forward, those with an
  estimate within ``margin`` (5 nats) of the best exact score so far, up to a third of the ``k``
  kept tokens (``shortlist_fraction``) but at least ``shortlist // 2`` and at most ``shortlist``
  (16) in all (``shortlist_first=None``: all of those at once); every candidate is scored at
  the first step and every ``refresh_every`` steps (25; ``None``: only the first). The estimate: the cached
  log-prob of the token after the cut given the tokens before it, then each later kept token's
  current log-prob plus the change the candidate's deletion made to it when last scored exactly
  (``TokenEffects``); where a deletion since then fell within ``reach`` (4) kept tokens of the
  cut, the ``window`` (2) tokens past it are recomputed in one packed forward. An approximation:
  long-range interactions (a token that stops mattering once a far token goes) are invisible to
  it; ``window=16, reach=8`` catches most of them, at a cost in speed. Its fidelity to exact is
  measured in ``benchmarks/greedy_speed.py`` (README); the category and regression analyses take
  it, the rank-dynamics analysis does not (unscored entries are NaN).
- ``"multi"``: one full scoring, then the ``max(1, floor(multi_fraction * k))`` best candidates
  are deleted (best first) while ``k`` tokens remain; rows of the extra deletions are NaN. Also an
  approximation, measured the same way. Traces are exact for the sequence actually deleted.

Scorers: ``"fast"`` (default, exact suffix-only recomputation, see ``fastscore``) or ``"naive"``
(full recompute; the reference). Ties go to the earliest token.
"""

from __future__ import annotations

import bisect
import math
import time
from typing import Callable

import numpy as np
import torch

from . import __version__
from .cost import DEFAULT_MAX_HOURS, check_max_hours, estimate_cost, planned_steps, refuse_if_too_costly
from .data import Example
from .encoding import encode_example
from .errors import PruneprobeError
from .exactness import check_metadata
from .fastscore import make_scorer
from .models import Pruner
from .result import TRACE_KEYS, PruneResult
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
    scorer_check: str = "warn",
    strategy: str = "exact",
    shortlist: int = 16,
    shortlist_fraction: float = 1 / 3,
    refresh_every: int | None = 25,
    window: int = 2,
    reach: int | None = 4,
    shortlist_first: int | None = 4,
    margin: float = 5.0,
    multi_fraction: float = 0.05,
    batch_tokens: int | None = None,
    progress: bool = False,
    on_step: Callable[[int, int], None] | None = None,
    max_hours: float | None = DEFAULT_MAX_HOURS,
) -> PruneResult:
    """Greedily prune ``example``'s reasoning with ``pruner``; return a ``PruneResult``.

    ``keep_ratio=None`` prunes every token (a full ranking); ``keep_ratio=0.7`` stops when 70% of
    the reasoning tokens remain. ``objective`` is ``"joint"``, ``"answer"`` or a callable
    ``f(logprobs, n_reasoning)`` over the log-probs of the kept reasoning then the suffix.
    ``scorer="fast"`` is first checked against the naive scorer, once per pruner: on a mismatch
    ``scorer_check="warn"`` falls back to naive with a warning, ``"raise"`` raises, ``"off"`` skips
    the check. ``metadata["scorer"]`` is the scorer that ran, ``metadata["scorer_check_max_diff"]``
    the check's largest log-prob difference (``None``: not run).
    Before scoring, the cost is estimated from the encoded lengths and the pruner's measured
    throughput (``pruneprobe.cost``); a chain estimated over ``max_hours`` (default 3 h) is refused
    with an error naming the ways out (``max_hours=None``: no limit).
    """
    pruner = as_pruner(pruner)
    obj = resolve_objective(objective)
    if strategy not in STRATEGIES:
        raise PruneprobeError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")
    if not 0 < shortlist_fraction <= 1 or shortlist < 1:
        raise PruneprobeError(f"need shortlist >= 1 and shortlist_fraction in (0, 1], got {shortlist!r}, {shortlist_fraction!r}")
    if refresh_every is not None and refresh_every < 1:
        raise PruneprobeError(f"refresh_every must be >= 1 or None (score every candidate only at the first step), got {refresh_every!r}")
    if window < 0 or (reach is not None and reach < 0):
        raise PruneprobeError(f"need window >= 0 and reach >= 0 or None, got window={window!r}, reach={reach!r}")
    if (shortlist_first is not None and shortlist_first < 1) or not margin >= 0:
        raise PruneprobeError(f"need shortlist_first >= 1 or None and margin >= 0, got {shortlist_first!r}, {margin!r}")
    if not 0 < multi_fraction < 1:
        raise PruneprobeError(f"multi_fraction must be in (0, 1), got {multi_fraction!r}")
    check_max_hours(max_hours)
    enc = encode_example(pruner, example)
    r = enc.n_reasoning
    n_steps = planned_steps(r, keep_ratio, max_steps)
    if max_hours is not None:
        cost = estimate_cost(pruner, enc, n_steps, strategy, scorer, shortlist=shortlist,
                             shortlist_fraction=shortlist_fraction, refresh_every=refresh_every,
                             multi_fraction=multi_fraction)
        refuse_if_too_costly(cost, max_hours, example.id)
    engine = make_scorer(pruner, scorer, batch_tokens, answer_only=not obj.needs_reasoning_logprobs, check=scorer_check)
    t0 = time.perf_counter()
    engine.reset(enc.prefix_ids, enc.reasoning_ids, enc.suffix_ids)
    alive = list(range(r))  # original indices of kept tokens, in order
    traces = {k: [v] for k, v in traces_from_state(engine.state_logprobs(), r).items()}
    matrix = np.full((n_steps, r), np.nan)
    order: list[int] = []
    effects = TokenEffects(r, len(enc.suffix_ids), reach)  # shortlist strategy: stale per-token effects
    bar = _progress(progress, n_steps, example.id)
    step = 0
    while step < n_steps:
        k = len(alive)
        size = shortlist_size(k, shortlist, shortlist_fraction)
        full = strategy != "shortlist" or step == 0 or bool(refresh_every and step % refresh_every == 0) or k <= size
        if full:
            cands = list(range(k))
            lp = engine.candidate_logprobs(cands)
        else:  # rank by fresh log-probs up to the window, stale per-token effects past it
            estimate = obj.scores(effects.estimate(engine, alive, window), k - 1).numpy()
            cands, lp = score_shortlist(engine, lambda lp: obj.scores(lp, k - 1), estimate, size, shortlist_first, margin)
        scores = obj.scores(lp, k - 1).numpy()
        if not np.all(np.isfinite(scores)):
            bad = alive[cands[int(np.flatnonzero(~np.isfinite(scores))[0])]]
            raise PruneprobeError(
                f"example {example.id!r}: non-finite score (NaN or inf) at step {step + 1} for reasoning "
                f"token {bad} ({enc.reasoning_pieces[bad]!r}); check the model's dtype and weights"
            )
        if strategy == "shortlist":
            effects.record(lp, cands, alive, engine.state_logprobs(), step)
        for c, sc in zip(cands, scores):
            matrix[step, alive[c]] = sc
        picks = [int(np.argmax(scores))]  # first maximum: ties go to the earliest token
        if strategy == "multi":
            m = min(max(1, int(multi_fraction * k)), n_steps - step)
            picks = np.argsort(-scores, kind="stable")[:m].tolist()
        chosen_ids = [alive[cands[p]] for p in picks]
        for n_done, orig in enumerate(chosen_ids):
            best = alive.index(orig)
            k = len(alive)
            order.append(alive.pop(best))
            effects.deleted(orig, step)
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
                                                         tokens_computed=engine.tokens_computed,
                                                         **check_metadata(engine.check)),
    )


def score_shortlist(engine, score, estimate: np.ndarray, size: int, first: int | None, margin: float):
    """Score exactly the ``first`` candidates with the best estimate, then those of the best
    ``size`` whose estimate comes within ``margin`` of the best exact score found (one more
    forward); ``first=None``: all ``size`` at once. Returns sorted candidates and their log-probs.
    """
    ranked = np.argsort(-estimate, kind="stable")[:size]
    take = len(ranked) if first is None else min(first, len(ranked))
    cands = sorted(ranked[:take].tolist())
    lp = engine.candidate_logprobs(cands)
    rest = ranked[take:]
    if len(rest):
        best = float(score(lp).max())
        more = rest[estimate[rest] >= best - margin].tolist()
        if more:  # a second round; later rounds would add nothing (the best only rises)
            cands, lp = cands + more, torch.cat([lp, engine.candidate_logprobs(more)])
            order = np.argsort(cands, kind="stable")
            cands, lp = [cands[i] for i in order], lp[torch.from_numpy(order)]
    return cands, lp


def shortlist_size(k: int, shortlist: int, fraction: float) -> int:
    """Candidates the shortlist strategy scores exactly with ``k`` kept tokens.

    >>> [shortlist_size(k, 16, 1 / 3) for k in (90, 40, 30, 12)]
    [16, 14, 10, 8]
    """
    return min(shortlist, max(shortlist // 2, math.ceil(fraction * k)))


class TokenEffects:
    """For the shortlist strategy: how deleting each reasoning token changed every later token's
    log-prob, when that token was last scored exactly (stale, indexed by original position).

    A candidate's estimate keeps those effects on the tokens still kept and drops its effect on
    tokens deleted since: once a later copy of a pattern is gone, the earlier copy stops paying
    for the induction it fed, and its estimate rises with it. Where a deletion came within
    ``reach`` kept tokens of a candidate since it was last scored, its neighbourhood changed
    (arithmetic read across the gap: "$460" becoming "$60"), so the ``window`` tokens past its
    cut are recomputed (``reach=None``: for every candidate).
    """

    def __init__(self, n_reasoning: int, n_suffix: int, reach: int | None = 4):
        self.n_reasoning, self.n_suffix, self.reach = n_reasoning, n_suffix, reach
        self.delta = np.zeros((n_reasoning, n_reasoning + n_suffix))
        self.scored_at = np.full(n_reasoning, -1)  # step at which each token was last scored exactly
        self.deletions: list[tuple[int, int]] = []  # (original index, step)

    def _targets(self, alive: list[int]) -> np.ndarray:
        """Original index of the token at each position ``v`` of a candidate vector past its cut."""
        return np.array(alive[1:] + list(range(self.n_reasoning, self.n_reasoning + self.n_suffix)))

    def record(self, logprobs: torch.Tensor, cands: list[int], alive: list[int], state: torch.Tensor, step: int) -> None:
        lp, shifted = logprobs.double().numpy(), state[1:].double().numpy()[None, :]
        past_cut = np.arange(lp.shape[1])[None, :] >= np.array(cands)[:, None]
        rows = [alive[c] for c in cands]
        self.delta[np.ix_(rows, self._targets(alive))] = np.where(past_cut, lp - shifted, 0.0)
        self.scored_at[rows] = step

    def deleted(self, original_index: int, step: int) -> None:
        self.deletions.append((original_index, step))

    def changed_near(self, alive: list[int]) -> list[int]:
        """Candidates (indices into ``alive``) with a deletion within ``reach`` kept tokens since
        they were last scored exactly."""
        if self.reach is None:
            return list(range(len(alive)))
        last, near = self.scored_at[alive], np.zeros(len(alive), dtype=bool)
        for gone, step in self.deletions:
            at = bisect.bisect_left(alive, gone)  # where the deleted token sat among the kept ones
            lo, hi = max(at - self.reach, 0), at + self.reach
            near[lo:hi] |= last[lo:hi] <= step
        return np.flatnonzero(near).tolist()

    def estimate(self, engine, alive: list[int], window: int) -> torch.Tensor:
        """Every candidate's vector: exact log-probs up to its cut (cached), ``window`` tokens past it
        where its neighbourhood changed (one small forward), the current state's log-probs after
        that, plus the stale effects past the exact part."""
        local = engine.candidate_logprobs(None, max_suffix=0).double()
        windows = np.zeros(len(alive), dtype=np.int64)
        near = self.changed_near(alive) if window else []
        if near:
            local[near] = engine.candidate_logprobs(near, max_suffix=window).double()
            windows[near] = window
        stale = self.delta[np.ix_(alive, self._targets(alive))]
        far = np.arange(local.shape[1])[None, :] > np.arange(len(alive))[:, None] + windows[:, None]
        return local + torch.from_numpy(np.where(far, stale, 0.0))


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
