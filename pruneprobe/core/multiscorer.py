"""Candidate scores of many chains in shared packed forwards: the engine of ``batched``.

``FastScorer`` scores one chain's candidates by recomputing only each candidate's suffix on top of the
chain's cached prefix (docs/fast-scorer.md). ``MultiScorer`` does the same for the current states of
several ``FastScorer`` s at once:

- every candidate suffix of every chain is a *segment*; a chain's segments share rows two by two, longest
  with shortest (as ``fastscore.fold_rows``), so its rows come out nearly equal in width;
- the rows of all chains are sorted by width and cut into chunks of about ``batch_tokens`` padded tokens;
- each row attends to its own chain's cached keys and values, gathered and padded to the chunk's longest
  cut (padding keys are masked, never seen), under ``fastscore.packed_attention_mask``;
- index arrays are built on the host from lengths alone (no per-candidate loop) and copied once per
  chunk (pinned and asynchronous on CUDA); all chains' log-probs come back in one transfer per step.

After the step's choices ``delete`` hands each chain its chosen candidate's packed suffix to adopt
(``FastScorer.delete(j, scored)``, no forward). Chosen suffixes that were not kept (the ``answer``
objective computes the LM head only at answer positions; kept suffixes are bounded by ``reuse_tokens`` a
chain) are recomputed in full for all chains in one more packed forward.

>>> packer = MultiScorer(model, batch_tokens=16384)                     # doctest: +SKIP
>>> logprobs = packer.candidate_logprobs(engines, answer_only=False)  # doctest: +SKIP
>>> packer.delete(engines, [int(lp.sum(-1).argmax()) for lp in logprobs])  # doctest: +SKIP

Gotchas: results equal each chain's own ``FastScorer.candidate_logprobs`` up to float rounding (fp32:
~1e-5), not bit for bit (rows are packed differently). ``tokens_computed`` of each engine counts the
tokens recomputed for it here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

from pruneprobe.core.fastscore import FastScorer, packed_attention_mask
from pruneprobe.core.resume import prefilled_cache


@dataclass(frozen=True)
class Segments:
    """Candidate suffixes to recompute, one entry per candidate (arrays of equal length).

    ``engine``: which chain; ``cand``: the kept index deleted; ``slot``: its row in the chain's output
    block; ``cut``: sequence position of the deleted token; ``length``: tokens recomputed, the new
    sequence's positions ``cut .. cut + length - 1`` (old tokens ``x[cut+1 .. n-2]``)."""

    engine: np.ndarray
    cand: np.ndarray
    slot: np.ndarray
    cut: np.ndarray
    length: np.ndarray

    @classmethod
    def build(cls, engines: list[FastScorer], candidates: list, answer_only: bool) -> Segments:
        parts = []
        for e, (eng, cands) in enumerate(zip(engines, candidates)):
            cands = np.asarray(cands, dtype=np.int64).reshape(-1)
            length = len(eng.ids) - 2 - (eng.p + cands)
            ok = length > 0  # the last token predicts nothing: nothing to recompute
            if answer_only:
                ok &= cands + length >= eng.n_kept - 1
            slot = np.flatnonzero(ok)
            parts.append((np.full(len(slot), e), cands[ok], slot, eng.p + cands[ok], length[ok]))
        return cls(*(np.concatenate([part[i] for part in parts]).astype(np.int64) for i in range(5)))

    def __len__(self) -> int:
        return len(self.cand)

    def fold(self) -> tuple[np.ndarray, np.ndarray]:
        """Rows as (first, second) segment pairs: within each chain, longest with shortest; ``-1``: alone.

        >>> z = np.zeros(5, dtype=np.int64)
        >>> Segments(z, z, z, z, np.array([5, 4, 3, 2, 1])).fold()
        (array([0, 1, 2]), array([ 4,  3, -1]))
        """
        first, second = [], []
        for e in np.unique(self.engine):
            idx = np.flatnonzero(self.engine == e)
            order = idx[np.argsort(-self.length[idx], kind="stable")]
            half = (len(order) + 1) // 2
            a, b = order[:half], order[::-1][:half].copy()
            if len(order) % 2:
                b[-1] = -1
            first.append(a)
            second.append(b)
        if not first:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(first), np.concatenate(second)


