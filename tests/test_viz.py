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
from pruneprobe.core.result import PruneResult  # noqa: E402

@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


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
        if tag == "span" and re.fullmatch(r"x\d+t\d+", a.get("id", "")):
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
        assert p.text[f"x0t{i}"].replace("\u21b5", "") == tok  # every token, escaped and restored
        assert p.spans[f"x0t{i}"]["data-category"] == cat
    # the embedded state: JSON with the ranks and NaN-free traces; no premature </script>
    m = re.search(r'<script id="pruning-data" type="application/json">(.*?)</script>', page, re.S)
    data = json.loads(m.group(1))["examples"][0]
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


def _lab(hex_color: str) -> np.ndarray:
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    rgb = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ rgb
    f = np.cbrt(np.maximum(xyz / np.array([0.95047, 1, 1.08883]), 0.008856 ** 1))
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _compare_table(runs):
    rows = [dict(metric="kept_iou", run=r, reference="Greedy, joint objective", keep_ratio=rho, mean=0.5 + 0.1 * i,
                 ci_lo=0.4, ci_hi=0.8, n_examples=12) for i, r in enumerate(runs) for rho in (0.9, 0.7)]
    return pd.DataFrame(rows)


def _bar_colors(fig, label):
    from matplotlib.colors import to_hex

    return {to_hex(c.patches[0].get_facecolor()) for c in fig.axes[0].containers if c.get_label() == label}


def test_method_colours_follow_the_name_not_the_palette_position():
    from matplotlib.colors import to_hex

    a = viz.plot_compare(_compare_table(["Uniform", "H2O", "Random"]), "kept_iou")
    b = viz.plot_compare(_compare_table(["Random", "Surprisal"]), "kept_iou")
    assert _bar_colors(a, "Random") == _bar_colors(b, "Random") == {viz.METHOD_COLORS["random"]}
    assert viz.method_color("greedy/joint") == viz.method_color("greedy-joint") == viz.method_color(
        "Greedy, joint objective") == viz.METHOD_COLORS["greedy joint"]
    assert viz.method_color(viz.display_name("gemma3 greedy joint")) == viz.style.PRUNER_COLORS["gemma3"]
    summary = pd.DataFrame([dict(method=m, keep_ratio=k, accuracy=0.5, ci_low=0.4, ci_high=0.6)
                            for m in ("greedy-joint", "uniform") for k in (0.9, 0.7)])
    fig = viz.plot_accuracy(summary)
    lines = {c.get_label(): to_hex(c.lines[0].get_color()) for c in fig.axes[0].containers}
    assert lines == {"greedy-joint": viz.METHOD_COLORS["greedy joint"], "uniform": viz.METHOD_COLORS["uniform"]}


def test_method_and_category_hues_do_not_collide():
    methods, cats = viz.METHOD_COLORS.values(), viz.CATEGORY_COLORS.values()
    assert len(set(methods)) == len(viz.METHOD_COLORS) and len(set(cats)) == len(viz.CATEGORY_COLORS)
    closest = min(np.linalg.norm(_lab(m) - _lab(c)) for m in methods for c in cats)
    assert closest >= 20  # CIE76 distance: no method looks like a category


def test_figure_code_never_colours_by_palette_position():
    from pathlib import Path

    src = "".join(p.read_text() for p in Path(viz.__file__).parent.glob("*.py"))
    for pattern in ("prop_cycle", "palette[", 'color="C', "color=f\"C", "tab10", "color_palette("):
        assert pattern not in src, pattern


def _composition_table(runs):
    cats = ["SymbMath", "Grammar", "CoRef"]
    rows = [dict(run=r, keep_ratio=rho, category=c, share=1 / 3, share_lo=0.2, share_hi=0.5, retention=1.0 + 0.1 * i,
                 retention_lo=0.9, retention_hi=1.3, n_examples=7) for r in runs for rho in (0.9, 0.5)
            for i, c in enumerate(cats)]
    return pd.DataFrame(rows)


