"""Attention each reasoning token receives, captured with nnsight (docs/method.md, "Analyses").

Canonical pattern::

    from pruneprobe import load_pruner
    from pruneprobe.analysis.attention import attention_features, feature_columns
    pruner = load_pruner("smollm2-135m", attn_implementation="eager")
    feats = attention_features(pruner, example)        # one row per reasoning token
    feats[feature_columns(feats, layer=3)]              # the six layer-3 attention features

Features of reasoning token ``j`` (sequence position ``p``), for every layer ``l``:

- ``attn_L{l}_answer_{mean,max}``: attention ``p`` receives from the tokens *after* the reasoning
  (answer line and template closing tokens);
- ``attn_L{l}_later_{mean,max}``: from later reasoning tokens (positions ``p+1 .. end-1``); 0 for
  the last reasoning token, which has no such query;
- ``attn_L{l}_rest_{mean,max}``: from every later position (later reasoning and after it).

Each is, per head, the **mean over the receiving queries** of the attention probability from the
query to ``p``; then ``_mean`` averages those over heads and ``_max`` takes the largest head
(``attention_head_features`` keeps them per head: ``head_L{l}_H{h}_{source}``). Plus
``position`` (``j / R``) and ``surprisal`` (``-log p(token | everything before it)``, nats, from
the same forward).

Gotchas:
- Attention probabilities exist only under ``attn_implementation="eager"`` (sdpa / flash never
  form them). A model on another implementation raises ``PruneprobeError`` unless
  ``ensure_eager=True``, which switches it with ``model.set_attn_implementation("eager")`` for
  the call and restores it after.
- The model is wrapped with ``nnsight.NNsight`` (the plain module wrapper; nnsight is the
  ``pruneprobe[attention]`` extra). ``TransformersModel`` is not used: wrapping a loaded model
  builds a pipeline that re-configures the shared tokenizer (pad token, padding side), and the
  input here is token ids anyway. Each layer's ``[1, H, S, S]`` probabilities are reduced to
  ``[6, R]`` inside the trace before ``.save()``; only ``capture_attention`` keeps whole maps.
  Wrapping installs nnsight's per-module controller on the model, inert outside a trace.
- Layers are the model's self-attention modules in order (``_can_record_outputs["attentions"]``,
  the same ones ``output_attentions=True`` records), numbered from 0. The finder and the eager
  switch live in ``pruneprobe.core.attention_modules`` (shared with the H2O baseline) and are
  re-exported here.
- With a sliding window (Gemma-3), queries outside the window give probability 0 and count in
  the mean.
"""

from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from pruneprobe.core.attention_modules import attention_module_paths, eager_attention
from pruneprobe.core.encoding import EncodedExample, encode_example
from pruneprobe.data.examples import Example
from pruneprobe.data.models import as_pruner
from pruneprobe.errors import PruneprobeError

SOURCES = ("answer", "later", "rest")
HEAD_REDUCTIONS = ("mean", "max")
FEATURE_RE = re.compile(r"^attn_L(\d+)_(answer|later|rest)_(mean|max)$")


def feature_name(layer: int, source: str, reduction: str) -> str:
    """Column name of one attention feature, e.g. ``attn_L3_answer_max``."""
    return f"attn_L{layer}_{source}_{reduction}"


def feature_columns(df: pd.DataFrame, layer: int | None = None) -> list[str]:
    """The attention-feature columns of ``df`` (all layers, or one ``layer``), in table order."""
    return [c for c in df.columns
            if (m := FEATURE_RE.match(str(c))) and (layer is None or int(m.group(1)) == layer)]


def feature_layers(df: pd.DataFrame) -> list[int]:
    """The layers that have attention features in ``df``, sorted."""
    return sorted({int(FEATURE_RE.match(c).group(1)) for c in feature_columns(df)})


# -- model plumbing ---------------------------------------------------------------------------
def _nnsight_wrapper(model):
    try:
        from nnsight import NNsight
    except ImportError as exc:  # pragma: no cover - nnsight is an optional extra
        raise PruneprobeError("attention capture needs nnsight: pip install 'pruneprobe[attention]'") from exc
    return NNsight(model)


def _select_layers(n: int, layers: Iterable[int] | None) -> list[int]:
    if layers is None:
        return list(range(n))
    out = sorted({int(l) + n if int(l) < 0 else int(l) for l in layers})
    if any(not 0 <= l < n for l in out):
        raise PruneprobeError(f"layers {list(layers)} out of range for a model with {n} attention layers")
    return out


