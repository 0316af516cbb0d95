"""Property-based tests: every caption reward (and the semantic reward) takes any completion and returns finite scores."""
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vlarl.rewards.caption import (CAPTION_CLASSES, CAPTION_REWARD_FUNCS, caption_breakdowns, caption_reward,
                                  make_caption_reward)

TAGS = ["<perception>", "</perception>", "<prediction>", "</prediction>", "<think>", "</think>", "<action>", "</action>",
        "<answer>", "</answer>", "{", "}", '"description":', "[(", ")]", ","]
NUMBERS = ["nan", "NaN", "inf", "-inf", "1e308", "-1e309", str(10 ** 400), "0x1F", "1_000", "(nan, inf)"]
WORDS = ["car", "pedestrian", "then", "red", "truck", "no", "ego", "vehicle", "traffic light", "turning", "parked", "bus"]

snippets = st.one_of(st.text(max_size=40), st.sampled_from(TAGS + NUMBERS + WORDS),
                     st.binary(max_size=30).map(lambda b: b.decode("latin-1")),
                     st.sampled_from(["\ud800", "\udfff", "\x00", "\u202e", "🚗🚚", "\u0627\u0644\u0633\u064a\u0627\u0631\u0629", "\t\n\r"]))
texts = st.lists(snippets, max_size=12).map(" ".join)
completions = st.one_of(
    texts, st.binary(max_size=200),
    st.builds(lambda t: [{"role": "assistant", "content": t}], texts),
    st.builds(lambda t: [{"role": "assistant", "content": [{"type": "text", "text": t}]}], texts),
    st.integers(0, 200_000).map(lambda n: "car then " * (n // 9)),  # long text, cut at MAX_CHARS
    st.none(), st.integers(), st.floats(allow_nan=True), st.dictionaries(st.text(max_size=5), st.text(max_size=20), max_size=3),
    st.lists(st.one_of(st.text(max_size=10), st.none()), max_size=3))
detections = st.one_of(st.lists(st.one_of(st.sampled_from(CAPTION_CLASSES), st.text(max_size=12)), max_size=6),
                       st.builds(lambda cs: {"classes": cs}, st.lists(st.sampled_from(CAPTION_CLASSES), max_size=4)))


def _finite_unit(xs, n):
    assert len(xs) == n
    for x in xs:
        assert isinstance(x, float) and math.isfinite(x) and -1e-9 <= x <= 1 + 1e-9, x


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(completions, detections, texts), min_size=1, max_size=6))
def test_caption_rewards_are_finite_for_any_completion(batch):
    comps, dets, refs = map(list, zip(*batch))
    n = len(comps)
    for f in (*CAPTION_REWARD_FUNCS, caption_reward, make_caption_reward([0.1, 0.2, 0.3, 0.4])):
        _finite_unit(f(comps, detections=dets, reference=refs, prompts=["p"] * n, completion_ids=[[0]] * n), n)
    for b in caption_breakdowns(comps, dets, refs):
        assert set(b["objects"]) <= set(CAPTION_CLASSES) and set(b["detected"]) <= set(CAPTION_CLASSES)


def test_missing_columns_are_setup_errors():
    with pytest.raises(ValueError, match="needs a `detections` column"):
        caption_reward(["A car."], reference=["A car."])
    with pytest.raises(ValueError, match="needs a `reference` column"):
        caption_reward(["A car."], detections=[["car"]])


@pytest.fixture(scope="module")
def semantic_reward():
    import numpy as np
    from vlarl.rewards.semantic import TinyDualEncoder, make_semantic_reward
    import torch
    torch.manual_seed(0)
    return make_semantic_reward(TinyDualEncoder(dim=16), {"c": list(np.ones(16) / 4)})


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(st.lists(completions, min_size=1, max_size=6))
def test_semantic_reward_is_finite_for_any_completion(semantic_reward, comps):
    out = semantic_reward(comps, clip_id=["c"] * len(comps))
    assert len(out) == len(comps)
    for x in out: assert isinstance(x, float) and math.isfinite(x) and -1 <= x <= 1, x
