"""Strategy objects: the same pruning as the string forms, checked settings, no mixing with keywords."""

import numpy as np
import pytest

from pruneprobe import Exact, Multi, PruneprobeError, Shortlist, greedy_prune
from pruneprobe.core.cost import count_token_forwards, estimate_greedy_cost
from pruneprobe.core.greedy import STRATEGIES
from pruneprobe.core.strategies import resolve_strategy

pytestmark = pytest.mark.usefixtures("one_thread")


def _same(a, b):
    assert a.deletion_order == b.deletion_order
    np.testing.assert_array_equal(a.candidate_scores, b.candidate_scores)
    assert a.traces == b.traces and a.metadata["strategy"] == b.metadata["strategy"]


@pytest.mark.parametrize("obj, legacy", [
    (Exact(), {}),
    (Shortlist(window=16, reach=8, refresh_every=5), {"strategy": "shortlist", "window": 16, "reach": 8,
                                                      "refresh_every": 5}),
    (Shortlist(size=4, fraction=1.0, first=None, margin=0.5, reach=None),
     {"strategy": "shortlist", "shortlist": 4, "shortlist_fraction": 1.0, "shortlist_first": None, "margin": 0.5,
      "reach": None}),
    (Multi(fraction=0.25), {"strategy": "multi", "multi_fraction": 0.25}),
])
def test_an_object_prunes_like_the_string_and_keywords(pruner, example, obj, legacy):
    by_object = greedy_prune(pruner, example, strategy=obj, max_steps=10)
    by_keywords = greedy_prune(pruner, example, max_steps=10, **legacy)
    _same(by_object, by_keywords)
    assert by_object.metadata["strategy"] == obj.name


def test_names_resolve_to_the_objects_with_todays_defaults():
    assert STRATEGIES == ("exact", "shortlist", "multi")
    assert resolve_strategy() == Exact() and resolve_strategy("exact") == Exact()
    assert resolve_strategy("shortlist") == Shortlist(window=2, reach=4, size=16, fraction=1 / 3, refresh_every=25,
                                                      first=4, margin=5.0)
    assert resolve_strategy("multi") == Multi(fraction=0.05)
    assert resolve_strategy("shortlist", window=16, reach=8) == Shortlist(window=16, reach=8)
    assert resolve_strategy(Multi(0.1)) == Multi(0.1)


@pytest.mark.parametrize("make, message", [
    (lambda: Shortlist(fraction=0), "shortlist_fraction"),
    (lambda: Shortlist(size=0), "shortlist >= 1"),
    (lambda: Shortlist(refresh_every=0), "refresh_every"),
    (lambda: Shortlist(window=-1), "window"),
    (lambda: Shortlist(reach=-2), "reach"),
    (lambda: Shortlist(first=0), "shortlist_first"),
    (lambda: Shortlist(margin=float("nan")), "margin"),
    (lambda: Multi(fraction=1.0), "multi_fraction must be in"),
    (lambda: Multi(fraction=0), "multi_fraction must be in"),
    (lambda: resolve_strategy("fastest"), "unknown strategy 'fastest'"),
    (lambda: resolve_strategy("exact", multi_fraction=2), "multi_fraction must be in"),  # checked whatever the name
])
def test_settings_are_checked(make, message):
    with pytest.raises(PruneprobeError, match=message):
        make()


def test_an_object_with_keywords_is_refused(pruner, example):
    with pytest.raises(PruneprobeError, match="carries its own settings.*window"):
        greedy_prune(pruner, example, strategy=Shortlist(), window=16)
    with pytest.raises(PruneprobeError, match="multi_fraction"):
        resolve_strategy(Exact(), multi_fraction=0.05)
    with pytest.raises(TypeError, match="windows"):
        greedy_prune(pruner, example, windows=3)


def test_objects_are_frozen():
    with pytest.raises(AttributeError):
        Shortlist().window = 3


def test_cost_takes_the_object_like_the_string(pruner, example):
    pruner.info["tokens_per_s"] = 1e6
    assert (count_token_forwards(30, 600, 12, 600, Shortlist(size=8, refresh_every=10))
            == count_token_forwards(30, 600, 12, 600, "shortlist", shortlist=8, refresh_every=10))
    assert count_token_forwards(30, 600, 12, 600, Multi(0.1)) == count_token_forwards(30, 600, 12, 600, "multi",
                                                                                    multi_fraction=0.1)
    by_object = estimate_greedy_cost(pruner, example, strategy=Shortlist(refresh_every=10))
    by_keywords = estimate_greedy_cost(pruner, example, strategy="shortlist", refresh_every=10)
    assert by_object == by_keywords and by_object.strategy == "shortlist"