@torch.no_grad()
def _trace_attention(pruner, ids: torch.Tensor, layers, reduce, logits_from: int | None = None,
                     ensure_eager: bool = False):
    """One forward under nnsight; ``reduce(weights[H, S, S]) -> tensor`` runs inside the trace for
    each selected layer. Returns ``({layer: reduced}, logits of positions >= logits_from or None)``."""
    pruner = as_pruner(pruner)
    model = pruner.model
    paths = attention_module_paths(model)
    chosen = _select_layers(len(paths), layers)
    ids = torch.as_tensor(ids, dtype=torch.long).reshape(1, -1).to(pruner.device)
    keep = 1 if logits_from is None else ids.shape[1] - logits_from
    saved: dict[int, torch.Tensor] = {}
    logits: list[torch.Tensor] = []
    with eager_attention(model, ensure_eager):
        wrapper = _nnsight_wrapper(model)
        envoys = [wrapper.get(paths[l][0]) for l in chosen]
        with wrapper.trace(ids, use_cache=False, logits_to_keep=keep):
            for layer, envoy in zip(chosen, envoys):  # in execution order
                out = envoy.output
                weights = out[paths[layer][1]] if isinstance(out, (tuple, list)) else None
                if weights is None:
                    raise PruneprobeError(
                        f"layer {layer} ({paths[layer][0]}) returned no attention probabilities; "
                        "the model must run attn_implementation='eager'"
                    )
                saved[layer] = reduce(weights[0].float()).cpu().save()
            if logits_from is not None:
                logits.append(wrapper.output.logits[0].float().cpu().save())
    return saved, (logits[0] if logits else None)


# -- public -------------------------------------------------------------------------------------
def capture_attention(pruner, input_ids, layers: Sequence[int] | None = None, *,
                      ensure_eager: bool = False) -> dict[int, torch.Tensor]:
    """Full attention probabilities ``{layer: [H, S, S]}`` (float32, CPU) of one sequence.

    For tests and small inputs only: it keeps ``L * H * S^2`` numbers. Row ``q`` of head ``h`` is
    the distribution of query ``q`` over keys ``0..q``.

    >>> probs = capture_attention(pruner, enc.input_ids, layers=[0])   # doctest: +SKIP
    >>> probs[0].shape                                                 # doctest: +SKIP
    torch.Size([4, 57, 57])
    """
    saved, _ = _trace_attention(pruner, input_ids, layers, lambda w: w, ensure_eager=ensure_eager)
    return saved


def _reduce_received(w: torch.Tensor, rs: int, re_: int, per_head_out: bool = False) -> torch.Tensor:
    """``[H, S, S]`` probabilities -> ``[6, R]``: (answer, later, rest) x (mean, max) over heads
    (``[3, H, R]``, one row per source and head, with ``per_head_out``)."""
    r = re_ - rs
    a = w[:, rs:, rs:re_]  # queries from the reasoning start on, keys = reasoning tokens
    inside, after = a[:, :r], a[:, r:]  # [H, R, R] (query i, key j), [H, n_after, R]
    later_sum = inside.mul(torch.ones(r, r, device=w.device).tril(-1)).sum(1)  # [H, R]
    n_later = torch.arange(r - 1, -1, -1, device=w.device, dtype=w.dtype)  # R-1-j
    answer = after.mean(1)
    later = later_sum / n_later.clamp(min=1)
    rest = (later_sum + after.sum(1)) / (n_later + after.shape[1])
    per_head = torch.stack([answer, later, rest])  # [3, H, R]
    if per_head_out:
        return per_head
    return torch.stack([per_head.mean(1), per_head.amax(1)], 1).reshape(6, r)


def _encoded(pruner, example_or_encoded, example_id: str | None) -> tuple[EncodedExample, str | None]:
    if isinstance(example_or_encoded, EncodedExample):
        return example_or_encoded, example_id
    if isinstance(example_or_encoded, Example):
        return encode_example(pruner, example_or_encoded), example_id or example_or_encoded.id
    raise PruneprobeError("attention features take an Example or an EncodedExample")