def test_category_figures_are_grids_with_readable_text_and_captions():
    viz.set_style()
    runs = ["Greedy, joint objective", "Greedy, answer objective", "Surprisal", "H2O", "Uniform", "Random"]
    fig = viz.plot_composition(_composition_table(runs), "retention", setting="toy setting")
    visible = [a for a in fig.axes if a.get_visible()]
    assert len(visible) == 6 and visible[3].get_subplotspec().rowspan.start == 1  # 2 x 3
    assert fig.get_size_inches()[0] <= 7.0 + 1e-9
    assert visible[0].get_title() == "Greedy, joint objective"
    assert any("n = 7 examples per run" in t.get_text() for t in fig.texts)
    texts = [t for t in fig.findobj(lambda o: hasattr(o, "get_fontsize") and hasattr(o, "get_text"))
             if t.get_text().strip()]
    assert min(t.get_fontsize() for t in texts) >= 8.5
    assert any("toy setting" in t.get_text() for t in fig.texts)
    colors = {line.get_label(): line.get_color() for line in visible[0].get_lines()
              if not line.get_label().startswith("_")}
    assert colors["SymbMath"] == viz.CATEGORY_COLORS["SymbMath"]


def test_axes_say_what_unit_and_direction():
    dyn = pd.DataFrame([dict(run="Greedy, joint objective", lag=lag, kind=k, top=1, hit_rate=0.5, ci_lo=0.4, ci_hi=0.6,
                             chance=0.1, n_steps=30, n_examples=3) for lag in (1, 2, 4, 8, 16)
                        for k in ("dynamic", "frozen", "random")])
    fig = viz.plot_hit_rates(dyn)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4", "8", "16"]
    assert "n = 3 examples" in ax.get_title()
    fig = viz.plot_traces(make_result())
    assert fig.axes[0].get_ylabel() == "joint log-likelihood\n(nats, higher is better)"
    layers = pd.DataFrame(dict(layer=[0, 1, 2], pearson=[0.2, 0.3, 0.25], pearson_pooled=[0.21, 0.31, 0.2]))
    assert viz.plot_layer_contribution(layers).axes[0].get_ylim()[0] == 0
    tau = pd.DataFrame([dict(metric="kendall_tau", run=r, reference="g", keep_ratio=np.nan, mean=0.3, ci_lo=0.2,
                             ci_hi=0.4, n_examples=5) for r in ("Uniform", "H2O")])
    ax = viz.plot_compare(tau, "kendall_tau", reference="g").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Uniform", "H2O"]  # bar charts have tick labels
    assert viz.display_name("greedy/answer") == "Greedy, answer objective" and viz.display_name("xyz") == "xyz"


# -- section-2 figures and the walkthrough ------------------------------------------------------
def _result(example_id="e1", n_steps=7, slope=-0.5, seed=0):
    r = make_result()
    rng = np.random.default_rng(seed)
    order = [int(i) for i in rng.permutation(len(TOKENS))[:n_steps]]
    traces = {k: [float(slope * i + 0.1 * rng.standard_normal()) for i in range(n_steps + 1)]
              for k in ("joint_logprob", "answer_logprob")}
    return PruneResult(example_id=example_id, method=r.method, objective=r.objective, token_ids=r.token_ids,
                       tokens=r.tokens, deletion_order=order, traces=traces,
                       candidate_scores=np.zeros((n_steps, len(TOKENS))),
                       example={"question": f"How many clips for {example_id}?", "answer": "72"})


def test_retention_panels_get_their_own_scale_share_panels_share_one():
    comp = _composition_table(["Greedy, joint objective", "Surprisal"])
    comp.loc[comp["run"] == "Surprisal", ["retention", "retention_hi"]] = [5.0, 5.5]
    fig = viz.plot_composition(comp, "retention")
    greedy, surprisal = (a for a in fig.axes if a.get_visible())
    assert greedy.get_ylim()[1] < 2 < 5 < surprisal.get_ylim()[1]
    assert greedy.get_ylim()[0] < 1 < greedy.get_ylim()[1]  # the uniform-deletion line stays in view
    assert any("own y scale" in t.get_text() for t in fig.texts)
    share = [a for a in viz.plot_composition(comp, "share").axes if a.get_visible()]
    assert share[0].get_ylim() == share[1].get_ylim()


