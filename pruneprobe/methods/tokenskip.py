"""TokenSkip baseline: LLMLingua-2 keep-probabilities, with ratios measured in the pruner's tokens.

A token-classification model (LLMLingua-2: an XLM-RoBERTa classifier, label 1 = keep) gives each
whitespace-separated word of the chain a keep-probability (softmax[..., keep_label] per sub-token,
averaged over the word's sub-tokens). LLMLingua-2 keeps the words above the ``(1 - rate)``
percentile of those probabilities; like TokenSkip, the rate is binary-searched until the kept
fraction, counted in the *pruner's* reasoning tokens, is within ``tolerance`` (0.005) of the target.

Canonical pattern::

    from pruneprobe.methods.tokenskip import load_token_classifier, tokenskip_prune, tokenskip_keep_mask
    clf = load_token_classifier("microsoft/llmlingua-2-xlm-roberta-large-meetingbank")  # or a directory
    result = tokenskip_prune(pruner, example, clf)     # full order + searched rates for 0.9/0.8/0.7
    result.metadata["tokenskip_rates"]["0.8"]          # rate, threshold, kept fraction, tolerance met
    mask = tokenskip_keep_mask(pruner, example, clf, 0.8)

Mapping words onto pruner tokens: each pruner reasoning token covers a character span of the chain
(``EncodedExample.reasoning_pieces``). A token is kept when at least half of its non-space
characters lie in kept words; a whitespace-only token follows the next token with non-space
characters (the previous one at the end of the chain). Equivalently, each token gets a score, the
char-weighted upper median of the probabilities of the words it covers (its word's probability in
the usual case), and is kept iff its score is above the word threshold. The deletion order sorts
tokens by that score, lowest first, ties by position, so any rho can be read off the order and the
binary-searched mask is always a prefix of it.

Gotchas:
- The ``llmlingua`` package is not used: it fetches a tiktoken file from the internet at start-up.
  transformers applies the classifier directly; chains longer than the classifier's window are
  split at word boundaries into chunks of at most ``max_length`` sub-tokens.
- Words can be coarser than the tolerance (a number like ``1,250`` is several pruner tokens): then
  the closest achievable kept fraction is used and ``within_tolerance`` is False in the metadata.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pruneprobe.core.encoding import EncodedExample, encode_example
from pruneprobe.core.result import PruneResult, n_keep_for
from pruneprobe.data.examples import Example
from pruneprobe.data.models import as_pruner
from pruneprobe.errors import PruneprobeError
from pruneprobe.methods.baselines import one_shot_result, order_by_score

DEFAULT_CLASSIFIER = "microsoft/llmlingua-2-xlm-roberta-large-meetingbank"


@dataclass
class TokenClassifier:
    """A token-classification model, its (fast) tokenizer, and which label means keep."""

    model: Any
    tokenizer: Any
    name: str = ""
    keep_label: int = 1

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def load_token_classifier(name_or_path: str = DEFAULT_CLASSIFIER, device=None, keep_label: int = 1) -> TokenClassifier:
    """Load an LLMLingua-2-style classifier from a local directory or hub id.

    >>> clf = load_token_classifier("path/to/llmlingua-2-dir")   # doctest: +SKIP
    """
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    local = Path(name_or_path).exists()
    if not local and (name_or_path.startswith((".", "/", "~")) or "/" not in name_or_path):
        raise PruneprobeError(f"token classifier {name_or_path!r} not found: not a local directory or a hub id "
                              f"(LLMLingua-2: {DEFAULT_CLASSIFIER!r})")
    need = f"TokenSkip needs a *ForTokenClassification checkpoint such as {DEFAULT_CLASSIFIER!r}"
    try:
        config = AutoConfig.from_pretrained(name_or_path)
        archs = getattr(config, "architectures", None) or []
        if archs and not any(a.endswith("ForTokenClassification") for a in archs):
            raise PruneprobeError(f"{name_or_path!r} is not a token classifier (architectures: "
                                  f"{', '.join(archs)}); {need}")
        model = AutoModelForTokenClassification.from_pretrained(name_or_path)
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except PruneprobeError:
        raise
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc) or "Unrecognized model" in str(exc):
            raise PruneprobeError(f"{name_or_path!r} is not a token-classification model ({exc}); {need}") from exc
        raise
    except OSError as exc:
        raise PruneprobeError(f"could not load token classifier {name_or_path!r}: {exc}") from exc
    if config.num_labels <= keep_label:
        raise PruneprobeError(f"{name_or_path!r} has {config.num_labels} label(s); keep_label={keep_label} needs more")
    model.eval()
    if device is not None:
        model.to(device)
    return as_classifier(TokenClassifier(model, tokenizer, str(name_or_path), keep_label))


def as_classifier(classifier) -> TokenClassifier:
    """Accept a ``TokenClassifier``, a hub id / directory, or a ``(model, tokenizer)`` pair."""
    if isinstance(classifier, (str, Path)):
        return load_token_classifier(str(classifier))
    if isinstance(classifier, tuple) and len(classifier) == 2:
        model, tok = classifier
        classifier = TokenClassifier(model.eval(), tok, getattr(model.config, "_name_or_path", "") or "classifier")
    if not isinstance(classifier, TokenClassifier):
        raise PruneprobeError("classifier must be a TokenClassifier, a hub id / directory or a (model, tokenizer) pair")
    if not getattr(classifier.tokenizer, "is_fast", False):
        raise PruneprobeError("the classifier's tokenizer must be a fast tokenizer (word_ids are needed)")
    if getattr(classifier.model.config, "num_labels", 0) <= classifier.keep_label:
        raise PruneprobeError(f"classifier has too few labels for keep_label={classifier.keep_label}")
    return classifier


@dataclass
class WordProbs:
    """Whitespace-separated words of ``text``, their character spans and keep-probabilities."""

    text: str
    words: list[str]
    spans: list[tuple[int, int]]
    probs: np.ndarray = field(repr=False)


@torch.no_grad()
def word_keep_probs(classifier, text: str, max_length: int = 512, batch_size: int = 8) -> WordProbs:
    """Keep-probability of every word: softmax[..., keep_label] averaged over its sub-tokens.

    >>> word_keep_probs(clf, "She sold 48 clips.").probs   # doctest: +SKIP
    """
    clf = as_classifier(classifier)
    found = list(re.finditer(r"\S+", text))
    words, spans = [m.group() for m in found], [m.span() for m in found]
    if not words:
        raise PruneprobeError("the reasoning has no words to classify")
    tok = clf.tokenizer
    counts = np.bincount([w for w in tok(words, is_split_into_words=True, add_special_tokens=False).word_ids()
                          if w is not None], minlength=len(words))
    budget = max_length - tok.num_special_tokens_to_add()
    chunks, cur, used = [], [], 0
    for i, c in enumerate(counts):
        if cur and used + c > budget:
            chunks.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += int(c)
    chunks.append(cur)
    sums, hits = np.zeros(len(words)), np.zeros(len(words))
    for b in range(0, len(chunks), batch_size):
        group = chunks[b : b + batch_size]
        enc = tok([[words[i] for i in ch] for ch in group], is_split_into_words=True, truncation=True,
                  max_length=max_length, padding=True, return_tensors="pt")
        logits = clf.model(**{k: v.to(clf.device) for k, v in enc.items()}).logits
        probs = torch.softmax(logits.float(), -1)[..., clf.keep_label].cpu().numpy()
        for r, ch in enumerate(group):
            for pos, w in enumerate(enc.word_ids(r)):
                if w is not None:
                    sums[ch[w]] += probs[r, pos]
                    hits[ch[w]] += 1
    out = np.divide(sums, hits, out=np.full(len(words), np.nan), where=hits > 0)
    if np.isnan(out).all():
        raise PruneprobeError("the classifier's tokenizer produced no sub-tokens for the reasoning")
    out[np.isnan(out)] = np.nanmean(out)  # words the tokenizer drops entirely: the chain's mean
    return WordProbs(text, words, spans, out)


def token_keep_scores(pieces, words: WordProbs) -> np.ndarray:
    """Per pruner token: the char-weighted upper median of its words' probabilities (see module doc)."""
    text = "".join(pieces)
    if text != words.text:
        raise PruneprobeError("word probabilities were computed on a different text than the token pieces")
    word_of_char = np.full(len(text), -1)
    for w, (a, b) in enumerate(words.spans):
        word_of_char[a:b] = w
    scores = np.full(len(pieces), np.nan)
    start = 0
    for t, piece in enumerate(pieces):
        ws = word_of_char[start : start + len(piece)]
        start += len(piece)
        ws = ws[ws >= 0]
        if len(ws):
            probs = np.sort(words.probs[ws])[::-1]  # descending; kept iff the top half is above threshold
            scores[t] = probs[(len(probs) - 1) // 2]
    valid = np.flatnonzero(~np.isnan(scores))
    for t in np.flatnonzero(np.isnan(scores)):  # whitespace-only: the next scored token, else the previous
        nxt = valid[valid > t]
        scores[t] = scores[nxt[0]] if len(nxt) else scores[valid[valid < t][-1]]
    return scores


def threshold_for_rate(word_probs: np.ndarray, rate: float) -> float:
    """LLMLingua-2's word threshold: the ``(1 - rate)`` percentile; words strictly above are kept."""
    return float("-inf") if rate >= 1 else float(np.percentile(word_probs, 100 * (1 - rate)))


@dataclass
class RateSearch:
    """Outcome of the binary search of the LLMLingua-2 rate for one target keep ratio."""

    target: float
    rate: float
    threshold: float
    kept_fraction: float
    n_kept: int
    n_tokens: int
    within_tolerance: bool
    iterations: int
    mask: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in ("target", "rate", "threshold", "kept_fraction", "n_kept", "n_tokens",
                                            "within_tolerance", "iterations")}
        if not np.isfinite(d["threshold"]):
            d["threshold"] = None
        if not self.within_tolerance:
            d["note"] = (f"words are coarser than the tolerance: {self.kept_fraction:.4f} is the closest "
                         f"achievable kept fraction to {self.target}")
        return d


