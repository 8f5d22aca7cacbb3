"""Batched sampling for rejection sampling: all samples of a problem decoded together, the prompt prefilled once.

Canonical pattern::

    from pruneprobe.data.sampling import sample_shared
    samples = sample_shared(teacher, problems, n_per_problem=10, max_new_tokens=512, temperature=0.7)
    text, new_tokens, ended = samples[0][0]      # problem 0, sample 0

Gotchas:
- Samples as ``generate(do_sample=True)`` does (temperature, then top-k, then top-p; the same
  left-padded prompts and positions; greedy decoding here equals ``generate``'s, a test checks it),
  but faster on a CPU: each prompt is prefilled once and its KV cache repeated, a row leaves the
  batch once it ends (when an eighth of the rows have), and the KV cache is written in place into
  buffers sized once (``_GrowingLayer``) instead of concatenated per token. Models with sliding
  windows or other layer kinds keep their own cache.
- Draws from the global torch RNG: seed it (``generate_chains`` does, in a forked RNG).
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from pruneprobe.data.examples import Example
from pruneprobe.data.models import Pruner
from pruneprobe.errors import PruneprobeError


def pad_id(teacher: Pruner) -> int:
    """The token that pads prompts on the left: the tokenizer's pad token, else its end of sequence."""
    tok = teacher.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    if pad is None:
        raise PruneprobeError(f"teacher {teacher.name!r}: tokenizer has neither a pad nor an eos token")
    return pad