def test_trace_quantiles_median_and_quartiles_on_a_grid():
    from pruneprobe.analysis.traces import trace_quantiles

    results = [_result(f"e{i}", slope=s, seed=i) for i, s in enumerate([-1.0, -0.5, 0.0, -0.25])]
    for r in results:  # exact lines, so the quantiles are known
        r.traces["joint_logprob"] = [float(i * s) for i, s in zip(range(8), [r.traces["joint_logprob"][1]] * 8)]
    q = trace_quantiles({"g": results}, "joint_logprob", grid=[0.0, 7 / 11, 0.9])
    assert list(q["n_examples"]) == [4, 4, 0]  # nobody reaches 0.9 deleted (7 of 11 steps)
    slopes = sorted(r.traces["joint_logprob"][1] for r in results)
    row = q.iloc[1]
    assert row["median"] == pytest.approx(7 * np.median(slopes))
    assert row["q25"] == pytest.approx(7 * np.percentile(slopes, 25))
    assert q.iloc[0][["median", "q25", "q75"]].tolist() == [0, 0, 0]


def test_traces_all_draws_a_median_and_a_band_per_objective():
    from matplotlib.collections import PolyCollection
    from matplotlib.colors import to_hex

    runs = {"Greedy, joint objective": [_result(f"j{i}", seed=i) for i in range(5)],
            "Greedy, answer objective": [_result(f"a{i}", slope=-1, seed=i) for i in range(3)]}
    fig = viz.plot_traces_all(runs)
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2]
    assert sorted(to_hex(ln.get_color()) for ln in lines) == sorted(viz.method_color(r) for r in runs)
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2 and len(lines) == 2  # one median and one band per objective, not one line per example
    assert {to_hex(b.get_facecolor()[0][:3]) for b in bands} == {viz.method_color(r) for r in runs}
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "median" in legend and "interquartile" in legend
    assert any("n = 3–5 examples per run" in t.get_text() for t in fig.texts)


def test_sufficiency_marks_the_in_sample_run_and_keeps_the_legend_off_the_data():
    rows = [dict(method=m, keep_ratio=k, accuracy=a, ci_low=a - 0.1, ci_high=a + 0.1, n=120)
            for m, k, a in [("Full chain", 1.0, 0.7), ("No chain", 0.0, 0.02), ("Greedy, joint objective", 0.9, 0.66),
                            ("Greedy, joint objective", 0.7, 0.46), ("Greedy, answer objective", 0.9, 0.8),
                            ("Greedy, answer objective", 0.7, 0.9), ("Uniform", 0.9, 0.5), ("Uniform", 0.7, 0.1)]]
    fig = viz.plot_accuracy(pd.DataFrame(rows), refs=("Full chain", "No chain"),
                            in_sample=("Greedy, answer objective",))
    ax = fig.axes[0]
    marked = [c for c in ax.containers if "in-sample" in c.get_label()]
    assert len(marked) == 1 and marked[0].get_label() == "Greedy, answer objective (in-sample)"
    assert marked[0].lines[0].get_linestyle() == "--"
    assert any("in-sample" in t.get_text() for t in fig.texts)  # the caption says why
    xs = sorted(c.lines[0].get_xdata()[-1] for c in ax.containers)  # dodged: no two error bars on one x
    assert len(set(np.round(xs, 6))) == len(xs)
    fig.canvas.draw()
    legend_box, axes_box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend_box.x0 >= axes_box.x1  # beside the axes, not over the rho = 0.9 bars


def test_accuracy_dots_rows_intervals_and_counts():
    from matplotlib.colors import to_hex

    rows = [dict(method=m, keep_ratio=k, eval_set=s, accuracy=a, ci_low=max(0, a - 0.02), ci_high=a + 0.03, n=100)
            for s in ("gsm_symbolic", "GSM8K") for m, k, a in
            [("Full-chain student", 1.0, 0.01), ("Zero-shot student", 0.0, 0.02),
             ("Greedy, joint objective", 0.9, 0.02), ("Greedy, joint objective", 0.7, 0.01), ("Uniform", 0.9, 0.0)]]
    fig = viz.plot_accuracy_dots(pd.DataFrame(rows), refs=("Full-chain student", "Zero-shot student"),
                                 panel="eval_set")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["Full-chain student", "Zero-shot student", "Greedy, joint objective, ρ = 0.9",
                      "Greedy, joint objective, ρ = 0.7", "Uniform, ρ = 0.9"]
    assert [t.get_text() for t in ax.texts] == ["1/100", "2/100", "2/100", "1/100", "0/100"]
    colors = [to_hex(c.lines[0].get_color()) for c in ax.containers]
    assert colors[2] == colors[3] == viz.METHOD_COLORS["greedy joint"] and colors[4] == viz.METHOD_COLORS["uniform"]
    assert [a.get_title() for a in fig.axes] == ["gsm_symbolic", "GSM8K"]
    assert ax.get_xlim()[0] <= 0 and not ax.get_lines()[0].get_linestyle() == "-"  # dots, no connecting lines