def search_rate(word_probs: np.ndarray, token_scores: np.ndarray, keep_ratio: float, tolerance: float = 0.005,
                max_iter: int = 60) -> RateSearch:
    """Binary-search the rate until the kept fraction of pruner tokens is within ``tolerance``.

    The kept fraction is monotone in the rate; the closest fraction seen is returned when no rate
    reaches the tolerance (the search evaluates both sides of the jump it converges on).
    """
    n_keep_for(keep_ratio, 1)  # validates rho
    n = len(token_scores)

    def evaluate(rate: float):
        thr = threshold_for_rate(word_probs, rate)
        mask = token_scores > thr
        return thr, mask, mask.sum() / n

    lo, hi, best, it = 0.0, 1.0, None, 0
    for it in range(1, max_iter + 1):
        rate = keep_ratio if it == 1 else (lo + hi) / 2  # start at the ratio itself
        thr, mask, frac = evaluate(rate)
        if best is None or abs(frac - keep_ratio) < abs(best[3] - keep_ratio) - 1e-12:
            best = (rate, thr, mask, frac)
        if abs(frac - keep_ratio) <= tolerance:
            break
        lo, hi = (rate, hi) if frac < keep_ratio else (lo, rate)
    rate, thr, mask, frac = best
    return RateSearch(float(keep_ratio), float(rate), float(thr), float(frac), int(mask.sum()), n,
                      bool(abs(frac - keep_ratio) <= tolerance + 1e-12), it, mask)


