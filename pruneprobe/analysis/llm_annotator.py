"""The LLM annotator: one prompt per chain, a JSON reply of word categories, validated and cached.

A client is any callable ``prompt -> str``, an OpenAI-style client object, or one of the two backends
here: :func:`openai_endpoint` (any OpenAI-compatible ``/chat/completions`` server, standard library
only) and :func:`hf_generator` (a local Hugging Face causal LM, e.g. an embedded pruner).

>>> fake = lambda prompt: '{"words": [{"word": "So", "category": "MetaDisc", "justification": "connective"}]}'
>>> [(w.word, w.category) for w in LLMAnnotator(fake).annotate("So")]
[('So', 'MetaDisc')]
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import urllib.request
import warnings
from pathlib import Path

from pruneprobe.analysis.category_rules import (
    CATEGORIES,
    CATEGORY_DESCRIPTIONS,
    AnnotationError,
    WordLabel,
    normalize_category,
)
from pruneprobe.analysis.rule_annotator import annotate_words
from pruneprobe.core.io import atomic_write_text
from pruneprobe.errors import PruneprobeError


def _extract_json(reply: str):
    """The first JSON object/list in ``reply``: whole text, a code fence, or embedded in prose."""
    def load(text, parse):
        try:
            obj = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
        return obj if isinstance(obj, (dict, list)) else None

    i, j = reply.find("{"), reply.rfind("}")
    cands = [reply.strip(), *re.findall(r"```(?:json|JSON)?\s*(.*?)```", reply, re.S)]
    for c in cands + ([reply[i:j + 1]] if 0 <= i < j else []):
        for parse in (json.loads, ast.literal_eval):  # literal_eval accepts single-quoted dicts
            if (obj := load(c, parse)) is not None:
                return obj
    for m in list(re.finditer(r"[{\[]", reply))[:50]:  # a JSON value followed by more prose
        if (obj := load(reply, lambda t: json.JSONDecoder().raw_decode(t, m.start())[0])) is not None:
            return obj
    raise AnnotationError("no JSON object found in the reply")


def parse_reply(reply: str, words: list[str]) -> list[tuple[str, str]]:
    """Validate an LLM reply against the expected ``words``; return (category, justification) pairs.

    >>> parse_reply('Sure!\\n```json\\n{"words": [{"word": "She", "category": "coref"}]}\\n```', ["She"])
    [('CoRef', '')]
    """
    obj = _extract_json(reply)
    items = obj.get("words") if isinstance(obj, dict) else obj
    if not isinstance(items, list):
        raise AnnotationError('the JSON must be {"words": [...]}')
    if len(items) != len(words):
        raise AnnotationError(f"expected {len(words)} words, got {len(items)}")
    out = []
    for k, (item, want) in enumerate(zip(items, words)):
        if not isinstance(item, dict) or "category" not in item:
            raise AnnotationError(f"entry {k} must be an object with word, category, justification")
        got = str(item.get("word", want))
        if re.sub(r"\W", "", got.lower()) != re.sub(r"\W", "", want.lower()):
            raise AnnotationError(f"entry {k} is the word {got!r}, expected {want!r} (words must follow "
                                  f"the list in order, none missing)")
        try:
            cat = normalize_category(item["category"])
        except AnnotationError as e:
            raise AnnotationError(f"entry {k} ({want!r}): {e}") from None
        out.append((cat, str(item.get("justification", ""))))
    return out


def build_prompt(reasoning: str, question: str = "", words: list[str] | None = None) -> str:
    """The one prompt per chain: category definitions, the question, the chain and its word list."""
    words = reasoning.split() if words is None else words
    cats = "\n".join(f"- {c}: {d}" for c, d in CATEGORY_DESCRIPTIONS.items())
    return (f"Label each word of a chain of thought with its functional category.\nCategories:\n{cats}\n\n"
            f"Question (context only, do not label it):\n{question}\n\nChain of thought:\n{reasoning}\n\n"
            f"Its {len(words)} words, in order:\n{json.dumps(words, ensure_ascii=False)}\n\n"
            'Reply with only a JSON object {"words": [{"word": ..., "category": ..., "justification": ...}, '
            f"...]}} with exactly {len(words)} entries, one per listed word in the same order, the word copied "
            f"exactly, the category one of {', '.join(CATEGORIES)}, and a short justification.")


class LLMAnnotator:
    """Label words with an LLM: one prompt per chain (:func:`build_prompt`), JSON reply, cached.

    ``client_or_callable`` is a callable ``prompt -> str`` or an OpenAI-compatible client
    (``client.chat.completions.create(model=..., messages=[...]).choices[0].message.content``).
    Words are the whitespace-separated words of the chain. A reply that is not valid JSON, misses or
    reorders words, or uses an unknown category is retried with the error appended to the prompt, up
    to ``max_retries`` times after the first try. Then ``on_failure="raise"`` (default) raises
    :class:`AnnotationError`, so one analysis never silently mixes annotators; ``"rules"`` warns and
    labels the chain with :func:`annotate_words`. With ``cache_dir``, a valid reply is stored as JSON
    (written atomically) under a hash of (model, prompt); a cache hit makes no call.

    Words default to the whitespace-separated words of the chain; ``splitter`` (text -> list of
    ``(word, start, end)``, e.g. :func:`pruneprobe.analysis.gold.split_units`) sets other units.
    """

    def __init__(self, client_or_callable, model: str = "gpt-5-mini", cache_dir=None, max_retries: int = 3,
                 on_failure: str = "raise", splitter=None):
        if on_failure not in ("raise", "rules"):
            raise PruneprobeError(f"on_failure must be 'raise' or 'rules', got {on_failure!r}")
        self.client, self.model, self.max_retries = client_or_callable, model, max_retries
        self.on_failure = on_failure
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.name, self.splitter = f"llm:{model}", splitter

    def _call(self, prompt: str) -> str:
        if hasattr(self.client, "chat"):
            resp = self.client.chat.completions.create(model=self.model,
                                                       messages=[{"role": "user", "content": prompt}])
            return resp.choices[0].message.content or ""
        if callable(self.client):
            return str(self.client(prompt))
        raise PruneprobeError("client_or_callable must be callable or an OpenAI-compatible client")

    def cache_path(self, prompt: str) -> Path | None:
        """The cache file of (model, prompt); None without a cache_dir."""
        key = hashlib.sha256(json.dumps([self.model, prompt]).encode()).hexdigest()
        return None if self.cache_dir is None else self.cache_dir / f"{key}.json"

    def annotate(self, reasoning: str, question: str = "") -> list[WordLabel]:
        spans = (self.splitter(reasoning) if self.splitter is not None
                 else [(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", reasoning)])
        if not spans:
            return []
        words = [w for w, _, _ in spans]
        prompt = build_prompt(reasoning, question, words)
        path, pairs = self.cache_path(prompt), None
        if path is not None and path.exists():
            try:
                pairs = parse_reply(json.loads(path.read_text())["reply"], words)
            except (ValueError, KeyError, TypeError):
                pass  # unreadable or stale entry: ask again
        attempt_prompt, errors = prompt, []
        for attempt in range(0 if pairs is not None else self.max_retries + 1):
            reply = self._call(attempt_prompt)
            try:
                pairs = parse_reply(reply, words)
            except AnnotationError as e:
                errors.append(str(e))
                attempt_prompt = (f"{prompt}\n\nYour previous reply was rejected: {e}. Reply again with only "
                                  f"the JSON object, exactly {len(words)} entries.")
                continue
            if path is not None:
                atomic_write_text(path, json.dumps({"model": self.model, "attempt": attempt + 1,
                                                    "reply": reply}, ensure_ascii=False))
            break
        if pairs is None:
            msg = f"LLM annotator ({self.model}) gave no valid reply in {len(errors)} tries: {'; '.join(errors)}"
            if self.on_failure == "raise":
                raise AnnotationError(msg)
            warnings.warn(msg + "; falling back to the rule annotator", stacklevel=2)
            return annotate_words(reasoning, question)
        return [WordLabel(w, s, e, c, j) for (w, s, e), (c, j) in zip(spans, pairs)]


def openai_endpoint(base_url: str, model: str, api_key: str | None = None, timeout: float = 120.0,
                    temperature: float = 0.0, opener=None):
    """A ``prompt -> str`` client for an OpenAI-compatible server (``{base_url}/chat/completions``).

    Works with OpenAI, vLLM, llama.cpp's server, Ollama (``http://localhost:11434/v1``), LM Studio...
    ``api_key`` defaults to ``$OPENAI_API_KEY`` (omitted when unset); ``opener`` replaces
    ``urllib.request.urlopen`` (tests).
    """
    url = base_url.rstrip("/") + "/chat/completions"
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
    opener = opener or urllib.request.urlopen

    def call(prompt: str) -> str:
        body = json.dumps({"model": model, "temperature": temperature,
                           "messages": [{"role": "user", "content": prompt}]}).encode()
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
        with opener(urllib.request.Request(url, data=body, headers=headers, method="POST"), timeout=timeout) as r:
            reply = json.loads(r.read().decode())
        try:
            return reply["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise AnnotationError(f"unexpected reply from {url}: {str(reply)[:200]}") from None

    return call


def hf_generator(model, tokenizer=None, max_new_tokens: int = 2048):
    """A ``prompt -> str`` client from a local Hugging Face causal LM (greedy decoding, chat template).

    ``model``: a hub id or local directory, a loaded model (with ``tokenizer``), or a
    :class:`pruneprobe.data.models.Pruner` (e.g. ``load_pruner("gemma3-270m")``).
    """
    import torch

    if hasattr(model, "model") and hasattr(model, "tokenizer"):  # a Pruner
        model, tokenizer = model.model, model.tokenizer
    elif isinstance(model, (str, Path)):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer, model = AutoTokenizer.from_pretrained(model), AutoModelForCausalLM.from_pretrained(model)

    def call(prompt: str) -> str:
        msgs = [{"role": "user", "content": prompt}]
        if getattr(tokenizer, "chat_template", None):
            ids = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)["input_ids"]
        else:
            ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
        ids = ids.to(model.device)
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)

    return call


__all__ = ["parse_reply", "build_prompt", "LLMAnnotator", "openai_endpoint", "hf_generator"]