def chunk_rows(width: np.ndarray, batch_tokens: int, slack: float = 0.25) -> list[np.ndarray]:
    """Rows widest first, in chunks of at most ``batch_tokens`` padded tokens (at least one row).

    Rows are padded to their chunk's widest, so once a chunk holds a quarter of ``batch_tokens`` it
    ends before a row more than ``slack`` narrower than its widest (chains of other lengths).

    >>> [c.tolist() for c in chunk_rows(np.array([4, 9, 3, 9, 4, 8]), 32)]
    [[1, 3, 5], [0, 4, 2]]
    >>> [c.tolist() for c in chunk_rows(np.array([4, 9, 3, 9, 4, 8]), 200)]
    [[1, 3, 5, 0, 4, 2]]
    """
    order = np.argsort(-width, kind="stable")
    chunks, i = [], 0
    while i < len(order):
        widest = max(int(width[order[i]]), 1)
        window = width[order[i : i + max(1, batch_tokens // widest)]]
        fits = (window >= (1 - slack) * widest) | (np.arange(len(window)) * widest < batch_tokens / 4)
        take = len(window) if fits.all() else max(1, int(np.argmin(fits)))
        chunks.append(order[i : i + take])
        i += take
    return chunks


@dataclass
class Layout:
    """One chunk's packed tokens ``[rows, width]`` (host arrays): segment (-1: padding), position, the
    segment's cut, flat indices of the token read, of its target and of the token after that, and the
    index of that target in its candidate's vector; ``engine`` per row; ``cache_len`` keys."""

    seg: np.ndarray
    pos: np.ndarray
    cut: np.ndarray
    token: np.ndarray
    target: np.ndarray
    after: np.ndarray
    vec: np.ndarray
    engine: np.ndarray
    at: np.ndarray  # per row: where its second segment starts
    cache_len: int

    @classmethod
    def pack(cls, seg: Segments, first: np.ndarray, second: np.ndarray, base: np.ndarray, n: np.ndarray,
             p: np.ndarray) -> Layout:
        """Lay rows ``(first[r], second[r])`` out; ``base``, ``n``, ``p`` per chain: offset in the flat
        token ids, sequence length, prefix length."""
        la = seg.length[first]
        lb = np.where(second >= 0, seg.length[np.maximum(second, 0)], 0)
        t = np.arange(int((la + lb).max()))[None, :]
        in_a = t < la[:, None]
        s = np.where(in_a, first[:, None], np.where(t < (la + lb)[:, None], second[:, None], -1))
        real, sc = s >= 0, np.maximum(s, 0)
        pos = np.where(real, seg.cut[sc] + np.where(in_a, t, t - la[:, None]), 0)
        e = seg.engine[first]
        b, m = base[e][:, None], n[e][:, None]
        return cls(seg=s, pos=pos, cut=np.where(real, seg.cut[sc], 1),  # padding sees key 0
                   token=b + np.where(real, pos + 1, 0), target=b + np.minimum(pos + 2, m - 1),
                   after=b + np.minimum(pos + 3, m - 1), vec=pos + 1 - p[e][:, None], engine=e, at=la,
                   cache_len=int(seg.cut[sc[real]].max()))


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on ``device``; on CUDA through pinned memory, without waiting for the device."""
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type != "cuda":
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)


class MultiScorer:
    """Scores every candidate of several ``FastScorer`` states in shared packed forwards (module docstring).

    ``reuse_tokens``: packed suffix tokens kept per chain for ``delete`` to adopt (more are recomputed there).
    """

    def __init__(self, model, batch_tokens: int = 768, reuse_tokens: int = 4096):
        self.model, self.batch_tokens, self.reuse_tokens = model, batch_tokens, reuse_tokens
        self.dtype = next(model.parameters()).dtype
        self._clear()

    def _clear(self) -> None:
        self._segments: Segments | None = None
        self._chunk = self._row = self._at = np.zeros(0, dtype=np.int64)
        self._kept: list[dict] = []

    # -- the step ------------------------------------------------------------------------------
    @torch.no_grad()
    def candidate_logprobs(self, engines: list[FastScorer], answer_only: bool = False) -> list[torch.Tensor]:
        """Each chain's ``[k, k - 1 + S]`` candidate log-probs (CPU), as ``FastScorer.candidate_logprobs``
        of all its kept tokens gives them; one transfer for all chains."""
        dev = engines[0].device
        sizes = [eng.n_kept * (eng.n_kept - 1 + eng.s) for eng in engines]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        out = torch.full((int(offsets[-1]),), float("nan"), device=dev)
        blocks = [out[offsets[e] : offsets[e + 1]].view(eng.n_kept, -1) for e, eng in enumerate(engines)]
        for block, eng in zip(blocks, engines):
            fill_cached_part(block, eng)
        seg = Segments.build(engines, [np.arange(eng.n_kept) for eng in engines], answer_only)
        widths = np.array([eng.n_kept - 1 + eng.s for eng in engines], dtype=np.int64)
        self._run(engines, seg, answer_only, keep=not answer_only, budget=self.reuse_tokens * len(engines),
                  out=(out, offsets[seg.engine] + seg.slot * widths[seg.engine]))
        if answer_only:
            for block, eng in zip(blocks, engines):
                block[:, : eng.n_kept - 1] = float("nan")
        host = out.cpu()
        return [host[offsets[e] : offsets[e + 1]].view(eng.n_kept, -1) for e, eng in enumerate(engines)]

    def delete(self, engines: list[FastScorer], picks: list[int]) -> None:
        """Delete kept token ``picks[e]`` of each chain, adopting the packed suffix scored for it (or
        recomputed now, for all chains that lack one, in one packed forward)."""
        scored = [self._scored(e, j) for e, j in enumerate(picks)]
        has_suffix = [len(eng.ids) - 2 - eng.p - j > 0 for eng, j in zip(engines, picks)]  # else: nothing to adopt
        redo = [e for e, sc in enumerate(scored) if sc is None and has_suffix[e]]
        if redo:
            sub = [engines[e] for e in redo]
            self._run(sub, Segments.build(sub, [[picks[e]] for e in redo], answer_only=False), answer_only=False,
                      keep=True, budget=None)
            for i, e in enumerate(redo):
                scored[e] = self._scored(i, picks[e])
        for eng, j, sc in zip(engines, picks, scored):
            eng.delete(j, sc)  # no suffix (the last token, a one-token suffix): the scorer recomputes its tail
        self._clear()

    def _scored(self, e: int, j: int) -> tuple | None:
        """The kept packed suffix of chain ``e``'s candidate ``j``: ``(kept, row, at, length)``, or ``None``."""
        seg = self._segments
        if seg is None:
            return None
        hit = np.flatnonzero((seg.engine == e) & (seg.cand == j))
        if not len(hit) or self._chunk[hit[0]] < 0:
            return None
        s = int(hit[0])
        return self._kept[self._chunk[s]], int(self._row[s]), int(self._at[s]), int(seg.length[s])

    @staticmethod
    def state_logprobs(engines: list[FastScorer]) -> list[torch.Tensor]:
        """Each chain's ``FastScorer.state_logprobs()``, in one transfer."""
        if not engines:
            return []
        parts = [eng.next_lp[eng.p - 1 :] for eng in engines]
        return list(torch.cat(parts).cpu().split([len(part) for part in parts]))

    # -- packed forwards -------------------------------------------------------------------------
    def _run(self, engines: list[FastScorer], seg: Segments, answer_only: bool, keep: bool, budget: int | None,
             out: tuple[torch.Tensor, np.ndarray] | None = None) -> None:
        """Recompute ``seg`` in chunks; scatter log-probs into ``out`` (flat tensor, each segment's row
        start); keep packed suffixes (within ``budget`` tokens; ``None``: all) for ``delete``."""
        self._segments = seg
        self._chunk, self._row, self._at = (np.full(len(seg), -1, dtype=np.int64) for _ in range(3))
        self._kept = []
        if not len(seg):
            return
        dev = engines[0].device
        first, second = seg.fold()
        lb = np.where(second >= 0, seg.length[np.maximum(second, 0)], 0)
        flat_ids = torch.cat([eng.ids for eng in engines])
        lengths = np.array([len(eng.ids) for eng in engines], dtype=np.int64)
        base = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        p = np.array([eng.p for eng in engines], dtype=np.int64)
        k = np.array([eng.n_kept for eng in engines], dtype=np.int64)
        caches = PrefixCaches(engines)
        kept_tokens = 0
        for rows in chunk_rows(seg.length[first] + lb, self.batch_tokens):
            lay = Layout.pack(seg, first[rows], second[rows], base, lengths, p)
            real = lay.seg >= 0
            n_real = int(real.sum())
            needed = real & (lay.vec >= k[lay.engine][:, None] - 1) if answer_only else real
            cols = np.flatnonzero(needed.any(0))
            keep_here = keep and len(cols) == real.shape[1] and (budget is None or kept_tokens + n_real <= budget)
            lp, kept = self._forward(engines[0], lay, caches, flat_ids, cols, keep_here)
            per_chain = np.bincount(lay.engine, weights=real.sum(1), minlength=len(engines))
            for e in np.flatnonzero(per_chain):
                engines[e].tokens_computed += int(per_chain[e])
            if kept is not None:
                kept_tokens += n_real
                self._remember(kept, first[rows], second[rows], lay.at)
            if out is not None:
                b_idx, c_idx = np.nonzero(needed[:, cols])
                s = lay.seg[b_idx, cols[c_idx]]
                dest = out[1][s] + lay.vec[b_idx, cols[c_idx]]
                out[0][to_device(dest, dev)] = lp.reshape(-1)[to_device(b_idx * len(cols) + c_idx, dev)]

    def _remember(self, kept: dict, first: np.ndarray, second: np.ndarray, at: np.ndarray) -> None:
        """Record where each segment of a kept chunk lies: chunk, row, start in the row."""
        chunk, rows, pair = len(self._kept), np.arange(len(first)), second >= 0
        self._kept.append(kept)
        self._chunk[first], self._row[first], self._at[first] = chunk, rows, 0
        self._chunk[second[pair]], self._row[second[pair]], self._at[second[pair]] = chunk, rows[pair], at[pair]

    def _forward(self, engine: FastScorer, lay: Layout, caches: PrefixCaches, flat_ids: torch.Tensor,
                 cols: np.ndarray, keep: bool) -> tuple[torch.Tensor, dict | None]:
        """One packed forward: log-probs ``[rows, len(cols)]`` of the targets at ``cols``, and the packed
        suffix (keys, values, hidden states, log-probs) when ``keep``."""
        dev = engine.device
        index = to_device(np.stack([lay.seg, lay.pos, lay.cut, lay.token, lay.target, lay.after]), dev)
        seg, pos, cut, token, target, after = index
        mask = packed_attention_mask(seg, pos, cut, lay.cache_len, engine.windows, self.dtype)
        keep_cols = 0 if len(cols) == lay.seg.shape[1] else to_device(cols, dev)  # 0: the LM head everywhere
        with engine._lm_head_inputs() as hidden:
            res = self.model(input_ids=flat_ids[token], position_ids=pos, attention_mask=mask, use_cache=True,
                             logits_to_keep=keep_cols, **{engine._cache_arg: caches.rows(lay)})
        logits = res.logits.float()
        lse = torch.logsumexp(logits, dim=-1)
        targets = target if isinstance(keep_cols, int) else target[:, keep_cols]
        lp = logits.gather(-1, flat_ids[targets][..., None]).squeeze(-1) - lse
        if not keep:
            return lp, None
        skip = logits.gather(-1, flat_ids[after][..., None]).squeeze(-1) - lse
        layers = (res.get("cache") or res.get("past_key_values")).layers
        c = lay.cache_len
        return lp, {"keys": [layer.keys[:, :, c:].clone() for layer in layers], "hidden": hidden[0],
                    "values": [layer.values[:, :, c:].clone() for layer in layers], "next": lp, "skip": skip}


class PrefixCaches:
    """The chains' cached keys and values, laid end to end once per pass, gathered per chunk row."""

    def __init__(self, engines: list[FastScorer]):
        self.engines = engines
        self.lengths = np.array([eng.keys[0].shape[2] for eng in engines], dtype=np.int64)
        self.base = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self._flat: tuple[list, list] | None = None

    def _flat_layers(self) -> tuple[list, list]:
        if self._flat is None:  # [kv_heads, all chains' positions, head_dim] per layer
            n_layers = len(self.engines[0].keys)
            self._flat = tuple([torch.cat([eng_kv[l][0] for eng_kv in kvs], dim=1) for l in range(n_layers)]
                               for kvs in ([e.keys for e in self.engines], [e.values for e in self.engines]))
        return self._flat

    def rows(self, lay: Layout) -> DynamicCache:
        """A cache of ``lay.cache_len`` keys per row, each row's from its own chain (keys past a chain's
        length repeat its last one; the mask hides them)."""
        c, rows, engines = lay.cache_len, len(lay.engine), np.unique(lay.engine)
        if len(engines) == 1:  # one chain: its prefix broadcast to every row
            eng = self.engines[int(engines[0])]
            return prefilled_cache([(k[:, :, :c].expand(rows, -1, -1, -1), v[:, :, :c].expand(rows, -1, -1, -1))
                                    for k, v in zip(eng.keys, eng.values)])
        flat_k, flat_v = self._flat_layers()
        length = self.lengths[lay.engine][:, None]
        index = self.base[lay.engine][:, None] + np.minimum(np.arange(c)[None, :], length - 1)
        index = to_device(index, flat_k[0].device)
        return prefilled_cache([(k[:, index].transpose(0, 1), v[:, index].transpose(0, 1))
                                for k, v in zip(flat_k, flat_v)])


def fill_cached_part(block: torch.Tensor, engine: FastScorer) -> None:
    """The part of each candidate's vector read from the current state, as ``FastScorer`` fills it: the
    tokens before the cut, then the "skip" log-prob at the cut."""
    k, width, p, dev = engine.n_kept, block.shape[1], engine.p, block.device
    cut = torch.arange(k, device=dev)[:, None]
    before = engine.next_lp[p - 1 : p - 1 + width][None, :]
    block.copy_(torch.where(torch.arange(width, device=dev)[None, :] < cut, before, block))
    block.scatter_(1, cut, engine.skip_lp[p - 1 : p - 1 + k][:, None])
