"""Greedy pruning: delete, one at a time, the reasoning token whose removal costs the least.

Canonical pattern::

    from pruneprobe import Example, greedy_prune, load_pruner
    pruner = load_pruner("smollm2-135m")
    result = greedy_prune(pruner, example, objective="joint")   # prune to the end
    result.pruned_text(0.7)

Strategies (``pruneprobe.core.strategies``): ``Exact()`` (default; every kept token re-scored at
every step, the whole candidate-score matrix filled), and the approximations ``Shortlist(...)``
(score exactly only the best-estimated candidates) and ``Multi(...)`` (several deletions per
scoring). The string forms ``strategy="shortlist", window=16, reach=8`` still work.

Scorers: ``"fast"`` (default, exact suffix-only recomputation, see ``fastscore``) or ``"naive"``
(full recompute; the reference). Ties go to the earliest token; deleting either of two neighbouring
equal tokens leaves the same sequence, and the two get the same score (``equal_scores_for_equal_sequences``).
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from pruneprobe._version import __version__
from pruneprobe.core.checkpoint import SavedSteps, StepCheckpoint, checkpoint_key
from pruneprobe.core.cost import DEFAULT_MAX_HOURS, check_max_hours, estimate_cost, planned_steps, refuse_if_too_costly
from pruneprobe.core.encoding import EncodedExample, encode_example
from pruneprobe.core.exactness import check_metadata, make_scorer
from pruneprobe.core.result import TRACE_KEYS, PruneResult
from pruneprobe.core.scoring import Objective, resolve_objective, traces_from_state
from pruneprobe.core.strategies import STRATEGIES, Exact, Multi, Shortlist, Strategy, resolve_strategy
from pruneprobe.data.examples import Example
from pruneprobe.data.models import Pruner, as_pruner
from pruneprobe.errors import PruneprobeError

__all__ = ["STRATEGIES", "Exact", "GreedyRun", "Multi", "Shortlist", "TokenEffects",
           "equal_scores_for_equal_sequences", "greedy_prune", "run_metadata", "score_shortlist"]


def greedy_prune(
    pruner,
    example: Example,
    objective="joint",
    keep_ratio: float | None = None,
    *,
    max_steps: int | None = None,
    scorer: str = "fast",
    scorer_check: str = "warn",
    strategy: Strategy | str = "exact",
    batch_tokens: int | None = None,
    reuse_across_steps: bool | None = None,
    progress: bool = False,
    on_step: Callable[[int, int], None] | None = None,
    max_hours: float | None = DEFAULT_MAX_HOURS,
    checkpoint: str | Path | None = None,
    checkpoint_every_s: float = 60.0,
    **strategy_keywords,
) -> PruneResult:
    """Greedily prune ``example``'s reasoning with ``pruner``; return a ``PruneResult``.

    ``keep_ratio=None`` prunes every token (a full ranking); ``keep_ratio=0.7`` stops when 70% of
    the reasoning tokens remain. ``objective`` is ``"joint"``, ``"answer"`` or a callable
    ``f(logprobs, n_reasoning)`` over the log-probs of the kept reasoning then the suffix.
    ``strategy`` is ``Exact()`` (default), ``Shortlist(...)`` or ``Multi(...)``, or a name with the
    old keywords (``strategy="shortlist", window=16, reach=8``; see ``core.strategies``).
    ``scorer="fast"`` is first checked against the naive scorer, once per pruner: on a mismatch
    ``scorer_check="warn"`` falls back to naive with a warning, ``"raise"`` raises, ``"off"`` skips
    the check. ``metadata["scorer"]`` is the scorer that ran, ``metadata["scorer_check_max_diff"]``
    the check's largest log-prob difference (``None``: not run). ``reuse_across_steps``: the fast
    scorer keeps each candidate's suffix states from one full scoring to the next and recomputes only
    past the last deletion (exact; ``None``: on a CPU, not on CUDA; ``core.resume``); its resumed rows
    are checked against a full recompute at the chain's first scoring that resumes any
    (``metadata["resumed_check_max_diff"]``; on a mismatch reuse is turned off, as ``scorer_check`` says).
    Before scoring, the cost is estimated from the encoded lengths and the pruner's measured
    throughput (``pruneprobe.core.cost``); a chain estimated over ``max_hours`` (default 3 h) is refused
    with an error naming the ways out (``max_hours=None``: no limit). ``checkpoint``: a file where the
    steps done so far are saved every ``checkpoint_every_s`` seconds, so the same call resumes there after
    a kill (exact strategy; ``core.checkpoint``); removed when the pruning returns.
    """
    pruner = as_pruner(pruner)
    obj = resolve_objective(objective)
    plan = resolve_strategy(strategy, **strategy_keywords)
    check_max_hours(max_hours)
    enc = encode_example(pruner, example)
    n_steps = planned_steps(enc.n_reasoning, keep_ratio, max_steps)
    if max_hours is not None:
        refuse_if_too_costly(estimate_cost(pruner, enc, n_steps, plan, scorer, reuse_across_steps=reuse_across_steps),
                             max_hours, example.id)
    engine = make_scorer(pruner, scorer, batch_tokens, answer_only=not obj.needs_reasoning_logprobs, check=scorer_check,
                         reuse_across_steps=reuse_across_steps)
    steps = _checkpoint(checkpoint, checkpoint_every_s, pruner, enc, example.id, obj, plan, n_steps, engine.name)
    run = GreedyRun.start(engine, enc, obj, plan, n_steps, example.id, steps)
    run.prune(step_bar(progress, n_steps, example.id, initial=len(run.order)), on_step)
    resumed = {} if run.resumed_from is None else {"resumed_from_step": run.resumed_from}
    result = PruneResult(
        example_id=example.id, method="greedy", objective=obj.name,
        token_ids=enc.reasoning_ids.tolist(), tokens=list(enc.reasoning_pieces), deletion_order=run.order,
        traces={k: run.traces[k] for k in TRACE_KEYS}, candidate_scores=run.matrix,
        example=example.to_dict(), metadata=run_metadata(pruner, enc, obj.name, scorer=engine.name,
                                                         strategy=plan.name, elapsed_s=run.elapsed_s,
                                                         tokens_computed=run.tokens_computed,
                                                         reuse_across_steps=getattr(engine, "reuse_across_steps", False),
                                                         **check_metadata(engine.check, getattr(engine, "resumed_check", None)),
                                                         **resumed),
    )
    if steps is not None:
        steps.remove()
    return result


def _checkpoint(path, every_s: float, pruner: Pruner, enc: EncodedExample, example_id: str, objective: Objective,
                strategy: Strategy, n_steps: int, scorer: str) -> StepCheckpoint | None:
    """The step checkpoint at ``path`` keyed by what shapes the pruning (exact strategy only; else ``None``)."""
    if path is None or not isinstance(strategy, Exact):
        return None
    key = checkpoint_key(example_id, enc.reasoning_ids.tolist(), objective=objective.name, strategy=strategy.name,
                         n_steps=n_steps, model=pruner.name, weights=pruner.weights_hash, dtype=pruner.dtype,
                         device=pruner.device.type, scorer=scorer, version=__version__)
    return StepCheckpoint(Path(path), key, every_s)


@dataclass
class GreedyRun:
    """One greedy pruning in progress: the scorer, what is kept, and what has been recorded.

    ``alive`` holds the original indices of the kept tokens in order; ``matrix[t, i]`` the score of
    deleting token ``i`` at step ``t`` (NaN where not scored); ``effects`` the stale per-token
    effects the shortlist strategy estimates from (``None`` for the others)."""

    engine: object
    enc: EncodedExample
    objective: Objective
    strategy: Strategy
    n_steps: int
    example_id: str
    alive: list[int]
    order: list[int]
    traces: dict[str, list]
    matrix: np.ndarray
    effects: TokenEffects | None
    checkpoint: StepCheckpoint | None = None  # saved after every step (``core.checkpoint``)
    resumed_from: int | None = None  # the steps a checkpoint brought
    spent: tuple[float, int] = (0.0, 0)  # their seconds and tokens
    t0: float = field(default_factory=time.perf_counter)

    @property
    def elapsed_s(self) -> float:
        return self.spent[0] + time.perf_counter() - self.t0

    @property
    def tokens_computed(self) -> int:
        return self.spent[1] + self.engine.tokens_computed

    @classmethod
    def start(cls, engine, enc: EncodedExample, objective: Objective, strategy: Strategy, n_steps: int,
              example_id: str, checkpoint: StepCheckpoint | None = None) -> GreedyRun:
        """Reset ``engine`` to the full chain and record its traces; with the steps a ``checkpoint`` saved,
        to the chain without the tokens they deleted, their records taken over (and saved there again)."""
        t0, r = time.perf_counter(), enc.n_reasoning
        saved = checkpoint.load() if checkpoint is not None else None
        if saved is not None and not _fits(saved, r, n_steps):
            raise PruneprobeError(f"example {example_id!r}: the checkpoint's steps do not fit this chain "
                                  f"({len(saved.order)} steps of {n_steps}, rows {saved.rows.shape}); delete it")
        done = saved.order if saved is not None else []
        alive = sorted(set(range(r)) - set(done))
        engine.reset(enc.prefix_ids, enc.reasoning_ids[alive] if done else enc.reasoning_ids, enc.suffix_ids)
        matrix = np.full((n_steps, r), np.nan)
        if saved is not None:
            traces = {k: list(saved.traces[k]) for k in TRACE_KEYS}
            matrix[: len(done)] = saved.rows
        else:
            traces = {k: [v] for k, v in traces_from_state(engine.state_logprobs(), r).items()}
        effects = TokenEffects(r, len(enc.suffix_ids), strategy.reach) if isinstance(strategy, Shortlist) else None
        return cls(engine, enc, objective, strategy, n_steps, example_id, alive=alive, order=list(done),
                   traces=traces, matrix=matrix, effects=effects, checkpoint=checkpoint, t0=t0,
                   resumed_from=len(done) if saved else None, spent=(saved.seconds, saved.tokens) if saved else (0.0, 0))

    def prune(self, bar, on_step: Callable[[int, int], None] | None = None) -> None:
        """Score and delete until ``n_steps`` deletions are made (from the steps already made on)."""
        step = len(self.order)
        while step < self.n_steps:
            cands, lp, scores = self.score(step)
            picks = [int(np.argmax(scores))]  # first maximum: ties go to the earliest token
            if isinstance(self.strategy, Multi):
                m = self.strategy.deletions(len(self.alive), self.n_steps - step)
                picks = np.argsort(-scores, kind="stable")[:m].tolist()
            for n_done, orig in enumerate([self.alive[cands[p]] for p in picks]):
                self.delete(orig, lp[picks[0]] if n_done == 0 else None, step)
                step += 1
                if self.checkpoint is not None:
                    self.checkpoint.save(self.order, self.traces, self.matrix, self.elapsed_s, self.tokens_computed)
                if on_step is not None:
                    on_step(step, self.n_steps)
                bar.update(1)
        bar.close()

    def score(self, step: int) -> tuple[list[int], torch.Tensor, np.ndarray]:
        """Score this step's candidates (indices into ``alive``); record their scores and effects."""
        engine, obj, k = self.engine, self.objective, len(self.alive)
        if not isinstance(self.strategy, Shortlist) or self.strategy.scores_all(step, k):
            cands = list(range(k))
            lp = engine.candidate_logprobs(cands)
        else:  # rank by fresh log-probs up to the window, stale per-token effects past it
            estimate = obj.scores(self.effects.estimate(engine, self.alive, self.strategy.window), k - 1).numpy()
            cands, lp = score_shortlist(engine, lambda lp: obj.scores(lp, k - 1), estimate,
                                        self.strategy.size_for(k), self.strategy.first, self.strategy.margin)
        scores = obj.scores(lp, k - 1).numpy()
        if not np.all(np.isfinite(scores)):
            bad = self.alive[cands[int(np.flatnonzero(~np.isfinite(scores))[0])]]
            raise PruneprobeError(
                f"example {self.example_id!r}: non-finite score (NaN or inf) at step {step + 1} for reasoning "
                f"token {bad} ({self.enc.reasoning_pieces[bad]!r}); check the model's dtype and weights"
            )
        scores = equal_scores_for_equal_sequences(scores, cands, self.alive, self.enc.reasoning_ids)
        if self.effects is not None:
            self.effects.record(lp, cands, self.alive, engine.state_logprobs(), step)
        for c, sc in zip(cands, scores):
            self.matrix[step, self.alive[c]] = sc
        return cands, lp, scores

    def delete(self, original_index: int, scored: torch.Tensor | None, step: int) -> None:
        """Delete a token and record the new state's traces (from ``scored``, its candidate
        log-probs, when they were computed in full)."""
        best = self.alive.index(original_index)
        k = len(self.alive)
        self.order.append(self.alive.pop(best))
        if self.effects is not None:
            self.effects.deleted(original_index, step)
        self.engine.delete(best)
        state = scored if scored is not None and not torch.isnan(scored).any() else self.engine.state_logprobs()
        for key, v in traces_from_state(state, k - 1).items():
            self.traces[key].append(v)


