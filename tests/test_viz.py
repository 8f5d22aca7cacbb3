"""The static HTML walkthrough and figure saving (no model: a hand-made PruneResult)."""

from __future__ import annotations

import html as _html
import json
import re
from html.parser import HTMLParser

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from pruneprobe import viz  # noqa: E402
from pruneprobe.result import PruneResult  # noqa: E402

TOKENS = [" Natalia", " sold", " 48", "/", "2", " =", " 24", " clips", " <b>&", ".\n", " So"]
CATS = ["EntName", "Grammar", "SymbMath", "SymbMath", "SymbMath", "SymbMath", "SymbMath", "EntName",
        "Grammar", "Grammar", "MetaDisc"]


def make_result() -> PruneResult:
    n = len(TOKENS)
    order = [8, 10, 1, 0, 9, 7, 5]
    traces = {k: list(np.linspace(-5, -9, len(order) + 1)) for k in
              ("joint_logprob", "joint_ppl", "answer_logprob", "answer_ppl", "reasoning_ppl")}
    traces["answer_logprob"][2] = float("nan")
    return PruneResult(example_id="ex</script>1", method="greedy", objective="joint", token_ids=list(range(n)),
                       tokens=TOKENS, deletion_order=order, traces=traces,
                       candidate_scores=np.zeros((len(order), n)), example={"question": "q", "answer": "24"})


class _Checker(HTMLParser):
    VOID = {"meta", "input", "br", "img", "link"}

    def __init__(self):
        super().__init__()
        self.stack, self.tags, self.spans, self.text = [], [], {}, {}
        self.cur = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "span" and a.get("id", "").startswith("t"):
            self.cur = a["id"]
            self.spans[self.cur] = a
            self.text[self.cur] = ""
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-3:])
        self.stack.pop()
        if tag == "span":
            self.cur = None

    def handle_data(self, data):
        if self.cur:
            self.text[self.cur] += data


def test_pruning_html_structure_tokens_and_slider():
    r = make_result()
    page = viz.pruning_html(r, CATS)
    assert page.startswith("<!DOCTYPE html>")
    p = _Checker()
    p.feed(page)
    p.close()
    assert p.stack == []  # every element closed, properly nested
    sliders = [a for t, a in p.tags if t == "input" and a.get("type") == "range"]
    assert len(sliders) == 1 and sliders[0]["min"] == "0" and sliders[0]["max"] == str(r.n_steps)
    assert len(p.spans) == len(TOKENS)
    for i, (tok, cat) in enumerate(zip(TOKENS, CATS)):
        assert p.text[f"t{i}"].replace("\u21b5", "") == tok  # every token, escaped and restored
        assert p.spans[f"t{i}"]["data-category"] == cat
    # the embedded state: JSON with the ranks and NaN-free traces; no premature </script>
    m = re.search(r'<script id="pruning-data" type="application/json">(.*?)</script>', page, re.S)
    data = json.loads(m.group(1))
    assert data["rank"] == [int(x) for x in r.pruning_rank] and data["n_steps"] == r.n_steps
    assert data["traces"]["answer_logprob"][2] is None
    assert "addEventListener" in page and "<script src" not in page and "http" not in page  # self-contained
    assert _html.escape(r.example_id) in page


def test_pruning_html_label_table_steps_and_mismatch(tmp_path):
    r = make_result()
    table = pd.DataFrame({"example_id": r.example_id, "index": range(len(CATS)), "category": CATS})
    page = viz.pruning_html(r, table.iloc[::-1], steps=(2, 5))
    assert 'min="2"' in page and 'max="5"' in page
    assert viz.pruning_html(r, None).count('data-category="Unlabeled"') == len(TOKENS)
    with pytest.raises(ValueError):
        viz.pruning_html(r, CATS[:-1])
    out = viz.write_html(page, tmp_path / "sub" / "w.html")
    assert out.read_text(encoding="utf-8") == page
    assert not list(out.parent.glob(".*.tmp"))


def test_save_figure_writes_png_and_pdf(tmp_path):
    fig = viz.plot_traces(make_result())
    paths = viz.save_figure(fig, "traces", tmp_path / "figs")
    assert [p.name for p in paths] == ["traces.png", "traces.pdf"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"


def test_plot_accuracy_lines_bands_and_panels():
    rows = [dict(method=m, keep_ratio=k, eval_set=s, accuracy=a, ci_low=a - 0.1, ci_high=a + 0.1)
            for s in ("a", "b") for m, k, a in [("full", 1.0, 0.7), ("none", 0.0, 0.1), ("greedy", 0.9, 0.6),
                                                ("greedy", 0.7, 0.5), ("uniform", 0.9, 0.4), ("uniform", 0.7, 0.2)]]
    fig = viz.plot_accuracy(pd.DataFrame(rows), panel="eval_set")
    axes = fig.axes
    assert len(axes) == 2 and [a.get_title() for a in axes] == ["a", "b"]
    labels = axes[-1].get_legend_handles_labels()[1]
    assert labels == ["full", "none", "greedy", "uniform"]
    ys = sorted(round(y, 2) for c in axes[0].containers if c.get_label() == "greedy" for y in c.lines[0].get_ydata())
    assert ys == [0.5, 0.6]
    assert axes[0].xaxis_inverted()
