"""The fast scorer's self-check: is it exact for this model?

The fast scorer builds its own packed 4-D attention masks and reuses the model's cache, so a
model whose attention it misreads (a window it does not know of, a layout added to transformers
later) would get wrong scores with no error. Before it is trusted for a model, ``check_fast_scorer``
scores a short synthetic chain with it and with a full recompute of each sequence: three
candidates' vectors, the state after a deletion, a candidate on the answer-only path (optionally,
``reuse_across_steps=True``, a resumed candidate too: one forward more). The model's sliding window(s)
are shrunk to a few tokens meanwhile, so the chain crosses them. ``resolve_scorer`` runs the check once
per ``Pruner`` (cached on it) and, on a difference above ``tolerance_for(dtype)``, falls back to the
naive scorer with a warning, or raises. A scorer that reuses states across steps (``core.resume``) has
its resumed rows checked on the real chain instead, at each chain's first scoring that resumes any
(``ResumedRowsCheck``: one full forward of two sequences); on a difference reuse is turned off for
that model, with a warning, or it raises.

Gotchas: the cached result describes the model as it was checked; a model cast to another
dtype is checked again, but other changes afterwards (config, weights, attention implementation)
are the user's business: set ``pruner.scorer_check = None`` to re-check. A bare model (no
``Pruner``) is re-checked at every call.
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace

import torch

from pruneprobe.core.fastscore import FastScorer
from pruneprobe.core.resume import reuse_by_default
from pruneprobe.core.scoring import NaiveScorer, state_logprob_batch
from pruneprobe.data.models import Pruner
from pruneprobe.errors import PruneprobeError

logger = logging.getLogger(__name__)

CHECK_MODES = ("warn", "raise", "off")
CHECK_WINDOW = 3  # sliding windows are shrunk to this many tokens during the check


@dataclass(frozen=True)
class ScorerCheck:
    """The outcome of one self-check: largest ``|fast - naive|`` log-prob (nats) over every
    checked entry (``None`` when the fast scorer raised; ``error`` then says what)."""

    model_type: str
    dtype: str
    max_diff: float | None
    tolerance: float
    seconds: float
    error: str = ""
    covers_reuse: bool = False  # a candidate resumed across steps was checked too
    reuse_failed: bool = False  # a ``ResumedRowsCheck`` on a real chain failed since: no reuse for this model

    @property
    def passed(self) -> bool:
        return not self.error and self.max_diff is not None and self.max_diff <= self.tolerance

    @property
    def status(self) -> str:
        return "error" if self.error else "passed" if self.passed else "failed"

    def problem(self) -> str:
        """What went wrong, for the warning or the error."""
        if self.error:
            return f"the fast scorer failed on model type {self.model_type!r} ({self.error})"
        return (f"the fast scorer disagrees with the naive reference on model type {self.model_type!r} "
                f"({self.dtype}): largest difference {self.max_diff:.3g} nats > tolerance {self.tolerance:.3g}")


def check_metadata(check: ScorerCheck | None, resumed: ResumedRowsCheck | None = None) -> dict:
    """Result metadata: the check's status and largest difference, and the resumed rows' largest
    difference on this chain (``None``: not run, or no finite difference)."""
    def finite(x):
        return x if x is not None and math.isfinite(x) else None

    return {"scorer_check": check.status if check else None,
            "scorer_check_max_diff": finite(check.max_diff) if check else None,
            "resumed_check_max_diff": finite(resumed.max_diff) if resumed else None}


def tolerance_for(dtype: torch.dtype) -> float:
    """Largest ``|fast - naive|`` log-prob accepted: rounding, not structure (a wrong mask costs nats).

    In bf16 the packed and the full forward of SmolLM2-135M / Gemma-3-270M differ by up to 0.3 /
    0.4 nats on the check's chain; ignoring Gemma 3's (shrunk) window costs 13 nats.

    >>> tolerance_for(torch.float32), tolerance_for(torch.float16), tolerance_for(torch.bfloat16)
    (0.001, 0.25, 1.0)
    """
    if torch.finfo(dtype).bits >= 32:
        return 1e-3
    return 1.0 if dtype == torch.bfloat16 else 0.25


@contextmanager
def shrunk_windows(config, window: int = CHECK_WINDOW):
    """Temporarily set ``config.sliding_window`` to ``window`` when it is larger, so a short chain
    crosses it; restored on exit. Both scorers read it when they build masks, at forward time."""
    old = getattr(config, "sliding_window", None)
    shrink = isinstance(old, int) and not isinstance(old, bool) and old > window
    if shrink:
        config.sliding_window = window
    try:
        yield
    finally:
        if shrink:
            config.sliding_window = old


def _dtype_name(model) -> str:
    return str(next(model.parameters()).dtype).replace("torch.", "")


def _max_diff(fast: torch.Tensor, naive: torch.Tensor) -> float:
    """Largest absolute difference; NaN in one and not the other counts as infinite."""
    fast, naive = fast.double(), naive.double()
    if not torch.equal(torch.isnan(fast), torch.isnan(naive)):
        return math.inf
    both = ~torch.isnan(fast)
    return float((fast[both] - naive[both]).abs().max()) if both.any() else 0.0


def _synthetic_chain(model, n_prefix: int, n_kept: int, n_suffix: int, seed: int):
    """Random token ids from the middle of the vocabulary (ordinary tokens, not special ones)."""
    vocab = model.get_input_embeddings().num_embeddings
    lo, hi = vocab // 8, max(vocab // 2, vocab // 8 + 1)
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(lo, hi, (n,), generator=g) for n in (n_prefix, n_kept, n_suffix)]


@torch.no_grad()
def _compare(model, n_prefix: int, n_kept: int, n_suffix: int, seed: int, reuse: bool = False) -> float:
    """Largest difference between the fast scorer and a full recompute of each sequence, in three
    forwards (four with ``reuse``). (1) The state, with every reference sequence right-padded beside
    it (the naive recompute; the state's own row seeds the fast scorer's cache). (2) Packed
    candidates, the first, middle and last compared (two rows or more, the first one's suffix
    crossing the window); with ``reuse`` every candidate, the first one's states kept across steps
    (bounded to that one). Then the middle one is deleted (its packed suffix adopted, no forward)
    and the new state compared. (3) On the answer-only path, the new last candidate: one token whose
    keys include the adopted ones; with ``reuse`` every candidate of the new state, the first resumed
    from its kept keys past the deletion in a row of its own under the model's own masks (3), the
    others packed (4), the first and last compared.

    A small model on a CPU costs ~0.1-0.2 s a forward before its first token, so the check keeps
    to these. Recomputing after deleting a token that was not just scored uses the same machinery
    (a cached prefix under the model's own mask) and is left to the test suite."""

    def without(seq, j):
        return torch.cat([seq[:j], seq[j + 1 :]])

    prefix, kept, suffix = _synthetic_chain(model, n_prefix, n_kept, n_suffix, seed)
    k, mid = len(kept), len(kept) // 2
    cands, after = [0, mid, k - 1], without(kept, mid)
    rows = [without(kept, j) for j in cands] + [without(after, j) for j in ((0, k - 2) if reuse else (k - 2,))]
    fast = FastScorer(model, batch_tokens=4 * (n_kept + n_suffix), reuse_across_steps=reuse,
                      max_kept_tokens=n_kept + n_suffix - 2)  # with reuse: the first candidate's states only
    naive = fast.reset(prefix, kept, suffix, reference=[torch.cat([prefix, row, suffix]) for row in rows])
    full = fast.candidate_logprobs(None if reuse else cands)  # every candidate: a full scoring keeps states
    got = [(full[c if reuse else r], r, 0) for r, c in enumerate(cands)]  # (fast vector, reference row, first column)
    fast.delete(mid)
    got.append((fast.state_logprobs(), 1, 0))  # the deleted candidate's row is the new state
    answer = fast.candidate_logprobs(None if reuse else [k - 2], answer_only=True)[:, k - 2 :]
    got.append((answer[k - 2 if reuse else 0], len(rows) - 1, k - 2))
    if reuse:
        got.append((answer[0], 3, k - 2))  # the resumed one
    return max(_max_diff(vec, naive[row][start:]) for vec, row, start in got)


def check_fast_scorer(model, n_prefix: int = 1, n_kept: int = 5, n_suffix: int = 2, seed: int = 0,
                      window: int = CHECK_WINDOW, reuse_across_steps: bool = False) -> ScorerCheck:
    """Score a synthetic chain with both scorers (sliding windows shrunk to ``window``) and compare;
    ``reuse_across_steps``: also a candidate resumed across steps (``core.resume``; one more forward).

    >>> check_fast_scorer(model).passed   # doctest: +SKIP
    True
    """
    if n_prefix < 1 or n_kept < 4 or n_suffix < 1:
        raise PruneprobeError(f"the check needs n_prefix >= 1, n_kept >= 4, n_suffix >= 1; got {n_prefix}, {n_kept}, {n_suffix}")
    dtype = next(model.parameters()).dtype
    model_type = str(getattr(model.config, "model_type", type(model).__name__))
    t0 = time.perf_counter()
    max_diff, error = None, ""
    try:
        with shrunk_windows(model.config, window):
            max_diff = _compare(model, n_prefix, n_kept, n_suffix, seed, reuse_across_steps)
    except Exception as exc:  # any failure of the fast path (or the model under it) means: do not trust it
        error = f"{type(exc).__name__}: {exc}"
    return ScorerCheck(model_type, _dtype_name(model), max_diff, tolerance_for(dtype),
                       time.perf_counter() - t0, error, reuse_across_steps)


@dataclass
class ResumedRowsCheck:
    """Checks a reusing fast scorer's resumed rows (``core.resume``) on the real chain: at each chain's
    first scoring that resumes candidates, the first and last resumed ones are recomputed in full (one
    forward of two sequences, the model's own masks and windows) and compared with their fast vectors.
    Set as ``FastScorer.resumed_check`` by ``make_scorer``; ``max_diff``: this chain's difference (``None``
    until checked). Above ``tolerance``, ``mode="warn"`` turns reuse off (the scorer redoes that scoring
    without it; the ``Pruner``'s ``scorer_check`` records it, so later scorers do not reuse), ``"raise"`` raises."""

    model_type: str
    tolerance: float
    mode: str = "warn"
    pruner: Pruner | None = None
    max_diff: float | None = None

    @torch.no_grad()
    def __call__(self, scorer, resumed: list[int], out: torch.Tensor) -> bool:
        rows = sorted({resumed[0], resumed[-1]})
        ids = scorer.ids.cpu()
        p, end, first_suffix = scorer.p, len(ids) - scorer.s, scorer.n_kept - 1
        kept = ids[p:end]
        naive = state_logprob_batch(scorer.model, ids[:p], [torch.cat([kept[:j], kept[j + 1 :]]) for j in rows], ids[end:])
        diffs = []
        for j, reference in zip(rows, naive):
            fast = out[j].cpu()
            scored = ~torch.isnan(fast) | (torch.arange(len(fast)) >= first_suffix)  # answer-only: NaN reasoning part
            diffs.append(_max_diff(fast[scored], reference[scored]))
        self.max_diff = max(diffs)
        if self.max_diff <= self.tolerance:
            return True
        problem = (f"the fast scorer's rows resumed across steps disagree with a full recompute on model type "
                   f"{self.model_type!r}: largest difference {self.max_diff:.3g} nats > tolerance {self.tolerance:.3g}")
        if self.mode == "raise":
            raise PruneprobeError(f"{problem}; use reuse_across_steps=False, or scorer_check='warn' to fall back to it")
        logger.warning("%s; reusing states across steps is turned off for this model", problem)
        if self.pruner is not None and self.pruner.scorer_check is not None:
            self.pruner.scorer_check = replace(self.pruner.scorer_check, reuse_failed=True)
        return False


def resolve_scorer(pruner_or_model, mode: str = "warn", reuse_across_steps: bool = False) -> tuple[str, ScorerCheck | None]:
    """``("fast", check)`` when the fast scorer passes its self-check (or ``mode="off"``: no check,
    ``None``), else ``("naive", check)`` with a warning (``mode="warn"``) or a ``PruneprobeError``
    (``mode="raise"``). A ``Pruner`` caches the check in ``scorer_check``. ``reuse_across_steps=True``
    asks for the check with a resumed candidate (``check_fast_scorer``); a cached one without it is then
    run again (``make_scorer`` does not ask: it checks resumed rows on the real chain instead)."""
    if mode not in CHECK_MODES:
        raise PruneprobeError(f"unknown scorer check {mode!r}; use one of {', '.join(CHECK_MODES)}")
    if mode == "off":
        return "fast", None

    pruner = pruner_or_model if isinstance(pruner_or_model, Pruner) else None
    model = pruner.model if pruner is not None else pruner_or_model
    check = pruner.scorer_check if pruner is not None else None
    stale = check is None or check.dtype != _dtype_name(model)  # a pruner cast to another dtype: check again
    if stale or (reuse_across_steps and not check.covers_reuse):
        check = check_fast_scorer(model, reuse_across_steps=reuse_across_steps)
        if pruner is not None:
            pruner.scorer_check = check
    if check.passed:
        return "fast", check
    if mode == "raise":
        raise PruneprobeError(f"{check.problem()}; use scorer='naive' (exact, slower), or scorer_check='warn' to fall back to it")
    logger.warning("%s; using the naive scorer (exact, slower). scorer_check='raise' makes this an error", check.problem())
    return "naive", check


def make_scorer(model, scorer: str = "fast", batch_tokens: int | None = None, answer_only: bool = False,
                check: str = "warn", reuse_across_steps: bool | None = None):
    """A scorer for ``model`` (a ``Pruner`` or a bare transformers model): ``"fast"`` or ``"naive"``.

    ``"fast"`` is first checked against the naive reference (``exactness.resolve_scorer``; cached
    on a ``Pruner``): on a difference ``check="warn"`` (default) falls back to the naive scorer with
    a warning, ``check="raise"`` raises, ``check="off"`` skips the check. The returned scorer's
    ``name`` says which one runs and its ``check`` holds the check's result (``None``: not run).
    ``reuse_across_steps``: the fast scorer keeps candidates' suffix states from one full scoring to the
    next (``core.resume``; ``None``: ``resume.reuse_by_default`` for the model's device); unless
    ``check="off"`` its resumed rows are then checked on each chain (``ResumedRowsCheck``), and not reused
    on a model where that check failed before.
    """
    if scorer not in ("fast", "naive"):
        raise PruneprobeError(f"unknown scorer {scorer!r}; use 'fast' or 'naive'")
    if check not in CHECK_MODES:
        raise PruneprobeError(f"unknown scorer check {check!r}; use one of {', '.join(CHECK_MODES)}")
    result = None
    bare = model.model if isinstance(model, Pruner) else model
    if reuse_across_steps is None:
        reuse_across_steps = reuse_by_default(next(bare.parameters()).device)
    if scorer == "fast":
        scorer, result = resolve_scorer(model, check)
    reuse_across_steps = reuse_across_steps and not (result is not None and result.reuse_failed)
    pruner = model if isinstance(model, Pruner) else None
    model = bare
    if scorer == "naive":
        engine = NaiveScorer(model, batch_tokens=batch_tokens or 4096)
    else:
        cuda = next(model.parameters()).device.type == "cuda"
        if batch_tokens is None:  # CPU: small chunks keep the block-diagonal attention waste low
            batch_tokens = 16384 if cuda else 768
        # suffixes kept for the next deletion to adopt (~50 KB a token for the 135M model): more on a GPU
        engine = FastScorer(model, batch_tokens=batch_tokens, lm_head_everywhere=not answer_only,
                            reuse_tokens=4 * batch_tokens if cuda else 4096, reuse_across_steps=reuse_across_steps)
        if reuse_across_steps and check != "off":
            engine.resumed_check = ResumedRowsCheck(str(getattr(model.config, "model_type", type(model).__name__)),
                                                    tolerance_for(next(model.parameters()).dtype), check, pruner)
    engine.check = result
    return engine
