"""One-shot baselines (docs/method.md, "Baselines"): a fixed deletion order from one score per token.

Every baseline returns the same ``PruneResult`` as greedy pruning (full deletion order of all R
reasoning tokens, objective traces after every step), so every analysis takes it.

Canonical pattern::

    from pruneprobe.methods import prune_baseline, list_methods
    result = prune_baseline(pruner, example, "surprisal")     # or "h2o", "uniform", "random"
    result.pruned_text(0.7)
    result.token_scores                                        # the fixed per-token score ranked by

Methods:
- ``surprisal``: one forward of the full sequence; deletes the most predictable reasoning tokens
  (highest log-prob under the pruner) first. ``token_scores`` = log-probs.
- ``h2o``: one forward with eager attention; a token's score is the attention it receives from all
  *later* positions (later reasoning, answer and closing tokens), over layers and heads; the least
  attended go first. Self-attention (query j to key j) is excluded. Normalisation (``normalize``):
  a query at position q spreads one unit over the ~q keys it sees, so raw probabilities shrink
  along the sequence and raw accumulation (``"sum"``, original H2O) also favours early tokens
  (seen by more queries): on a chain it deletes the end first. The default ``"relative"``
  multiplies each probability by the number of keys its query sees (1.0 = a fair share), then
  averages over the (layer, head, later query) triples that can see the token, so neither
  position nor a sliding window biases the ranking; ``"mean"`` averages raw probabilities.
- ``uniform``: evenly spaced deletions in van der Corput (bit-reversal) order, so the deleted set
  is spread evenly at *every* keep ratio (at rho=0.5 the kept tokens alternate).
- ``random``: a seeded permutation (``seed``).
- ``tokenskip`` (``pruneprobe.methods.tokenskip``, needs ``classifier=``) and ``greedy`` are also reachable
  through ``prune_baseline`` (``pruneprobe.methods.registry``, the one list of methods).

Gotchas:
- ``h2o`` needs attention probabilities, which only the eager implementation returns: a model on
  sdpa is switched with ``model.set_attn_implementation("eager")`` (transformers >= 4.56 / 5.x) for
  the forward and restored after. Models that cannot switch at run time raise an error asking to
  load with ``load_pruner(..., attn_implementation="eager")``. Per-layer attention is reduced to a
  vector inside a forward hook, so no ``[B, H, S, S]`` tensor outlives its layer.
- Ties go to the earliest token. ``traces=False`` skips the R+1 state forwards (traces are NaN).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from pruneprobe.core.attention_modules import attention_module_paths, eager_attention
from pruneprobe.core.encoding import EncodedExample, encode_example
from pruneprobe.core.exactness import make_scorer
from pruneprobe.core.greedy import run_metadata
from pruneprobe.core.result import TRACE_KEYS, PruneResult
from pruneprobe.core.scoring import resolve_objective, state_logprob_batch, traces_from_state
from pruneprobe.data.examples import Example
from pruneprobe.data.models import Pruner, as_pruner
from pruneprobe.errors import PruneprobeError

H2O_NORMALIZATIONS = ("relative", "mean", "sum")


# -- shared -------------------------------------------------------------------------------------
def state_traces(pruner: Pruner, enc: EncodedExample, order: list[int], *, enabled: bool = True,
                 batch_tokens: int | None = None) -> tuple[dict[str, list[float]], str | None]:
    """Trace dict for the R+1 states along ``order`` (before any deletion, then after each), and the
    scorer that computed it (``"fast"``, ``"naive"``; ``None`` with all-NaN lists when ``enabled`` is False). When the fast scorer passes its self-check (``core.exactness``,
    cached on the pruner) each state is the last one with a token deleted, recomputed from that token
    on over the cached prefix (``FastScorer.delete``: ~3x faster than whole states on a 67-token chain
    under a 141-token prompt); else one batched pass of ``state_logprob_batch`` over whole states."""
    n = len(order) + 1
    if not enabled:
        return {k: [float("nan")] * n for k in TRACE_KEYS}, None
    engine = make_scorer(pruner, "fast", answer_only=False, reuse_across_steps=False)
    if engine.name == "fast":
        engine.reset(enc.prefix_ids, enc.reasoning_ids, enc.suffix_ids)
        alive, lps = list(range(enc.n_reasoning)), [engine.state_logprobs()]
        for i in order:
            engine.delete(alive.index(i))
            alive.remove(i)
            lps.append(engine.state_logprobs())
    else:
        ids, alive = enc.reasoning_ids, torch.ones(enc.n_reasoning, dtype=torch.bool)
        states = [ids.clone()]
        for i in order:
            alive[i] = False
            states.append(ids[alive])
        kw = {} if batch_tokens is None else {"batch_tokens": batch_tokens}
        lps = state_logprob_batch(pruner.model, enc.prefix_ids, states, enc.suffix_ids, **kw)
    traces = {k: [] for k in TRACE_KEYS}
    for step, lp in enumerate(lps):
        for k, v in traces_from_state(lp, enc.n_reasoning - step).items():
            traces[k].append(v)
    return traces, engine.name


def one_shot_result(pruner: Pruner, example: Example, enc: EncodedExample, method: str, objective,
                    order: list[int], token_scores, *, traces: bool = True, batch_tokens: int | None = None,
                    t0: float | None = None, **extra) -> PruneResult:
    """Wrap a fixed deletion order into a ``PruneResult`` (shared by every one-shot baseline)."""
    obj = resolve_objective(objective)
    t0 = time.perf_counter() if t0 is None else t0
    tr, traces_scorer = state_traces(pruner, enc, order, enabled=traces, batch_tokens=batch_tokens)
    scores = None if token_scores is None else [float(x) for x in np.asarray(token_scores, dtype=np.float64)]
    return PruneResult(
        example_id=example.id, method=method, objective=obj.name, token_ids=enc.reasoning_ids.tolist(),
        tokens=list(enc.reasoning_pieces), deletion_order=[int(i) for i in order], traces=tr,
        candidate_scores=None, token_scores=scores, example=example.to_dict(),
        metadata=run_metadata(pruner, enc, obj.name, traces_computed=traces, traces_scorer=traces_scorer,
                              elapsed_s=time.perf_counter() - t0, **extra),
    )


def order_by_score(scores, ascending: bool = True) -> list[int]:
    """Indices sorted by score (lowest first if ``ascending``); ties go to the earliest token."""
    s = np.asarray(scores, dtype=np.float64)
    return np.argsort(s if ascending else -s, kind="stable").tolist()


# -- surprisal ----------------------------------------------------------------------------------
@torch.no_grad()
def reasoning_logprobs(pruner: Pruner, enc: EncodedExample) -> torch.Tensor:
    """Log-prob of each reasoning token given everything before it (one forward), shape ``[R]``."""
    lp = state_logprob_batch(pruner.model, enc.prefix_ids, [enc.reasoning_ids], enc.suffix_ids)[0]
    return lp[: enc.n_reasoning]


def surprisal_prune(pruner, example: Example, objective="joint", *, traces: bool = True,
              batch_tokens: int | None = None) -> PruneResult:
    """Delete the most predictable reasoning tokens first.

    >>> r = surprisal_prune(pruner, example); r.token_scores[:3]   # log-probs   # doctest: +SKIP
    """
    pruner, t0 = as_pruner(pruner), time.perf_counter()
    enc = encode_example(pruner, example)
    lp = reasoning_logprobs(pruner, enc).numpy()
    return one_shot_result(pruner, example, enc, "surprisal", objective, order_by_score(lp, ascending=False),
                           lp, traces=traces, batch_tokens=batch_tokens, t0=t0)


# -- H2O ----------------------------------------------------------------------------------------
@torch.no_grad()
def attention_received(pruner: Pruner, enc: EncodedExample, normalize: str = "relative") -> np.ndarray:
    """Attention each reasoning token receives from later positions, one row per layer: ``[L, R]``.

    ``"sum"``: raw probabilities summed over heads and later queries (H2O accumulation).
    ``"mean"``: averaged over the (head, later query) pairs that can see the token.
    ``"relative"``: like ``"mean"``, each probability first multiplied by the number of keys its
    query sees (1.0 = a fair share). A key is visible when its probability is non-zero (masked
    keys, including those outside a sliding window, are exactly 0 after the softmax).

    >>> attention_received(pruner, encode_example(pruner, example)).mean(0)   # doctest: +SKIP
    """
    if normalize not in H2O_NORMALIZATIONS:
        raise PruneprobeError(f"unknown normalize {normalize!r}; use one of {', '.join(H2O_NORMALIZATIONS)}")
    model = pruner.model
    ids = enc.input_ids[None].to(pruner.device)
    per_layer: list[torch.Tensor] = []

    def reduce(weights: torch.Tensor) -> torch.Tensor:  # [1, H, S, S] -> [S], from queries q > key
        w = weights[0].float()
        later = torch.ones(w.shape[-2:], dtype=torch.bool, device=w.device).tril(-1)
        visible = (w > 0) & later
        if normalize == "sum":
            return w.mul(later).sum((0, 1)).cpu()
        if normalize == "relative":
            w = w * (w > 0).sum(-1, keepdim=True)
        return (w.mul(later).sum((0, 1)) / visible.sum((0, 1)).clamp(min=1)).cpu()

    def hook(index: int):
        def record(_module, _args, output):
            weights = output[index] if isinstance(output, tuple) and len(output) > index else None
            if weights is None:
                raise PruneprobeError("attention module returned no attention weights (not eager?)")
            per_layer.append(reduce(weights))
        return record

    with eager_attention(model, ensure_eager=True, purpose="the h2o baseline"):
        paths = attention_module_paths(model, by_name=False)
        if paths:
            handles = [model.get_submodule(path).register_forward_hook(hook(index)) for path, index in paths]
            try:
                model(input_ids=ids, use_cache=False, logits_to_keep=1)
            finally:
                for h in handles:
                    h.remove()
        else:  # no recordable attention class: take the returned tuple, reduce each layer at once
            out = model(input_ids=ids, use_cache=False, output_attentions=True, logits_to_keep=1)
            per_layer = [reduce(a) for a in out.attentions]
    if not per_layer:
        raise PruneprobeError(f"{type(model).__name__}: no attention weights were captured")
    return torch.stack(per_layer)[:, enc.reasoning_start : enc.reasoning_end].double().numpy()


def h2o_prune(pruner, example: Example, objective="joint", *, normalize: str = "relative", traces: bool = True,
              batch_tokens: int | None = None) -> PruneResult:
    """Delete the least-attended reasoning tokens first (H2O-style heavy hitters).

    ``token_scores``: per-layer ``attention_received`` summed (``"sum"``) or averaged over layers.

    >>> r = h2o_prune(pruner, example); r.pruned_text(0.8)   # doctest: +SKIP
    """
    pruner, t0 = as_pruner(pruner), time.perf_counter()
    enc = encode_example(pruner, example)
    per_layer = attention_received(pruner, enc, normalize)
    scores = per_layer.sum(0) if normalize == "sum" else per_layer.mean(0)
    return one_shot_result(pruner, example, enc, "h2o", objective, order_by_score(scores), scores,
                           traces=traces, batch_tokens=batch_tokens, t0=t0, h2o_normalize=normalize,
                           n_layers=int(per_layer.shape[0]))


# -- uniform / random ---------------------------------------------------------------------------
def uniform_order(n: int) -> list[int]:
    """Van der Corput order of ``0..n-1``: every prefix is spread evenly over the range.

    >>> uniform_order(8)
    [0, 4, 2, 6, 1, 5, 3, 7]
    """
    bits = max(1, (n - 1).bit_length())
    rev = [int(format(i, f"0{bits}b")[::-1], 2) for i in range(n)]
    return sorted(range(n), key=lambda i: (rev[i], i))


def uniform_prune(pruner, example: Example, objective="joint", *, traces: bool = True,
            batch_tokens: int | None = None) -> PruneResult:
    """Delete evenly spaced tokens; at any keep ratio the deleted set is spread over the chain.

    >>> r = uniform_prune(pruner, example); r.kept_mask(0.5)   # alternating   # doctest: +SKIP
    """
    pruner, t0 = as_pruner(pruner), time.perf_counter()
    enc = encode_example(pruner, example)
    order = uniform_order(enc.n_reasoning)
    rank = np.empty(enc.n_reasoning)
    rank[order] = np.arange(enc.n_reasoning)
    return one_shot_result(pruner, example, enc, "uniform", objective, order, rank, traces=traces,
                           batch_tokens=batch_tokens, t0=t0)


def random_order(n: int, seed: int = 0) -> list[int]:
    """A seeded permutation of ``0..n-1`` (numpy ``default_rng(seed)``)."""
    return np.random.default_rng(seed).permutation(n).tolist()


def random_prune(pruner, example: Example, objective="joint", *, seed: int = 0, traces: bool = True,
           batch_tokens: int | None = None) -> PruneResult:
    """Delete reasoning tokens in a seeded random order (same seed, same order).

    >>> random_prune(pruner, example, seed=1).deletion_order[:3]   # doctest: +SKIP
    """
    pruner, t0 = as_pruner(pruner), time.perf_counter()
    enc = encode_example(pruner, example)
    order = random_order(enc.n_reasoning, seed)
    rank = np.empty(enc.n_reasoning)
    rank[order] = np.arange(enc.n_reasoning)
    return one_shot_result(pruner, example, enc, "random", objective, order, rank, traces=traces,
                           batch_tokens=batch_tokens, t0=t0, seed=seed)


__all__ = ["surprisal_prune", "h2o_prune", "uniform_prune",
           "random_prune", "uniform_order", "random_order", "attention_received", "reasoning_logprobs", "state_traces",
           "one_shot_result", "order_by_score"]
