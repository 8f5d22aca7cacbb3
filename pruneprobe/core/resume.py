"""Cross-step reuse for the fast scorer: candidates' suffix states kept between full scorings and
resumed past the last deletion (docs/fast-scorer.md, "Across steps").

When a step deletes sequence position ``d``, a candidate ``i < d - 1`` of the next step reads the same
tokens at the same positions as at the last step up to position ``d - 2`` (its sequence lost ``i`` then
and loses ``d`` now), so its keys and values there are those computed for it then. With
``FastScorer(reuse_across_steps=True)`` a full scoring (every kept token, whole suffixes) keeps each
candidate's suffix states, positions ``i .. n - 3`` (its *region*), in a ``SuffixStore``; the next full
scoring recomputes for the candidates left of the deletion only positions ``m = d - 1`` on:

- they all recompute the same tokens at the same positions, so each is a plain row of one forward over
  its own cache (the shared prefix below its cut, then its kept keys: one gather per layer), under the
  model's own causal and sliding-window masks;
- their log-probs before ``m - 1`` are the last scoring's (same tokens, same targets); the one at
  ``m - 1`` predicts a new token: one LM-head row from the kept hidden state;
- candidates at or right of the deletion are packed and scored as before, and their regions kept too.

A deletion only shortens the valid part (``m = min(m, d - 1)``; the store is cut down to it); the
deleted candidate's region, right after its scoring, is the new state's tail (adopted: keys, values,
hidden states; log-probs by one LM-head product). ``max_kept_tokens`` bounds the regions kept (whole
regions, leftmost candidates first: a kept position is useful when the next deletion lies past it);
the others are scored as before, so the bound changes no score, only the work. Memory: a region token
costs ``2 x layers x kv_heads x head_dim`` keys and values plus one hidden state (SmolLM2-135M, fp32:
47 KiB); during a scoring the last store and the new one coexist.

>>> scorer = FastScorer(model, reuse_across_steps=True, max_kept_tokens=16384)  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import DynamicCache


def reuse_by_default(device: torch.device) -> bool:
    """Whether the fast scorer reuses states across steps unless told: on a CPU, where it was measured
    to pay (docs/performance.md); not on CUDA, where a step's candidates fit one forward without it and
    the resumed rows add a forward per step (not measured there yet).

    >>> reuse_by_default(torch.device("cpu")), reuse_by_default(torch.device("cuda"))
    (True, False)
    """
    return device.type != "cuda"


def ragged(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segment of each element and its index ``starts[s] + t`` (``t < lengths[s]``), flat.

    >>> ragged(np.array([10, 3]), np.array([2, 3]))
    (array([0, 0, 1, 1, 1]), array([10, 11,  3,  4,  5]))
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    seg = np.repeat(np.arange(len(lengths)), lengths)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return seg, np.asarray(starts, dtype=np.int64)[seg] + within


def prefilled_cache(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> DynamicCache:
    """A ``DynamicCache`` holding ``(keys, values)`` per layer as given (views are not copied until the
    forward appends to them; ``DynamicCache(ddp_cache_data=...)`` would copy them first)."""
    cache = DynamicCache(ddp_cache_data=[(k[:, :, :0], v[:, :, :0]) for k, v in pairs])
    for layer, (k, v) in zip(cache.layers, pairs):
        layer.keys, layer.values = k, v
    return cache


@dataclass
class SuffixStore:
    """Regions of one full scoring: per layer ``[P + T, kv_heads, head_dim]`` keys and values (the
    state's first ``P`` positions, then the regions end to end), ``hidden`` ``[T, hidden]`` (``None``
    when built on the answer-only path), ``where[cut] = (offset, length)``, ``scores`` the candidate
    vectors of that scoring (joint only), positions ``< end`` of every region still valid, ``fresh``
    while no deletion has come since."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    hidden: torch.Tensor | None
    where: dict[int, tuple[int, int]]
    scores: torch.Tensor | None
    prefix: int
    end: int
    fresh: bool = True

    @property
    def nbytes(self) -> int:
        tensors = [*self.keys, *self.values] + ([self.hidden] if self.hidden is not None else [])
        return sum(t.numel() * t.element_size() for t in tensors)

    def after_deletion(self, d: int) -> SuffixStore | None:
        """The store once sequence position ``d`` is deleted, cut down to what stays valid: the prefix
        below the last cut, each region's positions below ``min(end, d - 1)`` (``None``: nothing left)."""
        self.end, self.fresh = min(self.end, d - 1), False
        cuts = np.array(sorted(i for i in self.where if i < self.end), dtype=np.int64)
        if not len(cuts):
            return None
        lengths = self.end - cuts
        _, old = ragged(np.array([self.where[int(i)][0] for i in cuts]), lengths)
        prefix = int(cuts.max())
        index = torch.from_numpy(np.concatenate([np.arange(prefix), self.prefix + old])).to(self.keys[0].device)
        for layer in range(len(self.keys)):  # one layer at a time: the old copy goes as the new one comes
            self.keys[layer], self.values[layer] = self.keys[layer][index], self.values[layer][index]
        if self.hidden is not None:
            self.hidden = self.hidden[torch.from_numpy(old).to(self.hidden.device)]
        offsets = np.cumsum(lengths) - lengths
        self.where = {int(i): (int(o), int(n)) for i, o, n in zip(cuts, offsets, lengths)}
        self.prefix = prefix
        return self

    def row_cache(self, cuts: np.ndarray, m: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer ``[rows, kv_heads, m, head_dim]``: row ``r`` holds the prefix below ``cuts[r]``,
        then that candidate's kept keys (values alike)."""
        q, i = np.arange(m)[None, :], cuts[:, None]
        offsets = np.array([self.where[int(c)][0] for c in cuts])[:, None]
        index = torch.from_numpy(np.where(q < i, q, self.prefix + offsets + q - i)).to(self.keys[0].device)
        return [(k[index].transpose(1, 2), v[index].transpose(1, 2)) for k, v in zip(self.keys, self.values)]


@dataclass
class StoreBuilder:
    """The regions of a full scoring as its forwards produce them; ``build`` lays them end to end."""

    parts: list[tuple] = field(default_factory=list)  # (keys, values, hidden, cuts, lengths)
    nbytes: int = 0

    def add(self, keys: list, values: list, hidden: torch.Tensor | None, cuts: np.ndarray, lengths: np.ndarray):
        self.parts.append((keys, values, hidden, np.asarray(cuts), np.asarray(lengths)))
        self.nbytes += sum(t.numel() * t.element_size() for t in [*keys, *values] + ([hidden] if hidden is not None else []))

    def build(self, scorer, scores: torch.Tensor | None) -> SuffixStore | None:
        if not self.parts:
            return None
        cuts = np.concatenate([part[3] for part in self.parts])
        lengths = np.concatenate([part[4] for part in self.parts])
        offsets = np.cumsum(lengths) - lengths
        prefix = int(cuts.max())
        keys, values = [], []
        for layer in range(len(scorer.keys)):  # one layer at a time: the parts' copies go as they are laid out
            for slot, (out, state) in enumerate(((keys, scorer.keys), (values, scorer.values))):
                out.append(torch.cat([state[layer][0, :, :prefix].transpose(0, 1),
                                      *[part[slot][layer] for part in self.parts]]))
                for part in self.parts:
                    part[slot][layer] = None
        hidden = None if any(part[2] is None for part in self.parts) else torch.cat([part[2] for part in self.parts])
        where = {int(c): (int(o), int(n)) for c, o, n in zip(cuts, offsets, lengths)}
        self.parts = []
        return SuffixStore(keys, values, hidden, where, scores, prefix, end=len(scorer.ids) - 2)


@dataclass
class ReusePlan:
    """One full scoring's reuse: the candidates resumed from the last store, those whose regions are
    kept (``max_kept_tokens``), and the builder of the next store."""

    resumed: list[int]
    keep: set[int]
    builder: StoreBuilder
    start: int = 0  # resumed rows recompute positions ``start ..``
    peak: int = 0  # the largest bytes held in stores during the scoring


def plan_reuse(scorer, answer_only: bool) -> ReusePlan:
    """Which candidates of a full scoring resume from ``scorer``'s store and which regions are kept."""
    k, p, n, store = scorer.n_kept, scorer.p, len(scorer.ids), scorer._store
    lengths = n - 2 - (p + np.arange(k))
    keep = np.flatnonzero((lengths > 0) & (np.cumsum(np.maximum(lengths, 0)) <= scorer.max_kept_tokens))
    resumed, start = [], 0
    if store is not None and (answer_only or store.hidden is not None):
        # the token at end - 1 predicts a new target; without its hidden state (answer-only store) it is
        # recomputed when that target is an answer token
        start = store.end - (store.hidden is None and store.end - 1 >= p + k - 2)
        if n - 2 - start >= 1:
            resumed = [j for j in range(k) if p + j < start and p + j in store.where]
    return ReusePlan(resumed, set(keep.tolist()), StoreBuilder(), start)


@torch.no_grad()
def score_resumed(scorer, plan: ReusePlan, out: torch.Tensor, answer_only: bool) -> None:
    """Score ``plan.resumed`` (rows of ``out`` = kept indices) from the store, positions ``m`` on."""
    store, p, n, k, dev = scorer._store, scorer.p, len(scorer.ids), scorer.n_kept, scorer.device
    m = plan.start
    pos = torch.arange(m, n - 2, device=dev)  # new positions; the token at q predicts ids[q + 2]
    vec = pos + 1 - p  # index of that target in a candidate's vector
    cols = torch.nonzero(vec >= k - 1).squeeze(-1) if answer_only else None
    kept_cols = pos if cols is None else pos[cols]
    per_chunk = max(1, scorer.batch_tokens // len(pos))
    for start in range(0, len(plan.resumed), per_chunk):
        rows = np.asarray(plan.resumed[start : start + per_chunk])
        cuts = p + rows
        with scorer._lm_head_inputs() as hidden:
            res = scorer.model(input_ids=scorer.ids[m + 1 : n - 1].expand(len(rows), -1),
                               position_ids=pos.expand(len(rows), -1), use_cache=True,
                               logits_to_keep=0 if cols is None else cols,
                               **{scorer._cache_arg: prefilled_cache(store.row_cache(cuts, m))})
        scorer.tokens_computed += len(rows) * len(pos)
        logits = res.logits.float()
        lp = logits.gather(-1, scorer.ids[kept_cols + 2].expand(len(rows), -1)[..., None]).squeeze(-1)
        out[torch.from_numpy(rows).to(dev)[:, None], (kept_cols + 1 - p)[None, :]] = lp - torch.logsumexp(logits, -1)
        stored = [r for r, j in enumerate(rows) if j in plan.keep]
        if stored:
            layers = (res.get("cache") or res.get("past_key_values")).layers
            new_hidden = None if answer_only else hidden[0][stored]
            keep_regions(plan.builder, layers, store, m, np.asarray(stored), cuts[stored], n, new_hidden)
    plan.peak = max(plan.peak, store.nbytes + plan.builder.nbytes)
    if not answer_only or m - 1 >= p + k - 2:  # (answer-only: when the token at m - 1 predicts an answer token)
        resumed_before(scorer, store, m, plan.resumed, out, copy=not answer_only)


def keep_regions(builder: StoreBuilder, layers, store: SuffixStore, m: int, rows: np.ndarray, cuts: np.ndarray,
                 n: int, new_hidden: torch.Tensor | None) -> None:
    """Add resumed rows' regions (positions ``cut .. n - 3`` of their caches) to ``builder``; hidden
    states: the stored ones below ``m``, then ``new_hidden`` ``[rows, n - 2 - m, hidden]``."""
    dev = layers[0].keys.device
    seg, col = ragged(cuts, n - 2 - cuts)
    r, c = torch.from_numpy(rows[seg]).to(dev), torch.from_numpy(col).to(dev)
    keys, values = [layer.keys[r, :, c] for layer in layers], [layer.values[r, :, c] for layer in layers]
    hidden = None
    if new_hidden is not None:
        hidden = torch.empty(len(seg), new_hidden.shape[-1], dtype=new_hidden.dtype, device=dev)
        old = col < m
        offsets = np.array([store.where[int(i)][0] for i in cuts])
        hidden[torch.from_numpy(np.flatnonzero(old)).to(dev)] = store.hidden[
            torch.from_numpy(offsets[seg[old]] + col[old] - cuts[seg[old]]).to(dev)]
        hidden[torch.from_numpy(np.flatnonzero(~old)).to(dev)] = new_hidden[
            torch.from_numpy(seg[~old]).to(dev), torch.from_numpy(col[~old] - m).to(dev)]
    builder.add(keys, values, hidden, cuts, n - 2 - cuts)


def resumed_before(scorer, store: SuffixStore, m: int, resumed: list[int], out: torch.Tensor, copy: bool = True) -> None:
    """Resumed rows' log-probs before position ``m``: the last scoring's up to ``m - 2`` (``copy``), and
    the one at ``m - 1`` (target ``ids[m + 1]`` now) from its kept hidden state."""
    p, dev = scorer.p, scorer.device
    rows = torch.tensor(resumed, device=dev)
    if copy:
        cols = torch.arange(out.shape[1], device=dev)[None, :]
        old = (cols > rows[:, None]) & (cols <= m - 1 - p)
        out[rows] = torch.where(old, store.scores[rows, : out.shape[1]], out[rows])
    at = [store.where[p + j][0] + m - 1 - (p + j) for j in resumed]
    logp = torch.log_softmax(scorer._logits(store.hidden[torch.tensor(at, device=dev)]).float(), dim=-1)
    out[rows, m - p] = logp[:, scorer.ids[m + 1]]


def keep_packed(builder: StoreBuilder, layers, hidden: torch.Tensor | None, cache_len: int,
                segments: list[tuple[int, int, int, int]]) -> None:
    """Add packed segments' regions to ``builder``: ``(row, start in the row, length, cut)`` each, over a
    forward with ``cache_len`` cached keys; ``hidden`` ``[rows, width, hidden]`` or ``None``."""
    if not segments:
        return
    b, at, length, cut = (np.array(x, dtype=np.int64) for x in zip(*segments))
    seg, col = ragged(at, length)
    dev = layers[0].keys.device
    r, c = torch.from_numpy(b[seg]).to(dev), torch.from_numpy(col).to(dev)
    keys = [layer.keys[r, :, c + cache_len] for layer in layers]
    values = [layer.values[r, :, c + cache_len] for layer in layers]
    builder.add(keys, values, None if hidden is None else hidden[r, c], cut, length)


@torch.no_grad()
def adopt_stored(scorer, d: int, store: SuffixStore) -> None:
    """New state after deleting position ``d`` (``scorer.ids`` already without it), from that
    candidate's stored region: keys, values, hidden states; log-probs from ``d - 2`` on by the LM head."""
    offset, length = store.where[d]
    span = slice(store.prefix + offset, store.prefix + offset + length)
    scorer.keys = [torch.cat([o[:, :, :d], k[span].transpose(0, 1)[None]], dim=2) for o, k in zip(scorer.keys, store.keys)]
    scorer.values = [torch.cat([o[:, :, :d], v[span].transpose(0, 1)[None]], dim=2)
                     for o, v in zip(scorer.values, store.values)]
    scorer.hidden = torch.cat([scorer.hidden[:d], store.hidden[offset : offset + length]])
    lo, n = max(d - 2, 0), len(scorer.ids)
    logp = torch.log_softmax(scorer._logits(scorer.hidden[lo:]).float(), dim=-1)
    rows = torch.arange(lo, n - 1, device=scorer.device)
    scorer.next_lp = torch.cat([scorer.next_lp[:lo], logp.gather(-1, scorer.ids[rows + 1, None]).squeeze(-1)])
    skip = logp[: max(n - 2 - lo, 0)].gather(-1, scorer.ids[rows[: max(n - 2 - lo, 0)] + 2, None]).squeeze(-1)
    scorer.skip_lp = torch.cat([scorer.skip_lp[:lo], skip])
