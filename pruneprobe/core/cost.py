"""What greedy pruning will cost, known before it is spent.

Canonical pattern::

    from pruneprobe.core.cost import estimate_greedy_cost
    cost = estimate_greedy_cost(pruner, example, keep_ratio=None)   # a full ranking
    print(cost)   # ~3.6e+10 token-forwards, about 83 d at 5,000 tokens/s (exact, 6000 deletions of ...)

Exact pruning scores every kept token at every step, and the fast scorer recomputes each
candidate's suffix: with ``k`` kept tokens and ``T`` tokens after the reasoning a step costs about
``k²/2 + kT`` token-forwards, so a full ranking of ``R`` tokens costs about ``R³/6 + R²T/2`` (the
naive scorer recomputes whole sequences: ``k`` times the sequence length per step). With
cross-step reuse (``core.resume``, the CPU default) a step resumes the candidates left of the last
deletion past it: with that deletion uniform over the kept tokens it saves ``k(k-1)/6`` on average
(exact strategy; a full ranking then costs about ``R³/9 + R²T/2``). The counts come
from the encoded lengths step by step; the shortlist and multi strategies are estimated roughly
(shortlist: its exact candidates at the mean suffix length, full scoring at each refresh; multi:
a full scoring per round of deletions). Seconds are the count over the pruner's plain-forward
throughput, measured once per pruner (a timed forward, cached in ``pruner.info["tokens_per_s"]``;
set that key to skip the measurement): a rough figure, within a factor of about two of the run
(attention over long prefixes makes long chains slower per token).

``greedy_prune`` refuses a chain whose estimate exceeds ``max_hours`` (default
``DEFAULT_MAX_HOURS``) before it scores anything; ``max_hours=None`` (CLI ``--max-hours 0``)
lifts the limit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from pruneprobe.core.encoding import encode_example
from pruneprobe.core.result import n_keep_for
from pruneprobe.core.resume import reuse_by_default
from pruneprobe.core.strategies import Exact, Multi, Shortlist, Strategy, resolve_strategy
from pruneprobe.data.models import as_pruner
from pruneprobe.errors import PruneprobeError

DEFAULT_MAX_HOURS = 3.0
STATE_OVERHEAD = 0.5  # per deletion: the new state's tail, recomputed from the cut (half the chain on average)


@dataclass(frozen=True)
class CostEstimate:
    """Token-forwards a greedy pruning needs and the seconds they take at ``tokens_per_s``."""

    n_reasoning: int
    n_steps: int
    strategy: str
    scorer: str
    token_forwards: float
    tokens_per_s: float

    @property
    def seconds(self) -> float:
        return self.token_forwards / self.tokens_per_s

    @property
    def hours(self) -> float:
        return self.seconds / 3600

    def __str__(self) -> str:
        return (f"~{self.token_forwards:.2g} token-forwards, about {format_duration(self.seconds)} at "
                f"{self.tokens_per_s:,.0f} tokens/s ({self.strategy}, {self.n_steps} deletions of "
                f"{self.n_reasoning} reasoning tokens)")


def format_duration(seconds: float) -> str:
    """A short human duration.

    >>> [format_duration(s) for s in (4.2, 150, 7200, 4e6)]
    ['4 s', '2.5 min', '2.0 h', '46 d']
    """
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"


def count_token_forwards(n_prefix: int, n_reasoning: int, n_suffix: int, n_steps: int,
                         strategy: Strategy | str = "exact", scorer: str = "fast", *, reuse: bool = False,
                         **strategy_keywords) -> float:
    """Token-forwards of ``n_steps`` deletions from ``n_reasoning`` tokens (see the module docstring).

    ``strategy`` is a strategy object or a name with the old keywords, as in ``greedy_prune``;
    ``reuse``: the fast scorer reuses states across steps (counted for the exact strategy).

    >>> round(count_token_forwards(50, 600, 12, 600) / (600 ** 3 / 6), 2)  # a full ranking: about R³/6
    1.06
    """
    plan = resolve_strategy(strategy, **strategy_keywords)
    p, t = n_prefix, n_suffix
    total, k, step = float(p + n_reasoning + t), n_reasoning, 0

    def full(k: int) -> float:  # every candidate scored exactly
        if scorer == "naive":
            return k * (p + k - 1 + t)
        m = k + t - 2  # the fast scorer recomputes x[j+1 .. n-2] for candidate j
        c = min(k, max(m, 0))
        return c * m - c * (c - 1) / 2

    while step < n_steps:
        m = plan.deletions(k, n_steps - step) if isinstance(plan, Multi) else 1
        if isinstance(plan, Shortlist) and not plan.scores_all(step, k):
            per = (p + k + t) if scorer == "naive" else (k / 2 + t)
            total += plan.size_for(k) * per
        else:
            total += full(k)
            if reuse and scorer == "fast" and step and isinstance(plan, Exact):  # resumed: k(k-1)/6 on average
                total -= min(k * (k - 1) / 6, full(k))
        total += m * (p + k + t if scorer == "naive" else STATE_OVERHEAD * k + t)
        k, step = k - m, step + m
    return total


def measure_throughput(pruner, refresh: bool = False) -> float:
    """Plain-forward tokens per second of ``pruner`` (cached in ``pruner.info["tokens_per_s"]``).

    A warm-up, then the best of two timed forwards of 256 tokens (CPU) or 8 x 512 (CUDA, where
    small batches are latency-bound); about a second for a 135M model on an idle CPU."""
    cached = pruner.info.get("tokens_per_s")
    if cached and not refresh:
        return float(cached)
    model = pruner.model
    rows, length = (8, 512) if pruner.device.type == "cuda" else (1, 256)
    length = max(8, min(length, pruner.max_length))
    vocab = int(getattr(model.config, "vocab_size", 0) or 1000)
    ids = (torch.arange(rows * length) * 7919 % max(vocab - 1, 1) + 1).reshape(rows, length).to(pruner.device)
    times = []
    with torch.no_grad():
        for _ in range(3):  # a warm-up, then the best of two (a busy machine slows single forwards)
            start = time.perf_counter()
            model(input_ids=ids, use_cache=False)
            if pruner.device.type == "cuda":
                torch.cuda.synchronize(pruner.device)
            times.append(time.perf_counter() - start)
    pruner.info["tokens_per_s"] = rows * length / max(min(times[1:]), 1e-6)
    return pruner.info["tokens_per_s"]


def estimate_cost(pruner, enc, n_steps: int, strategy: Strategy | str = "exact", scorer: str = "fast", *,
                  reuse_across_steps: bool | None = None, **strategy_keywords) -> CostEstimate:
    """The cost of ``n_steps`` deletions on an encoded example (``encoding.EncodedExample``);
    ``reuse_across_steps`` as for ``greedy_prune`` (``None``: the pruner's device's default)."""
    plan = resolve_strategy(strategy, **strategy_keywords)
    reuse = reuse_by_default(pruner.device) if reuse_across_steps is None else reuse_across_steps
    n = count_token_forwards(enc.reasoning_start, enc.n_reasoning, len(enc.suffix_ids), n_steps, plan, scorer,
                             reuse=reuse)
    return CostEstimate(enc.n_reasoning, n_steps, plan.name, scorer, n, measure_throughput(pruner))


def estimate_greedy_cost(pruner, example, keep_ratio: float | None = None, *, max_steps: int | None = None,
                         strategy: Strategy | str = "exact", scorer: str = "fast", reuse_across_steps: bool | None = None,
                         **strategy_keywords) -> CostEstimate:
    """What ``greedy_prune`` with the same arguments would cost; nothing is scored."""
    pruner = as_pruner(pruner)
    enc = encode_example(pruner, example)
    return estimate_cost(pruner, enc, planned_steps(enc.n_reasoning, keep_ratio, max_steps), strategy, scorer,
                         reuse_across_steps=reuse_across_steps, **strategy_keywords)


def planned_steps(n_reasoning: int, keep_ratio: float | None, max_steps: int | None) -> int:
    """Deletions ``greedy_prune`` makes: to ``keep_ratio`` (``None``: all), at most ``max_steps``."""

    n = n_reasoning if keep_ratio is None else n_reasoning - n_keep_for(keep_ratio, n_reasoning)
    return n if max_steps is None else min(n, max_steps)


def check_max_hours(max_hours) -> None:
    if max_hours is not None and (isinstance(max_hours, bool) or not isinstance(max_hours, (int, float))
                                  or not max_hours > 0):
        raise PruneprobeError(f"max_hours must be a positive number of hours or None (no limit), got {max_hours!r}")


def refuse_if_too_costly(cost: CostEstimate, max_hours: float | None, example_id: str) -> None:
    """Raise, naming the chain length, the estimate and the ways out, when it exceeds ``max_hours``."""
    check_max_hours(max_hours)
    if max_hours is None or cost.hours <= max_hours:
        return
    raise PruneprobeError(
        f"example {example_id!r}: pruning its {cost.n_reasoning} reasoning tokens would take about "
        f"{cost.hours:.1f} h ({cost}), over the limit of {max_hours:g} h; use strategy='shortlist' "
        "(--strategy shortlist), make fewer deletions with max_steps or keep_ratio (--keep), or lift the "
        "limit with max_hours=None or a larger max_hours (--max-hours H; --max-hours 0: no limit)"
    )


class RunCosts:
    """Per-example estimates of a run's remaining greedy examples, for its progress display.

    ``summary()`` is the line shown at the start; ``postfix(example_id)`` the estimate of that
    example and the ETA of it and the ones after it (examples over the limit count as refused)."""

    def __init__(self, estimates: dict[str, CostEstimate | None], max_hours: float | None):
        self.estimates, self.max_hours = estimates, max_hours

    @classmethod
    def plan(cls, pruner, examples, keep_ratio: float | None, strategy: Strategy | str, scorer: str,
             max_hours: float | None) -> RunCosts:
        """Encode each example (cheap) and estimate it; ``None`` where it cannot be encoded."""
        estimates: dict[str, CostEstimate | None] = {}
        for ex in examples:
            try:
                enc = encode_example(pruner, ex)
            except PruneprobeError:
                estimates[ex.id] = None
                continue
            estimates[ex.id] = estimate_cost(pruner, enc, planned_steps(enc.n_reasoning, keep_ratio, None),
                                             strategy, scorer)
        return cls(estimates, max_hours)

    def _runs(self, cost: CostEstimate | None) -> bool:
        return cost is not None and (self.max_hours is None or cost.hours <= self.max_hours)

    def summary(self) -> str:
        runs = [c for c in self.estimates.values() if self._runs(c)]
        over = [i for i, c in self.estimates.items() if c is not None and not self._runs(c)]
        seconds = sum(c.seconds for c in runs)
        line = f"estimated cost of {len(runs)} example(s): about {format_duration(seconds)}"
        if runs:
            line += f" ({sum(c.token_forwards for c in runs):.2g} token-forwards at {runs[0].tokens_per_s:,.0f} tokens/s)"
        if over:
            line += (f"; {len(over)} over the {self.max_hours:g} h limit will be refused (first: {over[0]!r}; "
                     "see --max-hours, --strategy shortlist, --keep)")
        return line

    def postfix(self, example_id: str) -> str:
        ids = list(self.estimates)
        if example_id not in self.estimates:
            return ""
        cost = self.estimates[example_id]
        rest = [self.estimates[i] for i in ids[ids.index(example_id):]]
        eta = sum(c.seconds for c in rest if self._runs(c))
        here = format_duration(cost.seconds) if cost is not None else "?"
        return f"~{here}, ETA {format_duration(eta)}"