def _prepare(pruner, example: Example, classifier, max_length: int):
    pruner, clf = as_pruner(pruner), as_classifier(classifier)
    enc: EncodedExample = encode_example(pruner, example)
    words = word_keep_probs(clf, "".join(enc.reasoning_pieces), max_length=max_length)
    return pruner, clf, enc, words, token_keep_scores(enc.reasoning_pieces, words)


def tokenskip_keep_mask(pruner, example: Example, classifier, keep_ratio: float, *, tolerance: float = 0.005,
                        max_length: int = 512) -> np.ndarray:
    """Boolean mask over the pruner's reasoning tokens kept at the binary-searched rate for rho.

    >>> tokenskip_keep_mask(pruner, example, clf, 0.8).mean()   # within 0.005 of 0.8   # doctest: +SKIP
    """
    *_, words, scores = _prepare(pruner, example, classifier, max_length)
    return search_rate(words.probs, scores, keep_ratio, tolerance).mask


def tokenskip_prune(pruner, example: Example, classifier, keep_ratio: float | None = None, objective="joint", *,
                    keep_ratios=(0.9, 0.8, 0.7), tolerance: float = 0.005, traces: bool = True,
                    batch_tokens: int | None = None, max_length: int = 512) -> PruneResult:
    """TokenSkip as a ``PruneResult``: deletion order by keep-probability (lowest first).

    ``keep_ratio=None`` gives the full order; ``keep_ratio=rho`` stops after the tokens the searched
    rate for rho deletes. ``metadata["tokenskip_rates"]`` holds the search for each ratio in
    ``keep_ratios`` (and ``keep_ratio``).

    >>> r = tokenskip_prune(pruner, example, clf); r.metadata["tokenskip_rates"]["0.9"]   # doctest: +SKIP
    """
    t0 = time.perf_counter()
    pruner, clf, enc, words, scores = _prepare(pruner, example, classifier, max_length)
    ratios = list(dict.fromkeys([*keep_ratios, *([keep_ratio] if keep_ratio is not None else [])]))
    searches = {str(rho): search_rate(words.probs, scores, rho, tolerance) for rho in ratios}
    order = order_by_score(scores)
    if keep_ratio is not None:
        order = order[: len(order) - searches[str(keep_ratio)].n_kept]
    return one_shot_result(
        pruner, example, enc, "tokenskip", objective, order, scores, traces=traces, batch_tokens=batch_tokens,
        t0=t0, classifier=clf.name, keep_label=clf.keep_label, tolerance=tolerance,
        tokenskip_rates={k: s.to_dict() for k, s in searches.items()},
        words=words.words, word_probs=[float(p) for p in words.probs],
    )


__all__ = ["DEFAULT_CLASSIFIER", "TokenClassifier", "load_token_classifier", "as_classifier", "WordProbs",
           "word_keep_probs", "token_keep_scores", "threshold_for_rate", "RateSearch", "search_rate",
           "tokenskip_keep_mask", "tokenskip_prune"]