def test_pruned_chain_strikes_through_deleted_tokens_in_their_category_colour():
    from matplotlib.colors import to_hex
    from matplotlib.lines import Line2D
    from matplotlib.patches import Rectangle

    r = make_result()
    fig = viz.plot_pruned_chain(r, CATS, keep_ratios=(0.9, 0.5))
    heads = [t.get_text() for t in fig.texts if t.get_text().startswith("ρ =")]
    kept = {rho: int(r.kept_mask(rho).sum()) for rho in (0.9, 0.5)}
    assert heads == [f"ρ = 0.9: {kept[0.9]} of 11 tokens kept", f"ρ = 0.5: {kept[0.5]} of 11 tokens kept"]
    strikes = [a for a in fig.artists if isinstance(a, Line2D)]
    shaded = [a for a in fig.artists if isinstance(a, Rectangle)]
    deleted = [c for rho in (0.9, 0.5) for c, k in zip(CATS, r.kept_mask(rho)) if not k]
    assert {to_hex(a.get_color()) for a in strikes} == {viz.category_color(c) for c in deleted}
    assert len(strikes) >= len(deleted) and len(shaded) >= sum(kept.values())  # "\n" tokens: text and "↵"
    assert {to_hex(a.get_facecolor()[:3]) for a in shaded} <= set(viz.CATEGORY_COLORS.values())
    texts = [t.get_text() for t in fig.texts]
    assert "<b>&" in texts and " <b>&" not in texts  # tokens as text, leading space as layout
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == viz.ordered_categories(CATS)
    assert fig.get_size_inches()[0] == pytest.approx(7.0)


def test_layout_tokens_wraps_and_breaks_lines():
    from pruneprobe.viz.chain import layout_tokens

    placed = layout_tokens(["aa", " bb", " cc\n", "dd"], ["x"] * 4, [True] * 4, line_width=5.5, width=len, space=1.0)
    assert [(p.text, p.x, p.line) for p in placed] == [("aa", 0, 0), ("bb", 3.0, 0), ("cc", 0, 1), ("↵", 2, 1),
                                                        ("dd", 0, 2)]


def test_walkthrough_page_has_picker_question_answer_legend_and_units():
    a, b = _result("first", n_steps=7), _result("second", n_steps=4, seed=1)
    page = viz.pruning_html([a, b], {"first": CATS, "second": CATS})
    p = _Checker()
    p.feed(page)
    p.close()
    assert p.stack == []
    options = [t for t, _ in p.tags if t == "option"]
    assert len(options) == 2 and "first (11 tokens)" in page and "second (11 tokens)" in page
    assert len(p.spans) == 2 * len(TOKENS) and "x1t10" in p.spans
    assert "How many clips for first?" in page and "<b>Answer:</b> 72" in page
    assert "red outline" in page and "next greedy step deletes" in page and "nats" in page
    for cat in set(CATS):
        assert f"{cat}: " in page  # the legend names and explains each category present
    data = json.loads(re.search(r'type="application/json">(.*?)</script>', page, re.S).group(1))
    assert [e["n_steps"] for e in data["examples"]] == [7, 4]
    assert 'id="ex1" hidden' in page


def test_step_html_and_widget_picker():
    widgets = pytest.importorskip("ipywidgets")
    from pruneprobe.viz.html import step_html
    from pruneprobe.viz.widget import pruning_widget

    a, b = _result("first", n_steps=7), _result("second", n_steps=4, seed=1)
    frag = step_html(a, CATS, 2)
    assert "kept 9 of 11 reasoning tokens" in frag and frag.count("line-through") == 2 and frag.count("#d62728") == 1
    assert "joint log-likelihood" in frag and "nats" in frag
    box = pruning_widget([a, b], {"first": CATS, "second": CATS})
    picker, header, slider, view = box.children
    assert isinstance(picker, widgets.Dropdown) and [o[0] for o in picker.options] == ["first (11 tokens)",
                                                                                       "second (11 tokens)"]
    assert slider.max == 7 and "How many clips for first?" in header.value and "red outline" in header.value
    slider.value = 3
    assert "kept 8 of 11" in view.value
    picker.value = 1
    assert slider.max == 4 and slider.value == 0 and "How many clips for second?" in header.value


