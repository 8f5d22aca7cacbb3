"""The notebook walkthrough widget: a dropdown of cached examples, a slider over the pruning steps and
the same view as the static page (question and answer, category legend, deleted tokens struck
through, the next deletion outlined in red, log-likelihoods in nats).

Canonical pattern::

    from pruneprobe.viz.widget import pruning_widget
    display(pruning_widget(results, labels))      # ipywidgets; needs a running kernel

Gotchas:
- ipywidgets is imported when the widget is built, so the module imports without it; the static
  page (``viz.html.pruning_html``) is the kernel-free view of the same thing.
"""

from __future__ import annotations

from typing import Sequence

from pruneprobe.core.result import PruneResult
from pruneprobe.viz.html import (
    DELETED_NOTE,
    OUTLINE_NOTE,
    category_list,
    legend_html,
    question_answer_html,
    step_html,
)


def example_options(results: Sequence[PruneResult]) -> list[tuple[str, int]]:
    """Dropdown entries ``("<example id> (<R> tokens)", position)`` in the given order."""
    return [(f"{r.example_id} ({r.n_tokens} tokens)", i) for i, r in enumerate(results)]


def pruning_widget(results: Sequence[PruneResult], labels=None, start: int = 0):
    """An ipywidgets box: example dropdown, step slider, and the rendered step (``step_html``)."""
    import ipywidgets as widgets

    results = list(results)
    picker = widgets.Dropdown(options=example_options(results), value=start, description="example",
                              layout=widgets.Layout(width="28em"))
    slider = widgets.IntSlider(min=0, max=results[start].n_steps, value=0, description="step",
                               layout=widgets.Layout(width="40em"))
    header, view = widgets.HTML(), widgets.HTML()

    def redraw(*_):
        r = results[picker.value]
        cats = category_list(r, labels)
        header.value = (question_answer_html(r) + f"<p>{legend_html(cats)}</p>"
                        f"<p>{DELETED_NOTE}; {OUTLINE_NOTE}.</p>")
        view.value = step_html(r, cats, min(slider.value, r.n_steps))

    def pick(change):
        slider.value = 0
        slider.max = results[change["new"]].n_steps
        redraw()

    picker.observe(pick, names="value")
    slider.observe(redraw, names="value")
    redraw()
    return widgets.VBox([picker, header, slider, view])


__all__ = ["pruning_widget", "example_options"]