def left_padded(teacher: Pruner, batch: list[Example], max_new_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompts of ``batch`` (each format's system prompt, the teacher's template), left padded, and their mask."""
    add_special = teacher.template == "plain"
    rows = []
    for problem in batch:
        prompt = teacher.render(problem.prompt_format.system_prompt, problem.question)
        ids = list(teacher.tokenizer(prompt, add_special_tokens=add_special)["input_ids"])
        if len(ids) + max_new_tokens > teacher.max_length:
            raise PruneprobeError(
                f"problem {problem.id!r}: prompt of {len(ids)} tokens + max_new_tokens={max_new_tokens} "
                f"exceeds the teacher's context of {teacher.max_length}"
            )
        rows.append(ids)
    width, pad = max(len(r) for r in rows), pad_id(teacher)  # every row's generation starts at `width`
    input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=teacher.device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=teacher.device)
    return input_ids, mask


def eos_ids(teacher: Pruner) -> list[int]:
    """The tokens that end a sample: the tokenizer's end of sequence and the generation config's."""
    ids = {teacher.tokenizer.eos_token_id}
    configured = getattr(getattr(teacher.model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
    return sorted(i for i in ids if i is not None)


def _pick(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """One sampled token per row, as ``generate`` samples (temperature, then top-k, then top-p)."""
    scores = logits.float() / temperature
    if top_k and top_k < scores.shape[-1]:
        scores = scores.masked_fill(scores < torch.topk(scores, top_k).values[:, -1:], float("-inf"))
    if top_p < 1.0:
        ordered, order = torch.sort(scores, descending=False)
        drop = ordered.softmax(-1).cumsum(-1) <= 1 - top_p
        drop[:, -1] = False
        scores = scores.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return torch.multinomial(scores.softmax(-1), 1).squeeze(1)


def _decode(teacher: Pruner, step, logits: torch.Tensor, mask: torch.Tensor, max_new_tokens: int,
            pick, group: int = 1, on_group: Callable[[int, list[list[int]]], None] | None = None
            ) -> tuple[list[list[int]], list[bool]]:
    """Sample every row until its end of sequence; finished rows leave the batch (kept until an eighth are done).
    ``on_group(g, tokens)`` is called as soon as every row of group ``g`` (rows ``g * group`` onwards) has ended."""
    eos = torch.tensor(eos_ids(teacher), device=logits.device)
    n = logits.shape[0]
    rows = torch.arange(n, device=logits.device)  # the original row of each row still in the batch
    positions = mask.sum(1)  # the first new token's position: the prompt's length
    tokens: list[list[int]] = [[] for _ in range(n)]
    ended = [False] * n
    running = [group] * (n // group)  # rows of each group not ended yet
    for k in range(max_new_tokens):
        nxt = pick(logits)
        for r, t, stop in zip(rows.tolist(), nxt.tolist(), torch.isin(nxt, eos).tolist()):
            if not ended[r]:
                tokens[r].append(t)
                ended[r] = stop
                running[r // group] -= stop
                if stop and running[r // group] == 0 and on_group is not None:
                    on_group(r // group, tokens[r - r % group:r - r % group + group])
        alive = torch.tensor([not ended[r] for r in rows.tolist()], device=logits.device)
        if k + 1 == max_new_tokens or not alive.any():
            break
        if 8 * int((~alive).sum()) >= len(rows):
            keep = alive.nonzero().squeeze(1)
            rows, nxt, mask, positions = rows[keep], nxt[keep], mask[keep], positions[keep]
            step.cache.batch_select_indices(keep)
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        logits = step(input_ids=nxt[:, None], attention_mask=mask, position_ids=positions[:, None])
        positions = positions + 1
    return tokens, ended


class _GrowingLayer(DynamicLayer):
    """A KV-cache layer written in place into a buffer sized once (prompt + new tokens), not concatenated per token."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.length, self.buffers = capacity, 0, ()

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        new = key_states.shape[-2]
        if not self.is_initialized:
            self.device, self.is_initialized = key_states.device, True
            shape = (*key_states.shape[:-2], max(self.capacity, new), key_states.shape[-1])
            self.buffers = tuple(s.new_empty(shape) for s in (key_states, value_states))
        if self.length + new > self.buffers[0].shape[-2]:  # sized for the whole generation: a bug if reached
            raise PruneprobeError(f"KV cache of {self.buffers[0].shape[-2]} tokens is full")
        for buffer, states in zip(self.buffers, (key_states, value_states)):
            buffer[..., self.length:self.length + new, :].copy_(states)
        self.length += new
        return self._views()

    def _views(self) -> tuple[torch.Tensor, torch.Tensor]:
        self.keys, self.values = (b[..., :self.length, :] for b in self.buffers)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.length

    def batch_repeat_interleave(self, repeats: int) -> None:
        self.buffers = tuple(b.repeat_interleave(repeats, dim=0) for b in self.buffers)
        self._views()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        fresh = tuple(b.new_empty((len(indices), *b.shape[1:])) for b in self.buffers)
        for target, b in zip(fresh, self.buffers):  # only the filled part is copied
            target[..., :self.length, :] = b[indices, ..., :self.length, :]
        self.buffers = fresh
        self._views()


def _growing_cache(model, capacity: int):
    """A cache of :class:`_GrowingLayer` for a model whose layers all attend to the whole sequence, else ``None``."""
    try:
        cache = DynamicCache(config=model.config)
    except Exception:  # a configuration the default cache cannot read: let the model build its own
        return None
    if not cache.layers or any(type(layer) is not DynamicLayer for layer in cache.layers):
        return None  # sliding windows, linear attention, ...: the model's own cache
    cache.layers = [_GrowingLayer(capacity) for _ in cache.layers]
    return cache


class _Step:
    """One forward with the KV cache (``cache`` or ``past_key_values``, by transformers version)."""

    def __init__(self, model, capacity: int):
        self.model, self.cache = model, _growing_cache(model, capacity)
        params = inspect.signature(model.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        self.keep_arg = {"logits_to_keep": 1} if "logits_to_keep" in params else {}

    def __call__(self, **kwargs) -> torch.Tensor:
        cache = {self.cache_arg: self.cache} if self.cache is not None else {}
        with torch.no_grad():
            out = self.model(use_cache=True, **cache, **self.keep_arg, **kwargs)
        self.cache = out.get("cache") or out.get("past_key_values")
        return out.logits[:, -1]


def sample_shared(teacher: Pruner, batch: list[Example], n_per_problem: int, max_new_tokens: int,
                  temperature: float, top_k: int = 0, top_p: float = 1.0,
                  on_problem: Callable[[int, list[tuple[str, int, bool]]], None] | None = None
                  ) -> list[list[tuple[str, int, bool]]]:
    """``n_per_problem`` samples of each problem, decoded together: ``(text, new tokens, ended)`` per sample.

    Each prompt is prefilled once and its cache repeated; a row leaves the batch at its end of
    sequence. ``on_problem(i, samples)`` is called once per problem: as soon as all its samples have
    ended, or at the end for a problem with a sample cut at ``max_new_tokens`` (so a caller can save
    problems as they finish). Draws from the global torch RNG (``generate_chains`` seeds it).
    """
    reported: set[int] = set()

    def report(i: int, rows: list[list[int]], ended: list[bool]) -> None:
        if on_problem is not None and i not in reported:
            reported.add(i)
            texts = teacher.tokenizer.batch_decode(rows, skip_special_tokens=True)
            on_problem(i, [(text, len(ids), end) for text, ids, end in zip(texts, rows, ended)])

    input_ids, mask = left_padded(teacher, batch, max_new_tokens)
    step = _Step(teacher.model, input_ids.shape[1] + max_new_tokens)
    logits = step(input_ids=input_ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0))
    step.cache.batch_repeat_interleave(n_per_problem)
    tokens, ended = _decode(teacher, step, logits.repeat_interleave(n_per_problem, 0),
                            mask.repeat_interleave(n_per_problem, 0), max_new_tokens,
                            lambda scores: _pick(scores, temperature, top_k, top_p), n_per_problem,
                            lambda i, rows: report(i, rows, [True] * len(rows)))
    texts = teacher.tokenizer.batch_decode(tokens, skip_special_tokens=True)
    flat = [(text, len(ids), end) for text, ids, end in zip(texts, tokens, ended)]
    samples = [flat[i * n_per_problem:(i + 1) * n_per_problem] for i in range(len(batch))]
    for i in range(len(batch)):  # the problems with a sample cut at max_new_tokens
        report(i, tokens[i * n_per_problem:(i + 1) * n_per_problem], ended[i * n_per_problem:(i + 1) * n_per_problem])
    return samples


__all__ = ["eos_ids", "left_padded", "pad_id", "sample_shared"]
