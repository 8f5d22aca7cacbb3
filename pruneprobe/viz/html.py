"""A static HTML walkthrough of greedy pruning: question and answer, the reasoning tokens coloured
by category (with a legend), a slider over the steps, the joint and answer log-likelihood in nats,
and a picker over a few embedded examples; plain JavaScript, no kernel.

Canonical pattern::

    from pruneprobe.viz.html import pruning_html, write_html
    write_html(pruning_html([result_a, result_b], labels), "figures/01_walkthrough.html")
    step_html(result, categories, step=5)      # one step as an HTML fragment (the notebook widget)

Gotchas:
- Every example's tokens are in the page (ids ``x<example>t<token>``); its ranks and traces are
  embedded as JSON and a few lines of JavaScript restyle the tokens when the slider or the picker
  moves; ``</`` is escaped so a token cannot close the script early.
"""

from __future__ import annotations

import html as _html
import json
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from pruneprobe.core.io import atomic_write_text
from pruneprobe.core.result import PruneResult
from pruneprobe.viz.style import category_color, ordered_categories


def category_list(result, labels) -> list[str]:
    """Categories of ``result``'s tokens from ``labels`` (a label table, a dict or a list)."""
    if labels is None:
        return ["Unlabeled"] * result.n_tokens
    if isinstance(labels, pd.DataFrame):
        g = labels[labels["example_id"] == result.example_id].sort_values("index")
        cats = list(g["category"])
    elif isinstance(labels, dict):
        cats = list(labels[result.example_id])
    else:
        cats = list(labels)
    if len(cats) != result.n_tokens:
        raise ValueError(f"{len(cats)} labels for {result.n_tokens} tokens of {result.example_id!r}")
    return cats


TRACE_NAMES = {"joint_logprob": "joint log-likelihood (question + reasoning + answer)",
               "answer_logprob": "answer log-likelihood (answer given question + kept reasoning)"}