def equal_scores_for_equal_sequences(scores: np.ndarray, cands: list[int], alive: list[int],
                                     token_ids) -> np.ndarray:
    """Deleting either of two neighbouring equal tokens leaves the same sequence, so the later one takes
    the earlier one's score: the tie then goes to the earlier token whatever the rounding of two separate
    computations (which differ by ~1e-6 and used to decide it, differently after a resume).

    >>> equal_scores_for_equal_sequences(np.array([1.0, 2.0, 2.000001, 0.5]), [0, 1, 2, 3], [0, 1, 2, 3],
    ...                                  np.array([5, 7, 7, 9]))
    array([1. , 2. , 2. , 0.5])
    """
    out = np.array(scores, dtype=float, copy=True)
    for j in range(1, len(cands)):
        if cands[j] == cands[j - 1] + 1 and token_ids[alive[cands[j]]] == token_ids[alive[cands[j - 1]]]:
            out[j] = out[j - 1]
    return out


def _fits(saved: SavedSteps, n_reasoning: int, n_steps: int) -> bool:
    order = saved.order
    return (len(order) <= n_steps and len(set(order)) == len(order) and all(0 <= i < n_reasoning for i in order)
            and saved.rows.shape == (len(order), n_reasoning))


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


def step_bar(enabled: bool, total: int, name: str, initial: int = 0):
    """A progress bar over deletions (``steps <name>``), or one that does nothing."""
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"steps {name}", leave=False, unit="del")


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass
