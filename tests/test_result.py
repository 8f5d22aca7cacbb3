"""PruneResult: ratios, masks, tables, display and save/load."""

import json
import re

import numpy as np
import pytest

from pruneprobe import PruneprobeError, PruneResult
from pruneprobe.core.result import n_keep_for


def make_result(n=10, order=None):
    order = list(range(n))[::-1] if order is None else order
    tokens = [f" t{i}" for i in range(n)]
    steps = len(order)
    traces = {k: list(np.linspace(1, 2, steps + 1)) for k in
              ("joint_logprob", "joint_ppl", "answer_logprob", "answer_ppl", "reasoning_ppl")}
    traces["reasoning_ppl"][-1] = float("nan")
    matrix = np.full((steps, n), np.nan)
    alive = list(range(n))
    for s, i in enumerate(order):
        matrix[s, alive] = np.arange(len(alive), dtype=float)
        alive.remove(i)
    return PruneResult("ex", "greedy", "joint", list(range(100, 100 + n)), tokens, order, traces, matrix,
                       example={"question": "q"}, metadata={"model": "m"})


def test_keep_ratio_rounding_and_validation():
    assert n_keep_for(0.7, 10) == 7
    assert n_keep_for(0.75, 10) == 8  # round half up
    assert n_keep_for(1.0, 10) == 10
    for bad in (0, -0.1, 1.5, float("nan"), "0.5"):
        with pytest.raises(PruneprobeError, match="keep_ratio must be in"):
            n_keep_for(bad, 10)


def test_ranks_masks_and_text():
    r = make_result(order=[3, 0, 9, 1, 2, 4, 5, 6, 7, 8])
    assert r.pruning_rank.tolist() == [2, 4, 5, 1, 6, 7, 8, 9, 10, 3]
    assert r.kept_mask(0.8).tolist() == [False] + [True] * 2 + [False] + [True] * 6
    assert r.pruned_text(0.7) == " t1 t2 t4 t5 t6 t7 t8"
    assert r.marked_text(0.8) == "[- t0-] t1 t2[- t3-] t4 t5 t6 t7 t8 t9"
    assert r.pruned_token_ids(0.9) == [100, 101, 102, 104, 105, 106, 107, 108, 109]


def test_partial_result_refuses_ratios_it_did_not_reach():
    r = make_result(order=[1, 2])
    assert r.pruning_rank[0] == -1
    r.kept_mask(0.8)
    with pytest.raises(PruneprobeError, match="needs 3 deletions"):
        r.kept_mask(0.7)


def test_tables():
    r = make_result()
    tokens = r.to_dataframe("tokens")
    assert list(tokens.columns[:4]) == ["example_id", "method", "objective", "index"]
    assert tokens["pruning_rank"].tolist() == list(range(10, 0, -1))
    steps = r.to_dataframe("steps")
    assert len(steps) == 11 and steps["n_kept"].iloc[-1] == 0 and steps["deleted_index"].iloc[1] == 9
    cands = r.to_dataframe("candidates")
    assert len(cands) == sum(range(1, 11))  # k candidates at the step with k tokens
    with pytest.raises(PruneprobeError, match="unknown table"):
        r.to_dataframe("nope")


def test_save_load_roundtrip_is_json(tmp_path):
    r = make_result(order=[4, 2, 7])
    path = r.save(tmp_path / "r.json")
    raw = json.loads(path.read_text())  # plain JSON, NaN as null
    assert raw["candidate_scores"][0][0] is not None and raw["candidate_scores"][1][4] is None
    back = PruneResult.load(path)
    assert back.deletion_order == r.deletion_order and back.tokens == r.tokens
    assert np.array_equal(np.isnan(back.candidate_scores), np.isnan(r.candidate_scores))
    assert np.nanmax(np.abs(back.candidate_scores - r.candidate_scores)) == 0
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


def test_load_rejects_garbage(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PruneprobeError, match="not a readable PruneResult"):
        PruneResult.load(tmp_path / "bad.json")


def _damage(d: dict, change) -> dict:
    d = json.loads(json.dumps(d))
    change(d)
    return d


DAMAGE = [  # (what is wrong, how, the field the error must name)
    ("rows of the wrong length", lambda d: d["candidate_scores"][1].pop(), "candidate_scores[1]"),
    ("a missing row", lambda d: d["candidate_scores"].pop(), "candidate_scores"),
    ("a short trace", lambda d: d["traces"]["joint_ppl"].pop(), "traces.joint_ppl"),
    ("tokens and ids differ", lambda d: d["tokens"].pop(), "tokens"),
    ("a duplicate index", lambda d: d["deletion_order"].__setitem__(1, d["deletion_order"][0]), "deletion_order"),
    ("an index out of range", lambda d: d["deletion_order"].__setitem__(0, 99), "deletion_order"),
    ("a missing key", lambda d: d.pop("traces"), "traces"),
    ("a wrong type", lambda d: d.__setitem__("token_ids", "abc"), "token_ids"),
    ("a string score", lambda d: d["candidate_scores"][0].__setitem__(0, "1.5"), "candidate_scores[0]"),
    ("a float token id", lambda d: d["token_ids"].__setitem__(0, 1.5), "token_ids"),
    ("a token_scores list of the wrong length", lambda d: d.__setitem__("token_scores", [0.5]), "token_scores"),
    ("an unknown key", lambda d: d.__setitem__("extra", 1), "extra"),
]


@pytest.mark.parametrize("what, change, field", DAMAGE, ids=[d[0] for d in DAMAGE])
def test_load_names_the_file_and_the_field_of_a_malformed_result(tmp_path, what, change, field):
    path = tmp_path / "damaged.json"
    path.write_text(json.dumps(_damage(make_result(order=[4, 2, 7]).to_dict(), change)))
    with pytest.raises(PruneprobeError) as info:
        PruneResult.load(path)
    message = str(info.value)
    assert str(path) in message and f"'{field}'" in message and "not a readable PruneResult" in message, message


def test_load_of_a_truncated_file_names_the_file(tmp_path):
    path = make_result().save(tmp_path / "r.json")
    path.write_text(path.read_text()[: len(path.read_text()) // 2])
    with pytest.raises(PruneprobeError, match=r"r\.json: not a readable PruneResult \(not valid JSON"):
        PruneResult.load(path)


def test_non_finite_literals_only_where_a_score_may_be_missing(tmp_path):
    r = make_result(order=[4, 2, 7])
    text = json.dumps(r.to_dict())
    # NaN where a score may be missing (traces, candidate scores) reads as NaN, like null
    allowed = text.replace("null", "NaN").replace('"token_scores": NaN', '"token_scores": null')
    assert "NaN" in allowed
    (tmp_path / "nan.json").write_text(allowed)
    back = PruneResult.load(tmp_path / "nan.json")
    assert np.array_equal(np.isnan(back.candidate_scores), np.isnan(r.candidate_scores))
    assert np.isnan(back.traces["reasoning_ppl"][-1])
    for key, change in [
        ("metadata", lambda d: d["metadata"].__setitem__("elapsed_s", "NAN_HERE")),
        ("example", lambda d: d["example"].__setitem__("answer", "NAN_HERE")),
        ("candidate_scores[0]", lambda d: d["candidate_scores"][0].__setitem__(0, "INF_HERE")),
        ("traces.joint_ppl", lambda d: d["traces"]["joint_ppl"].__setitem__(0, "MINF_HERE")),
    ]:
        text = json.dumps(_damage(r.to_dict(), change))
        text = text.replace('"NAN_HERE"', "NaN").replace('"INF_HERE"', "Infinity").replace('"MINF_HERE"', "-Infinity")
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(PruneprobeError, match=f"'{re.escape(key)}'.*(NaN|Infinity)"):
            PruneResult.load(tmp_path / "bad.json")
    # an overflowing number is an infinity too
    (tmp_path / "big.json").write_text(json.dumps(r.to_dict()).replace('"joint_ppl": [1.0', '"joint_ppl": [1e999'))
    with pytest.raises(PruneprobeError, match="'traces.joint_ppl' holds an infinite value"):
        PruneResult.load(tmp_path / "big.json")


def test_load_accepts_every_valid_shape(tmp_path):
    """One-shot baselines (no candidate matrix, token scores with null), partial traces, empty results."""
    r = PruneResult("b", "uniform", "joint", [5, 6, 7], ["a", "b", "c"], [2, 0],
                    {"joint_ppl": [1.0, float("nan"), 3.0]}, token_scores=[0.5, float("nan"), 0.1])
    back = PruneResult.load(r.save(tmp_path / "b.json"))
    assert back.candidate_scores is None and np.isnan(back.token_scores[1]) and back.deletion_order == [2, 0]
    empty = PruneResult.load(PruneResult("", "", "", [], [], [], {}).save(tmp_path / "e.json"))
    assert empty.n_tokens == 0


def test_invalid_order_rejected():
    traces = {"joint_logprob": [0.0, 0.0, 0.0]}
    for order in ([1, 1], [0, 7]):
        with pytest.raises(PruneprobeError, match="distinct"):
            PruneResult("ex", "greedy", "joint", [5, 6], [" a", " b"], order, traces)


def test_show_mentions_each_ratio():
    text = make_result().show()
    assert "rho=0.9" in text and "rho=0.7" in text and "[-" in text