def attention_features(pruner, example_or_encoded: Example | EncodedExample, *,
                       layers: Sequence[int] | None = None, example_id: str | None = None,
                       ensure_eager: bool = False) -> pd.DataFrame:
    """One row per reasoning token: per-layer attention received, ``position`` and ``surprisal``.

    Columns: ``example_id, index, token, position, surprisal`` then ``attn_L{l}_{source}_{head}``
    (see the module docstring). One forward; memory beyond it is ``O(L * R)``.

    >>> feats = attention_features(pruner, example)              # doctest: +SKIP
    >>> feats[["index", "position", "attn_L0_answer_mean"]].head()  # doctest: +SKIP
    """
    pruner = as_pruner(pruner)
    enc, eid = _encoded(pruner, example_or_encoded, example_id)
    rs, re_, r = enc.reasoning_start, enc.reasoning_end, enc.n_reasoning
    start = max(rs - 1, 0)  # logits at rs-1 .. re-2 predict the reasoning tokens
    saved, logits = _trace_attention(pruner, enc.input_ids, layers, lambda w: _reduce_received(w, rs, re_),
                                     logits_from=start, ensure_eager=ensure_eager)
    lp = torch.log_softmax(logits[: re_ - 1 - start], -1)
    target = enc.input_ids[start + 1 : re_].cpu()
    surprisal = -lp.gather(-1, target[:, None])[:, 0].double().numpy()
    if rs == 0:  # nothing precedes the first token
        surprisal = np.concatenate([[np.nan], surprisal])
    pieces = list(enc.reasoning_pieces) or [""] * r
    cols: dict[str, object] = {"example_id": eid, "index": np.arange(r), "token": pieces,
                               "position": np.arange(r) / r, "surprisal": surprisal}
    for layer, vals in saved.items():
        v = vals.double().numpy()
        for si, source in enumerate(SOURCES):
            for hi, red in enumerate(HEAD_REDUCTIONS):
                cols[feature_name(layer, source, red)] = v[si * len(HEAD_REDUCTIONS) + hi]
    return pd.DataFrame(cols)


def head_feature_name(layer: int, head: int, source: str) -> str:
    """Column name of one per-head attention feature, e.g. ``head_L3_H2_answer``."""
    return f"head_L{layer}_H{head}_{source}"


def attention_head_features(pruner, example_or_encoded: Example | EncodedExample, *,
                            layers: Sequence[int] | None = None, example_id: str | None = None,
                            ensure_eager: bool = False) -> pd.DataFrame:
    """One row per reasoning token: the attention each head gives it, not reduced over heads.

    Columns: ``example_id, index`` then ``head_L{l}_H{h}_{answer,later,rest}`` (the per-head values
    that ``attention_features`` averages or maxes over heads). One forward, no logits.

    >>> heads = attention_head_features(pruner, example, layers=[0, 1])   # doctest: +SKIP
    >>> heads["head_L0_H2_answer"].head()                                # doctest: +SKIP
    """
    pruner = as_pruner(pruner)
    enc, eid = _encoded(pruner, example_or_encoded, example_id)
    rs, re_, r = enc.reasoning_start, enc.reasoning_end, enc.n_reasoning
    saved, _ = _trace_attention(pruner, enc.input_ids, layers, lambda w: _reduce_received(w, rs, re_, True),
                                ensure_eager=ensure_eager)
    cols: dict[str, object] = {"example_id": eid, "index": np.arange(r)}
    for layer, vals in saved.items():
        v = vals.double().numpy()  # [3, H, R]
        for si, source in enumerate(SOURCES):
            for head in range(v.shape[1]):
                cols[head_feature_name(layer, head, source)] = v[si, head]
    return pd.DataFrame(cols)


def attention_features_many(pruner, examples: Iterable[Example], *, layers: Sequence[int] | None = None,
                            ensure_eager: bool = False, progress: bool = False) -> pd.DataFrame:
    """``attention_features`` of several examples, concatenated (one forward each)."""
    pruner, examples = as_pruner(pruner), list(examples)
    it = examples
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(examples, desc="attention", unit="ex")
    with eager_attention(pruner.model, ensure_eager):  # switch once for the whole batch
        frames = [attention_features(pruner, ex, layers=layers) for ex in it]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


__all__ = ["attention_features", "attention_features_many", "attention_head_features", "head_feature_name", "capture_attention", "attention_module_paths",
           "eager_attention", "feature_columns", "feature_layers", "feature_name", "SOURCES"]