def _all_artist_colors(fig) -> set[str]:
    from matplotlib.collections import Collection
    from matplotlib.colors import to_hex
    from matplotlib.lines import Line2D
    from matplotlib.markers import MarkerStyle
    from matplotlib.patches import Patch

    found = set()
    for a in fig.findobj():
        if isinstance(a, Line2D) and a.get_visible() and len(a.get_xdata()):
            if a.get_linestyle() not in ("None", "none", "", " "):
                found.add(to_hex(a.get_color()))
            if a.get_marker() not in (None, "None", "none", ""):  # what a marker shows: its edge (and face if filled)
                shown = [a.get_markeredgecolor()] + [a.get_markerfacecolor()] * MarkerStyle(a.get_marker()).is_filled()
                found |= {to_hex(c) for c in shown if str(c).lower() != "none"}
        elif isinstance(a, Patch) and a.get_visible() and a.get_facecolor()[3] > 0 and a.axes is not None \
                and a is not a.axes.patch and not isinstance(a.get_figure(), type(None)):
            found.add(to_hex(a.get_facecolor()[:3]))
        elif isinstance(a, Collection) and len(a.get_facecolor()):
            found |= {to_hex(c[:3]) for c in a.get_facecolor() if c[3] > 0}
    return found


def _is_grey(hex_color: str) -> bool:
    return hex_color[1:3] == hex_color[3:5] == hex_color[5:7]


def test_every_figure_takes_its_colours_from_the_maps():
    """Each figure function, on synthetic data: every non-grey colour drawn is a value of a colour map."""
    viz.set_style()
    allowed = set().union(*(m.values() for m in (viz.METHOD_COLORS, viz.CATEGORY_COLORS, viz.KIND_COLORS,
                                                 viz.style.MODEL_COLORS, viz.style.PRUNER_COLORS)))
    runs = ["Greedy, joint objective", "Surprisal", "Uniform"]
    dyn = pd.DataFrame([dict(run=runs[0], lag=lag, kind=k, top=1, hit_rate=0.5, ci_lo=0.4, ci_hi=0.6, chance=0.1,
                             n_steps=30, n_examples=3) for lag in (1, 2, 4) for k in ("dynamic", "frozen", "random")])
    corr = pd.DataFrame([dict(run=r, lag=lag, spearman=0.5, ci_lo=0.4, ci_hi=0.6, n_examples=3)
                         for r in runs[:1] for lag in (1, 2, 4)])
    scores = pd.DataFrame([dict(fold=f, feature_set=fs, model=m, pearson=0.3 + 0.01 * f)
                           for f in range(3) for fs in ("attention", "position") for m in ("ridge", "mlp")])
    layers = pd.DataFrame(dict(layer=[0, 1], pearson=[0.2, 0.3], pearson_pooled=[0.2, 0.3]))
    acc = pd.DataFrame([dict(method=m, keep_ratio=k, accuracy=0.5, ci_low=0.4, ci_high=0.6, n=10)
                        for m in ("Full chain", "No chain", *runs) for k in (0.9, 0.7)])
    figures = {
        "composition": viz.plot_composition(_composition_table(runs), "retention"),
        "retention": viz.plot_retention(_composition_table(runs), keep_ratio=0.5),
        "hit_rates": viz.plot_hit_rates(dyn), "rank_correlation": viz.plot_rank_correlation(corr),
        "regression": viz.plot_regression_scores(scores), "layers": viz.plot_layer_contribution(layers),
        "compare": viz.plot_compare(_compare_table(runs), "kept_iou"),
        "accuracy": viz.plot_accuracy(acc, refs=("Full chain", "No chain"), in_sample=("Surprisal",)),
        "accuracy_dots": viz.plot_accuracy_dots(acc, refs=("Full chain", "No chain")),
        "traces": viz.plot_traces(_result()), "traces_all": viz.plot_traces_all({runs[0]: [_result()]}),
        "chain": viz.plot_pruned_chain(make_result(), CATS),
    }
    for name, fig in figures.items():
        colors = {c for c in _all_artist_colors(fig) if not _is_grey(c) and c != "#eaeaf2"}
        assert colors <= allowed, (name, colors - allowed)
    import matplotlib.pyplot as plt

    plt.close("all")