OUTLINE_NOTE = "red outline: the token the next greedy step deletes"
DELETED_NOTE = "struck through and grey: already deleted"
CATEGORY_HELP = {
    "SymbMath": "numbers, operators, equations", "VerbalMath": "quantities and operations in words",
    "EntName": "entities and their names", "CoRef": "words pointing back (it, they, that)",
    "MetaDisc": "discourse about the reasoning (so, first, therefore)", "Grammar": "function words and punctuation",
    "Unlabeled": "no rule matched",
}

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; max-width: 60em; }}
.text {{ font-family: ui-monospace, monospace; white-space: pre-wrap; line-height: 1.9;
        border: 1px solid #ddd; padding: .8em; }}
.tok {{ border-radius: 3px; padding: 0 1px; }}
.tok.deleted {{ color: #bbb; background: #f3f3f3 !important; text-decoration: line-through; }}
.tok.next {{ outline: 2px solid #d62728; }}
.legend span {{ display: inline-block; padding: 0 .4em; margin: 0 .4em .2em 0; border-radius: 3px; }}
.qa {{ margin: .3em 0; }}
#info {{ margin: .6em 0; }}
</style>
</head>
<body>
<h2>{title}</h2>
<p>{intro}</p>
<p class="legend">{legend}</p>
<p class="legend"><span class="tok deleted">deleted</span> {deleted_note};
<span class="tok next">next</span> {outline_note}.</p>
<div id="controls">
<span{picker_hidden}><label for="example">example</label> <select id="example">{options}</select></span>
<label for="step">step</label>
<input type="range" id="step" min="{smin}" max="{smax}" value="{smin}" step="1" style="width: 24em">
<span id="stepnum"></span>
</div>
<div id="info"></div>
{examples}
<script id="pruning-data" type="application/json">{data}</script>
<script>
(function () {{
  var all = JSON.parse(document.getElementById("pruning-data").textContent);
  var slider = document.getElementById("step"), picker = document.getElementById("example");
  function draw() {{
    var j = parseInt(picker.value, 10), d = all.examples[j], s = parseInt(slider.value, 10);
    for (var e = 0; e < all.examples.length; e++) {{
      document.getElementById("ex" + e).hidden = e !== j;
    }}
    for (var i = 0; i < d.rank.length; i++) {{
      var el = document.getElementById("x" + j + "t" + i);
      var r = d.rank[i];
      el.className = "tok" + (r > 0 && r <= s ? " deleted" : "") + (r === s + 1 ? " next" : "");
    }}
    document.getElementById("stepnum").textContent = s + " / " + d.n_steps + " deleted";
    var parts = [];
    for (var k in d.traces) {{
      var v = d.traces[k][s];
      parts.push(all.trace_names[k] + " = " + (v === null || v === undefined ? "n/a" : v.toFixed(3)) + " nats");
    }}
    document.getElementById("info").textContent =
      "kept " + (d.n_tokens - s) + " of " + d.n_tokens + " reasoning tokens; " + parts.join("; ");
  }}
  picker.addEventListener("change", function () {{
    var d = all.examples[parseInt(picker.value, 10)];
    slider.max = Math.min(d.n_steps, all.smax);
    slider.value = Math.min(parseInt(slider.value, 10), slider.max);
    draw();
  }});
  slider.addEventListener("input", draw);
  draw();
}})();
</script>
</body>
</html>
"""


def _visible(token: str) -> str:
    return token.replace("\n", "\u21b5\n")


def legend_html(categories) -> str:
    """Category colour swatches with what each category means."""
    return "".join(f'<span style="background: {category_color(c)}33" title="{_html.escape(CATEGORY_HELP.get(c, c))}">'
                   f"{_html.escape(c)}: {_html.escape(CATEGORY_HELP.get(c, ''))}</span>"
                   for c in ordered_categories(categories))


def tokens_html(result, cats: Sequence[str], prefix: str = "t", step: int | None = None) -> str:
    """The reasoning as one ``<span>`` per token (id ``<prefix><index>``), background by category; with
    ``step``, tokens deleted by then are struck through and the next one outlined (inline styles)."""
    out = []
    for i, (t, c) in enumerate(zip(result.tokens, cats)):
        style, cls = f"background: {category_color(c)}33", "tok"
        if step is not None:
            r = int(result.pruning_rank[i])
            if 0 < r <= step:
                cls, style = "tok deleted", "color: #bbb; background: #f3f3f3; text-decoration: line-through"
            if r == step + 1:
                cls, style = cls + " next", style + "; outline: 2px solid #d62728"
        out.append(f'<span id="{prefix}{i}" class="{cls}" data-category="{_html.escape(c)}" style="{style}" '
                   f'title="{_html.escape(c)}">{_html.escape(_visible(t))}</span>')
    return "".join(out)


def question_answer_html(result) -> str:
    """The example's question and gold answer as two paragraphs (empty when the result has neither)."""
    ex = result.example or {}
    parts = [f'<p class="qa"><b>{k}:</b> {_html.escape(str(ex[key]))}</p>'
             for k, key in (("Question", "question"), ("Answer", "answer")) if ex.get(key) not in (None, "")]
    return "".join(parts)


def step_html(result, cats: Sequence[str], step: int,
              traces: Sequence[str] = ("joint_logprob", "answer_logprob")) -> str:
    """One step of one pruning as an HTML fragment: kept count, log-likelihoods in nats, the tokens."""
    vals = []
    for k in traces:
        v = result.traces.get(k, [None] * (step + 1))[step]
        vals.append(f"{TRACE_NAMES.get(k, k)} = " + ("n/a" if _clean(v) is None else f"{v:.3f} nats"))
    info = (f"<p>step {step}/{result.n_steps}: kept {result.n_tokens - step} of {result.n_tokens} reasoning tokens; "
            + "; ".join(vals) + "</p>")
    return info + f'<div class="text" style="font-family: monospace; white-space: pre-wrap; line-height: 1.9">' \
        f"{tokens_html(result, cats, step=step)}</div>"


def _clean(v):
    return None if v is None or not np.isfinite(v) else float(v)


def pruning_html(results, labels=None, steps: Sequence[int] | None = None, title: str | None = None,
                 traces: Sequence[str] = ("joint_logprob", "answer_logprob")) -> str:
    """A self-contained HTML page for one result or a few (a picker chooses among them): question and
    answer, the reasoning tokens coloured by category with a legend, a slider over pruning steps
    (deleted tokens greyed and struck through, the next one outlined) and the log-likelihoods in nats.

    ``labels``: a label table (``example_id, index, category``), a dict, or (one result only) a
    list of categories, or None. ``steps``: the slider's range as (first, last) or any sequence
    whose min/max are used (default: 0 .. n_steps).
    """
    results = [results] if isinstance(results, PruneResult) else list(results)
    cats = [category_list(r, labels) for r in results]
    n_max = max(r.n_steps for r in results)
    smin, smax = (0, n_max) if steps is None or len(steps) == 0 else (max(0, int(min(steps))), int(max(steps)))
    smax = min(smax, results[0].n_steps)
    blocks = "\n".join(f'<div class="example" id="ex{j}"{" hidden" if j else ""}>{question_answer_html(r)}'
                       f'<div class="text">{tokens_html(r, c, prefix=f"x{j}t")}</div></div>'
                       for j, (r, c) in enumerate(zip(results, cats)))
    options = "".join(f'<option value="{j}">{_html.escape(str(r.example_id))} ({r.n_tokens} tokens)</option>'
                      for j, r in enumerate(results))
    data = {"smax": smax if steps else n_max, "trace_names": {k: TRACE_NAMES.get(k, k) for k in traces},
            "examples": [{"rank": [int(x) for x in r.pruning_rank], "n_steps": r.n_steps, "n_tokens": r.n_tokens,
                          "traces": {k: [_clean(v) for v in r.traces[k]] for k in traces if k in r.traces}}
                         for r in results]}
    payload = json.dumps(data).replace("</", "<\\/")
    first = results[0]
    title = title or f"{first.method}/{first.objective} pruning of " + (
        str(first.example_id) if len(results) == 1 else f"{len(results)} examples")
    intro = ("Greedy pruning deletes one reasoning token per step, each time the one whose deletion keeps the "
             "objective highest. Move the slider to delete tokens in that order"
             + ("; pick another example above the slider." if len(results) > 1 else "."))
    return _PAGE.format(title=_html.escape(title), intro=intro, legend=legend_html([c for cs in cats for c in cs]),
                        deleted_note=DELETED_NOTE, outline_note=OUTLINE_NOTE, options=options,
                        picker_hidden="" if len(results) > 1 else ' hidden', smin=smin, smax=smax, examples=blocks,
                        data=payload)


def write_html(html: str, path) -> Path:
    """Write ``html`` atomically (``core.io``)."""
    return atomic_write_text(path, html)


__all__ = ["pruning_html", "write_html", "category_list", "step_html", "tokens_html", "legend_html",
           "question_answer_html", "TRACE_NAMES", "OUTLINE_NOTE", "DELETED_NOTE", "CATEGORY_HELP"]
