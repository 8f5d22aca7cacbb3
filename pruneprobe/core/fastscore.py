"""The fast exact scorer: prefix-cache reuse and packed candidate suffixes (docs/fast-scorer.md).

Causal attention means deleting sequence position ``i`` leaves every state before ``i``
unchanged. One forward of the current state gives keys/values and next-token log-probs for all
positions; a candidate ``i`` then needs only its suffix recomputed, attending to the cached
prefix ``< i``. Its log-prob vector is

    cached log-probs of the tokens before i
    + log p(x[i+1] | x[<i])            (from the cached logits at i-1: the "skip" log-prob)
    + recomputed log-probs of x[i+2:]  (suffix tokens shifted left by one)

Many candidates' suffixes are packed into one batch with explicit ``position_ids`` and a 4-D
additive mask (each packed token sees the cached keys below its candidate's cut and its own
candidate's earlier suffix tokens), chunked to ``batch_tokens`` packed tokens. Each batch row
holds two suffixes, the longest with the shortest (``fold_rows``), so rows are nearly equal in
length with next to no padding and each token attends over ``cache + row`` keys instead of
``cache + chunk``; the cached prefix is broadcast to every row. Sliding windows come from the
config (``mask_windows``): one mask per layer type where ``layer_types`` lists sliding layers
(Gemma 2/3, Qwen 2/3), else one windowed mask for every layer when ``sliding_window`` is set alone
(Mistral, Phi-3). After a deletion at ``d`` the new tail's keys, values and log-probs are
taken from the deleted candidate's own packed suffix when it was just scored (``reuse_tokens``
bounds what is kept; no forward), else the cache is cropped to ``d - 2`` and the tail recomputed;
rows ``d - 2`` and ``d - 1`` keep their hidden states, so their new targets cost one LM-head
product. Under the ``answer`` objective the LM head runs only where an answer token is predicted.
With ``reuse_across_steps`` a full scoring keeps every candidate's suffix states (``max_kept_tokens``
at most) and the next one recomputes the candidates left of the deletion only past it (``resume``);
each chain's first such scoring is checked against a full recompute (``resumed_check``).

Gotchas: the result equals ``NaiveScorer`` up to float rounding (fp32: ~1e-5); bf16 rounding
differs between the packed and the full forward, so orders may differ at near-ties. Nothing here
knows which architectures it is exact for: ``exactness.make_scorer`` first runs the self-check of
``exactness`` (once per ``Pruner``, every architecture) and falls back to the naive scorer with a
warning, or raises, when the fast scores differ from a full recompute.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from typing import Sequence

import numpy as np
import torch
from transformers import DynamicCache

from pruneprobe.core.resume import ReusePlan, adopt_stored, keep_packed, plan_reuse, score_resumed
from pruneprobe.core.scoring import window_estimate
from pruneprobe.errors import PruneprobeError


class FastScorer:
    """Exact candidate scores by suffix-only recomputation; same interface as ``NaiveScorer``.

    >>> scorer = FastScorer(model, batch_tokens=768); scorer.reset(prefix, kept, suffix)  # doctest: +SKIP
    """

    name = "fast"
    check = None  # the self-check behind this scorer (``exactness.make_scorer``), if one ran
    # called once per chain, at the first scoring that resumes candidates (``exactness.ResumedRowsCheck``):
    # ``(scorer, resumed, out) -> bool``; False turns reuse off and that scoring is redone without it
    resumed_check = None

    def __init__(self, model, batch_tokens: int = 768, lm_head_everywhere: bool = True, reuse_tokens: int = 4096,
                 reuse_across_steps: bool = False, max_kept_tokens: int = 16384):
        self.model = model
        self.batch_tokens = batch_tokens
        self.lm_head_everywhere = lm_head_everywhere
        self.reuse_tokens = reuse_tokens  # packed suffix tokens kept between deletions for ``delete`` to adopt
        # candidates' suffix states kept from one full scoring to the next (``resume``), at most this many tokens
        self.reuse_across_steps, self.max_kept_tokens = reuse_across_steps, max_kept_tokens
        self.tokens_computed = 0
        self.peak_kept_bytes = 0  # the most bytes ``resume`` stores held at once
        self._scored: dict[int, tuple] = {}  # candidate -> its kept packed suffix, scored since the last state change
        self._kept_tokens = 0
        self._store = None  # ``resume.SuffixStore`` of the last full scoring
        self.windows = mask_windows(model.config)
        # transformers >= 5.2x renamed ``past_key_values`` to ``cache``; accept both
        params = inspect.signature(model.forward).parameters
        self._cache_arg = "cache" if "cache" in params else "past_key_values"

    @property
    def device(self):
        return next(self.model.parameters()).device

    # -- state ---------------------------------------------------------------------------------
    def reset(self, prefix: torch.Tensor, kept: torch.Tensor, suffix: torch.Tensor,
              reference: Sequence[torch.Tensor] = ()) -> list[torch.Tensor]:
        """Start from ``prefix + kept + suffix``. ``reference``: other whole sequences, none longer,
        run right-padded in the same forward (the self-check's full recomputes); returns their
        log-prob vectors from the first reasoning token on, as ``state_logprobs`` lays them out."""
        if len(prefix) < 1:
            raise PruneprobeError("the scored sequence needs at least one token before the reasoning")
        self.p, self.s = len(prefix), len(suffix)
        self.ids = torch.cat([prefix, kept, suffix]).to(self.device)
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.next_lp = torch.empty(0, device=self.device)  # [t] = log p(x[t+1] | x[<=t])
        self.skip_lp = torch.empty(0, device=self.device)  # [t] = log p(x[t+2] | x[<=t])
        self.hidden = torch.empty(0, device=self.device, dtype=next(self.model.parameters()).dtype)  # [t] = LM-head input at t
        self._scored, self._kept_tokens, self._store = {}, 0, None
        self.resumed_checked = False  # this chain's resumed rows not yet checked (``resumed_check``)
        return self._extend_from(0, reference)

    @property
    def n_kept(self) -> int:
        return len(self.ids) - self.p - self.s

    @torch.no_grad()
    def _extend_from(self, start: int, reference: Sequence[torch.Tensor] = ()) -> list[torch.Tensor]:
        """Recompute states, log-probs for positions >= start on top of the cache below start
        (row 0 of the batch; ``reference`` rows, only from 0, follow it right-padded)."""
        cache = self._cache(start) if start > 0 else DynamicCache()
        new = self.ids[start:]
        if reference and (start or max(len(r) for r in reference) > len(new)):
            raise PruneprobeError("reference sequences go with a reset and may not be longer than the state")
        batch = torch.zeros(1 + len(reference), len(new), dtype=new.dtype, device=self.device)
        for r, seq in enumerate([new, *reference]):  # right padding: causal rows never see it
            batch[r, : len(seq)] = seq.to(self.device)
        pos = torch.arange(start, len(self.ids), device=self.device)[None].expand(len(batch), -1)
        with self._lm_head_inputs() as hidden:
            out = self.model(input_ids=batch, position_ids=pos, use_cache=True, **{self._cache_arg: cache})
        self.tokens_computed += len(new)
        self.hidden = torch.cat([self.hidden[:start], hidden[0][0]])
        layers = (out.get("cache") or out.get("past_key_values")).layers
        self.keys = [layer.keys[:1] for layer in layers]
        self.values = [layer.values[:1] for layer in layers]
        all_logp = torch.log_softmax(out.logits.float(), dim=-1)
        logp = all_logp[0]  # rows for positions start..n-1
        n = len(self.ids)
        nxt = logp[: n - 1 - start].gather(-1, self.ids[start + 1 :, None]).squeeze(-1)
        skp = logp[: max(n - 2 - start, 0)].gather(-1, self.ids[start + 2 :, None]).squeeze(-1)
        self.next_lp = torch.cat([self.next_lp[:start], nxt])
        self.skip_lp = torch.cat([self.skip_lp[:start], skp])
        return [all_logp[r, self.p - 1 : len(seq) - 1].gather(-1, batch[r, self.p : len(seq), None]).squeeze(-1).cpu()
                for r, seq in enumerate(reference, 1)]

    def _cache(self, length: int, rows: int = 1) -> DynamicCache:
        return DynamicCache(ddp_cache_data=[(k[:, :, :length].expand(rows, -1, -1, -1), v[:, :, :length].expand(rows, -1, -1, -1))
                                            for k, v in zip(self.keys, self.values)])

    @contextmanager
    def _lm_head_inputs(self):
        """Collect the hidden states the LM head is applied to during a forward."""
        got: list[torch.Tensor] = []
        handle = self.model.get_output_embeddings().register_forward_hook(lambda mod, args, out: got.append(args[0]))
        try:
            yield got
        finally:
            handle.remove()

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.model.get_output_embeddings()(hidden)
        cap = getattr(self.model.config, "final_logit_softcapping", None)  # Gemma 2 / 3
        return torch.tanh(logits / cap) * cap if cap else logits

    def delete(self, j: int, scored: tuple | None = None) -> None:
        """Delete kept token ``j``; ``scored``: its packed suffix ``(kept, row, at, length)`` from a
        forward outside this scorer (``multiscorer``), adopted like one scored here."""
        d, store = self.p + j, self._store
        scored, self._scored, self._kept_tokens = scored or self._scored.get(j), {}, 0
        self.ids = torch.cat([self.ids[:d], self.ids[d + 1 :]])
        if scored is not None:
            self._adopt(d, *scored)
        elif store is not None and store.fresh and d in store.where and store.hidden is not None:
            adopt_stored(self, d, store)  # its region, scored just now, is the new tail
        else:  # rows d-2 (skip target) and d-1 (next target) changed targets
            self._extend_from(max(d - 2, 0))
        self._store = None if store is None else store.after_deletion(d)

    @torch.no_grad()
    def _adopt(self, d: int, kept: dict, row: int, at: int, length: int) -> None:
        """New state after deleting position ``d``, from that candidate's packed suffix (positions
        ``d ..``): its keys, values, hidden states and log-probs; rows ``d-2, d-1`` re-target."""
        span, n, lo = slice(at, at + length), len(self.ids), max(d - 2, 0)
        def spliced(old, new):
            return [torch.cat([o[:, :, :d], t[row : row + 1, :, span]], dim=2) for o, t in zip(old, new)]

        self.keys, self.values = spliced(self.keys, kept["keys"]), spliced(self.values, kept["values"])
        self.hidden = torch.cat([self.hidden[:d], kept["hidden"][row, span]])
        logp = torch.log_softmax(self._logits(self.hidden[lo:d]).float(), dim=-1)
        rows = torch.arange(lo, d, device=self.device)
        nxt = logp.gather(-1, self.ids[rows + 1, None]).squeeze(-1)
        skp = logp.gather(-1, self.ids[(rows + 2).clamp(max=n - 1), None]).squeeze(-1)
        self.next_lp = torch.cat([self.next_lp[:lo], nxt, kept["next"][row, span]])[: n - 1]
        self.skip_lp = torch.cat([self.skip_lp[:lo], skp, kept["skip"][row, span]])[: max(n - 2, 0)]

    def state_logprobs(self) -> torch.Tensor:
        return self.next_lp[self.p - 1 :].cpu()

    # -- candidates ----------------------------------------------------------------------------
    @torch.no_grad()
    def candidate_logprobs(self, candidates: Sequence[int] | None = None,
                           answer_only: bool | None = None, max_suffix: int | None = None) -> torch.Tensor:
        """``[C, k - 1 + S]`` log-probs; with ``answer_only`` the reasoning part is NaN (not computed
        for recomputed positions). With ``max_suffix=w`` only the ``w`` tokens after each cut are
        recomputed and later tokens keep the current state's log-probs: a local estimate, exact
        for candidates within ``w + 1`` tokens of the end."""
        answer_only = (not self.lm_head_everywhere) if answer_only is None else answer_only
        k, p, n = self.n_kept, self.p, len(self.ids)
        keep = max_suffix is None and not answer_only  # a full suffix, scored everywhere: delete can adopt it
        cands = list(range(k)) if candidates is None else list(candidates)
        full = self.reuse_across_steps and max_suffix is None and cands == list(range(k))
        plan = plan_reuse(self, answer_only) if full else None  # resume from the last full scoring, keep regions
        width = k - 1 + self.s
        out = torch.full((len(cands), width), float("nan"), device=self.device)
        first_suffix = k - 1  # index in a candidate's vector where the suffix starts
        if cands:  # cached part: tokens before the cut, then the "skip" log-prob at the cut
            cut = torch.tensor(cands, device=self.device)[:, None]
            cols = torch.arange(width, device=self.device)[None, :]
            before = self.next_lp[p - 1 : p - 1 + width].expand(len(cands), -1)
            out = torch.where(cols < cut, before, out)
            out.scatter_(1, cut, self.skip_lp[p - 1 + cut])
        if plan is not None and plan.resumed:
            score_resumed(self, plan, out, answer_only)
        self._store = self._store if plan is None else None  # read by score_resumed only
        resumed = set(plan.resumed) if plan is not None else ()
        # chunk candidates so each packed forward holds about batch_tokens tokens
        chunk: list[tuple[int, int]] = []
        size = 0
        for row, j in enumerate(cands):
            length = n - 2 - (p + j)  # recomputed tokens x[i+1 .. n-2]
            if max_suffix is not None:
                length = min(length, max_suffix)
            if length <= 0 or (answer_only and j + length < first_suffix) or j in resumed:  # nothing to recompute here
                continue
            if chunk and size + length > self.batch_tokens:
                self._score_chunk(chunk, out, first_suffix, answer_only, max_suffix, keep, plan)
                chunk, size = [], 0
            chunk.append((row, j))
            size += length
        if chunk:
            self._score_chunk(chunk, out, first_suffix, answer_only, max_suffix, keep, plan)
        if plan is not None:
            self._store = plan.builder.build(self, None if answer_only else out.clone())
            kept = 0 if self._store is None else self._store.nbytes
            self.peak_kept_bytes = max(self.peak_kept_bytes, plan.peak, kept)
            if plan.resumed and not self.resumed_checked and self.resumed_check is not None:
                self.resumed_checked = True
                if not self.resumed_check(self, plan.resumed, out):  # not exact here: score again without reuse
                    self.reuse_across_steps, self._store = False, None
                    return self.candidate_logprobs(candidates, answer_only, max_suffix)
        if max_suffix is not None and cands:  # beyond the window: the current state's log-probs
            out = window_estimate(out, cands, self.next_lp[p - 1 :], max_suffix)
        if answer_only:
            out[:, :first_suffix] = float("nan")
        return out.cpu()

    def _score_chunk(self, chunk, out, first_suffix: int, answer_only: bool, max_suffix: int | None = None,
                     keep: bool = False, plan: ReusePlan | None = None) -> None:
        p, n, dev = self.p, len(self.ids), self.device
        cuts = [p + j for _, j in chunk]  # sequence position of each deleted token
        lengths = [n - 2 - i for i in cuts]  # recomputed tokens x[i+1 .. n-2] of each candidate
        if max_suffix is not None:
            lengths = [min(length, max_suffix) for length in lengths]
        # short windows: every segment in one row (no per-row copy of the cache); suffixes: two per row
        rows = [list(range(len(lengths)))] if max_suffix is not None else fold_rows(lengths)
        width = max(sum(lengths[s] for s in row) for row in rows)
        # per row: segment id (-1 = padding), new position, token id, cut of the token's segment
        seg = np.full((len(rows), width), -1, dtype=np.int64)
        pos = np.zeros((len(rows), width), dtype=np.int64)
        placed = {}  # segment -> (row, offset)
        for b, row in enumerate(rows):
            at = 0
            for s in row:
                seg[b, at : at + lengths[s]] = s
                pos[b, at : at + lengths[s]] = np.arange(cuts[s], cuts[s] + lengths[s])
                placed[s] = (b, at)
                at += lengths[s]
        seg, pos = torch.from_numpy(seg).to(dev), torch.from_numpy(pos).to(dev)
        real = seg >= 0
        ids = torch.where(real, self.ids[(pos + 1).clamp(max=n - 1)], self.ids[0])
        cut = torch.where(real, torch.tensor(cuts, device=dev)[seg.clamp(min=0)], 1)  # padding sees key 0
        c = max(cuts)
        mask = packed_attention_mask(seg, pos, cut, c, self.windows, next(self.model.parameters()).dtype)
        # a packed token at new position q predicts new position q+1; keep only the scored ones
        vec_index = pos + 1 - p  # index in the candidate's vector of the predicted token
        needed = real & (vec_index >= first_suffix) if answer_only else real
        cols = torch.nonzero(needed.any(0)).squeeze(-1)  # LM head only on columns some row needs
        with self._lm_head_inputs() as hidden:
            res = self.model(
                input_ids=ids, position_ids=pos, attention_mask=mask, use_cache=True,
                **{self._cache_arg: self._cache(c, len(rows))}, logits_to_keep=cols,
            )
        self.tokens_computed += int(real.sum())
        # packed token x[q+1] at new position q predicts x[q+2]; log-softmax without a [tokens, vocab] copy
        logits = res.logits.float()
        lse = torch.logsumexp(logits, dim=-1)
        lp = logits.gather(-1, self.ids[(pos[:, cols] + 2).clamp(max=n - 1)][..., None]).squeeze(-1) - lse
        stored = [] if plan is None else [(*placed[s], lengths[s], cuts[s]) for s, (_, j) in enumerate(chunk) if j in plan.keep]
        layers = (res.get("cache") or res.get("past_key_values")).layers
        keep_packed(plan.builder if plan else None, layers, hidden[0] if len(cols) == width else None, c, stored)
        keep = keep and not (stored and len(stored) == len(chunk) and not answer_only)  # the store adopts them
        if keep and len(cols) == width and self._kept_tokens + int(real.sum()) <= self.reuse_tokens:
            self._kept_tokens += int(real.sum())
            skip = logits.gather(-1, self.ids[(pos + 3).clamp(max=n - 1)][..., None]).squeeze(-1) - lse
            kept = {"keys": [layer.keys[:, :, c:].clone() for layer in layers], "hidden": hidden[0],
                    "values": [layer.values[:, :, c:].clone() for layer in layers], "next": lp, "skip": skip}
            for s, (_, j) in enumerate(chunk):
                self._scored[j] = (kept, *placed[s], lengths[s])
        b_idx, k_idx = torch.nonzero(needed[:, cols], as_tuple=True)
        out_rows = torch.tensor([r for r, _ in chunk], device=dev)[seg[b_idx, cols[k_idx]]]
        out[out_rows, vec_index[b_idx, cols[k_idx]]] = lp[b_idx, k_idx]


def packed_attention_mask(seg: torch.Tensor, pos: torch.Tensor, cut: torch.Tensor, cache_len: int,
                          windows: dict, dtype: torch.dtype):
    """The additive 4-D mask of packed suffixes ``[rows, width]`` over ``cache_len`` cached keys.

    ``seg``: each packed token's segment (-1: padding), ``pos``: its position, ``cut``: its
    segment's cut (cached keys below it are visible). A token sees those keys and its own
    segment's earlier tokens, within each layer type's window (``mask_windows``). Returns one
    mask for every layer, or ``{layer_type: mask}``."""
    cache_pos = torch.arange(cache_len, device=seg.device)
    allowed_cache = cache_pos[None, None, :] < cut[:, :, None]
    allowed_packed = (seg[:, :, None] == seg[:, None, :]) & (pos[:, None, :] <= pos[:, :, None])
    allowed = torch.cat([allowed_cache, allowed_packed], dim=2)
    key_pos = torch.cat([cache_pos.expand(len(seg), -1), pos], dim=1)

    def additive(ok: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros(ok.shape, dtype=dtype, device=ok.device)
        return mask.masked_fill_(~ok, torch.finfo(dtype).min)[:, None]

    masks = {kind: additive(allowed if w is None else allowed & (key_pos[:, None, :] > pos[:, :, None] - w))
             for kind, w in windows.items()}
    return masks[None] if None in masks else masks  # one mask for every layer, or one per layer type


def mask_windows(config) -> dict[str | None, int | None]:
    """The sliding window of each attention mask the model looks up, from its config.

    With ``layer_types`` listing a sliding layer (Gemma 2/3, Qwen 2/3 with ``use_sliding_window``):
    ``{layer_type: window or None}``, one mask per type; otherwise ``{None: window}``, one mask for
    every layer, windowed when the config sets ``sliding_window`` (Mistral, Phi-3) unless a flag
    such as ``use_sliding_window=False`` turns it off.

    >>> from transformers import MistralConfig
    >>> mask_windows(MistralConfig(sliding_window=4096))
    {None: 4096}
    """
    window = getattr(config, "sliding_window", None)
    if getattr(config, "use_sliding_window", True) is False or not isinstance(window, int):
        window = None
    types = set(getattr(config, "layer_types", None) or [])
    unknown = types - {"full_attention", "sliding_attention"}
    if unknown:
        raise PruneprobeError(f"the fast scorer cannot build masks for layer types {sorted(unknown)}; "
                              "use scorer='naive'")
    if "sliding_attention" in types:
        if window is None:
            raise PruneprobeError("config lists sliding_attention layers but sets no sliding_window; use scorer='naive'")
        return {t: window if t == "sliding_attention" else None for t in sorted(types)}
    return {None: None if types else window}


def fold_rows(lengths: Sequence[int]) -> list[list[int]]:
    """Pack segments two per row, longest with shortest, so rows come out nearly equal in length.

    >>> fold_rows([5, 4, 3, 2, 1])
    [[0, 4], [1, 3], [2]]
    """
    order = sorted(range(len(lengths)), key=lambda s: -lengths[s])
    return [[order[i], order[-1 - i]] if i != len(order) - 1 - i else [order[i]] for i in range((len(order) + 1) // 2)]

