"""Analysis of pruning results, each function returning a tidy DataFrame: category composition and
rank dynamics (``dynamics``), run comparisons (``compare``), attention capture (``attention``) and
the attention → rank regression (``regression``), headline numbers of a run set (``headlines``), token categories (``categories``, with its rules,
LLM annotator and gold set), cached features (``features``); the shared bootstrap and run grouping (``stats``)."""

from pruneprobe.analysis.compare import (
                                          compare_pruners_by_words,
                                          compare_runs,
                                          word_view,
)
from pruneprobe.analysis.dynamics import (
                                          alive_matrix,
                                          category_composition,
                                          has_full_scores,
                                          rank_correlation_by_lag,
                                          rank_dynamics,
)
from pruneprobe.analysis.headlines import headline_numbers
from pruneprobe.analysis.regression import (
                                          attention_rank_regression,
                                          layer_contribution,
                                          regression_table,
)
from pruneprobe.analysis.stats import (
                                          bootstrap,
                                          bootstrap_ci,
                                          bootstrap_mean,
                                          group_runs,
)

__all__ = ["compare_runs", "compare_pruners_by_words", "word_view", "alive_matrix", "bootstrap",
           "category_composition", "group_runs", "has_full_scores", "rank_correlation_by_lag", "rank_dynamics",
           "attention_rank_regression", "layer_contribution", "regression_table", "bootstrap_ci", "bootstrap_mean", "headline_numbers"]
