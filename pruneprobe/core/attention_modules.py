"""Eager attention and the self-attention modules: shared by the H2O baseline and attention capture.

Canonical pattern::

    from pruneprobe.core.attention_modules import attention_module_paths, eager_attention
    with eager_attention(pruner.model, ensure_eager=True):     # switched for the block, restored after
        paths = attention_module_paths(pruner.model)          # [('model.layers.0.self_attn', 1), ...]

Attention probabilities exist only under ``attn_implementation="eager"`` (sdpa / flash never form
them). ``eager_attention`` switches with ``model.set_attn_implementation("eager")`` (transformers
>= 4.56 / 5.x); a model that cannot switch at run time must be loaded with
``load_pruner(..., attn_implementation="eager")``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pruneprobe.errors import PruneprobeError


def attention_module_paths(model, by_name: bool = True) -> list[tuple[str, int]]:
    """``(module path, index of the weights in its output)`` of each self-attention module, in order.

    The modules are the ones transformers records for ``output_attentions``
    (``_can_record_outputs["attentions"]``). A model without that record: with ``by_name``, the
    modules named ``*Attention`` with no such parent (an error when there are none); without it,
    ``[]`` (the caller falls back to ``output_attentions=True``).

    >>> attention_module_paths(pruner.model)[:1]   # doctest: +SKIP
    [('model.layers.0.self_attn', 1)]
    """
    spec = (getattr(model, "_can_record_outputs", None) or {}).get("attentions")
    specs = spec if isinstance(spec, list) else [spec] if spec is not None else []
    found: list[tuple[str, int]] = []
    for s in specs:
        target = getattr(s, "target_class", None) if not isinstance(s, (type, str)) else s
        class_name = getattr(s, "class_name", None) or (s if isinstance(s, str) else None)
        layer_name = getattr(s, "layer_name", None)
        index = getattr(s, "index", 1) if not isinstance(s, (type, str)) else 1
        for name, module in model.named_modules():
            ok = isinstance(module, target) if isinstance(target, type) else (
                class_name is not None and type(module).__name__.endswith(class_name))
            if ok and (layer_name is None or name.endswith(layer_name.lstrip("."))):
                found.append((name, index))
    if found or not by_name:
        return found
    names = [n for n, m in model.named_modules() if type(m).__name__.endswith("Attention")]
    found = [(n, 1) for n in names if not any(n.startswith(o + ".") for o in names)]
    if not found:
        raise PruneprobeError(f"{type(model).__name__}: no self-attention modules found")
    return found


@contextlib.contextmanager
def eager_attention(model, ensure_eager: bool = False, purpose: str = "attention capture") -> Iterator:
    """Run ``model`` with eager attention inside the block.

    Already eager: nothing changes. Otherwise ``ensure_eager=True`` switches it and restores the
    implementation after (an error naming ``load_pruner(..., attn_implementation='eager')`` when
    it cannot switch at run time); ``ensure_eager=False`` raises. ``purpose`` ends that error.
    """
    before = getattr(model.config, "_attn_implementation", None)
    if before == "eager":
        yield model
        return
    if not ensure_eager:
        raise PruneprobeError(
            f"attention probabilities need eager attention, but {type(model).__name__} runs "
            f"attn_implementation={before!r}: load the pruner with load_pruner(..., "
            "attn_implementation='eager') (or from_pretrained(..., attn_implementation='eager')), "
            "call model.set_attn_implementation('eager'), or pass ensure_eager=True"
        )
    model.set_attn_implementation("eager")
    try:
        if model.config._attn_implementation != "eager":
            raise PruneprobeError(
                f"{type(model).__name__} cannot switch to eager attention at run time; load the pruner with "
                f"load_pruner(..., attn_implementation='eager') for {purpose}"
            )
        yield model
    finally:
        if before is not None and model.config._attn_implementation != before:
            model.set_attn_implementation(before)