def _study_tables():
    rows = []
    for t in ("normalized_rank", "delta_loglik"):
        for fs in ("attention", "non-attention", "both", "both - non-attention"):
            for m in ("ridge", "mlp"):
                v = 0.1 if fs.startswith("both -") else 0.5
                rows.append(dict(target=t, feature_set=fs, model=m, pearson=v, pearson_lo=v - 0.05,
                                 pearson_hi=v + 0.05, n_examples=120, n_test=5914))
    layers = pd.DataFrame([dict(target=t, layer=layer, pearson=0.2, pearson_lo=0.15, pearson_hi=0.25, n_examples=120,
                                n_tokens=5914) for t in ("normalized_rank", "delta_loglik") for layer in range(4)])
    heads = pd.DataFrame([dict(target=t, layer=layer, head=h, pearson=0.1 * h, n_examples=120, n_tokens=5914)
                          for t in ("normalized_rank", "delta_loglik") for layer in range(4) for h in range(3)])
    return pd.DataFrame(rows), layers, heads


def test_attention_study_figures_say_targets_n_and_use_model_colours():
    from pruneprobe.viz.attention_figures import plot_attention_study, plot_head_scores, plot_layer_scores

    viz.set_style()
    summary, layers, heads = _study_tables()
    fig = plot_attention_study(summary)
    titles = [a.get_title() for a in fig.axes]
    assert "pruning rank" in titles[0] and "post-deletion likelihood" in titles[1]
    assert "attention adds (both − non-attention):\nridge +0.10 [+0.05, +0.15]" in titles[0]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["attention", "non-attention", "both"]
    captions = " ".join(t.get_text() for t in fig.texts)
    assert "n = 120 examples, 5914 tokens" in captions
    allowed = set(viz.style.MODEL_COLORS.values())
    for f in (fig, plot_layer_scores(layers)):
        assert {c for c in _all_artist_colors(f) if not _is_grey(c) and c != "#eaeaf2"} <= allowed
    fig = plot_head_scores(heads)
    assert "layer 0, head 2" in fig.axes[0].get_title()
    import matplotlib.pyplot as plt

    plt.close("all")


def test_cached_table_reuses_and_rebuilds_on_a_new_key(tmp_path):
    from pruneprobe.analysis.cache import cached_table, frame_digest, results_digest

    calls = []

    def build():
        calls.append(1)
        return pd.DataFrame({"fold": [0, 1, "mean"], "x": [0.125, 0.5, 1 / 3]})

    path = tmp_path / "t" / "table.csv"
    first = cached_table(path, {"inputs": "a"}, build)
    again = cached_table(path, {"inputs": "a"}, build)
    assert len(calls) == 1 and list(again["fold"]) == ["0", "1", "mean"]
    assert again["x"].tolist() == first["x"].tolist()
    cached_table(path, {"inputs": "b"}, build)
    cached_table(path, {"inputs": "b"}, build, refresh=True)
    assert len(calls) == 3 and json.loads(path.with_suffix(".json").read_text())["key"] == {"inputs": "b"}
    a, b = _result("first"), _result("first", seed=3)
    assert results_digest({"g": [a]}) != results_digest({"g": [b]}) and results_digest({"g": [a]}) == results_digest(
        {"g": [a]})
    assert frame_digest(pd.DataFrame({"x": [1, 2]})) != frame_digest(pd.DataFrame({"x": [1, 3]}))


def test_frame_digest_ignores_storage_but_not_values():
    """A committed cache must stay fresh under another numpy or pandas: dtypes and float64 last bits
    do not change the key; a changed value, name or column order does."""
    from pruneprobe.analysis.cache import frame_digest

    rng = np.random.default_rng(0)
    base = pd.DataFrame({"example_id": ["a", "a", "b"], "token": [" x", None, "\n"], "n": [1, 2, 3],
                         "score": rng.normal(size=3), "flag": [True, False, True]})
    key = frame_digest(base)
    same = base.astype({"example_id": "string", "n": "float32", "flag": "int64"})
    same["score"] = base["score"] * (1 + 1e-15)
    assert frame_digest(same) == key and frame_digest(base.astype({"token": object})) == key
    changed = base.copy()
    changed.loc[1, "score"] += 1e-3
    assert frame_digest(changed) != key
    assert frame_digest(base.rename(columns={"n": "m"})) != key
    assert frame_digest(base[list(base.columns[::-1])]) != key
    assert frame_digest(base.assign(token=[" x", "", "\n"])) != key  # missing is not the empty string
