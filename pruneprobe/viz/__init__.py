"""Figures for the notebooks and the paper (each function returns a matplotlib Figure), their shared
style (colours by name, names in words, paper sizes), the static HTML walkthrough and what the
notebooks share (``viz.notebook``); ``from pruneprobe import viz`` then ``viz.plot_traces(result)``."""

from pruneprobe.viz.accuracy import plot_accuracy, plot_accuracy_dots
from pruneprobe.viz.chain import plot_pruned_chain
from pruneprobe.viz.figures import (
                                    plot_compare,
                                    plot_composition,
                                    plot_hit_rates,
                                    plot_layer_contribution,
                                    plot_rank_correlation,
                                    plot_regression_scores,
                                    plot_retention,
                                    plot_traces,
                                    plot_traces_all,
)
from pruneprobe.viz.html import category_list, pruning_html, write_html
from pruneprobe.viz.style import (
                                  CATEGORY_COLORS,
                                  KIND_COLORS,
                                  METHOD_COLORS,
                                  category_color,
                                  display_name,
                                  method_color,
                                  ordered_categories,
                                  save_figure,
                                  set_style,
)

__all__ = ["CATEGORY_COLORS", "KIND_COLORS", "METHOD_COLORS", "category_color", "category_list", "display_name",
           "method_color", "ordered_categories", "plot_accuracy", "plot_accuracy_dots", "plot_compare",
           "plot_composition", "plot_hit_rates", "plot_layer_contribution", "plot_pruned_chain",
           "plot_rank_correlation", "plot_regression_scores", "plot_retention", "plot_traces", "plot_traces_all",
           "pruning_html", "save_figure", "set_style", "write_html"]
