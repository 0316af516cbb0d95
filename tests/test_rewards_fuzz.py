"""Every driving-output reward (tagged and JSON form) takes any completion and returns finite scores in [0, 1]: property-based tests."""
import json
import math
import time

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from vlarl.config import RewardConfig
from vlarl.rewards.driving import (TAGS, driving_breakdown, make_driving_rewards, format_driving_output, format_trajectory,
                           json_breakdown, make_json_rewards, parse_driving_output, temporal_consistency_reward)

# One clip's ground truth, as trl passes it (dataset columns, here as plain lists like `datasets` returns them).
EGO_FUTURE = [[5.0 * k, 0.1 * k] for k in range(1, 7)]
AGENTS = [{"track_id": 1, "cls": "car", "position": [20.0, 0.0], "size": [5.0, 2.0], "heading": 0.0, "speed": 8.0,
           "future": [[20.0 + 4 * k, 0.0] for k in range(1, 7)], "future_heading": [0.0] * 6, "future_valid": [True] * 6},
          {"track_id": 2, "cls": "truck", "position": [-5.0, 3.5], "size": [9.0, 2.5], "heading": 0.1, "speed": 12.0,
           "future": [[-5.0 + 6 * k, 3.5] for k in range(1, 7)], "future_heading": [0.1] * 6, "future_valid": [True] * 4 + [False] * 2}]
COLUMNS = {"ego_future": EGO_FUTURE, "agents": AGENTS, "action": ["forward"], "explanations": ["Follow traffic"],
           "ego_history": [[-10.0, 0.0], [-5.0, 0.0], [0.0, 0.0]]}
SAMPLE = {"ego_future": np.array(EGO_FUTURE), "agents": AGENTS, "action": ["forward"]}
REWARDS = make_driving_rewards(RewardConfig()) + make_json_rewards(RewardConfig()) + [temporal_consistency_reward]

# --- strategies ----------------------------------------------------------------------------------------------------
any_unicode = st.text(alphabet=st.characters(exclude_categories=()), max_size=200)        # surrogates included
binary = st.binary(max_size=200).map(lambda b: b.decode("latin-1"))
numbers = st.one_of(st.floats().map(repr), st.integers(-10**400, 10**400).map(str),
                    st.sampled_from(["nan", "NaN", "inf", "-inf", "1e999", "-1e999", "1e-400", "-0", "1_000", "٣.٥", "0x1f",
                                     "", ".", "-", "+.e5", "1e", "９", "1.5.2", "1e+308", "1000.01", "-999.99"]),
                    st.text(max_size=6))
labels = st.one_of(st.sampled_from(["forward", "stop/slow down", "turn left", "turn right", "Forward, TURN LEFT",
                                    "forward,,", "fly", "", "forward, forward"]), st.text(max_size=20))

@st.composite
def tagged(draw):
    "Outputs shaped like the tagged form: random sections, numbers, tag order, missing tags, truncation."
    pts = draw(st.lists(st.tuples(numbers, numbers), max_size=8))
    parts = {"perception": draw(st.text(max_size=40)), "prediction": f"({draw(numbers)}, {draw(numbers)})",
             "think": draw(st.text(max_size=40)), "action": draw(labels),
             "answer": "[" + ", ".join(f"({x}, {y})" for x, y in pts) + "]"}
    order = draw(st.one_of(st.just(list(TAGS)), st.permutations(TAGS), st.lists(st.sampled_from(TAGS), max_size=7)))
    sep = draw(st.sampled_from(["", "\n", " ", "\n\n", " x "]))
    text = sep.join(f"<{t}>{parts[t]}</{t}>" for t in order)
    cut = draw(st.integers(0, len(text)))
    return text[:cut] if draw(st.booleans()) else text

json_values = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
                           lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)

@st.composite
def json_like(draw):
    "Outputs shaped like the JSON form: required and stray keys, any values, label strings, truncation."
    obj = draw(st.dictionaries(st.sampled_from(["description", "action", "explanation", "other"]),
                               st.one_of(json_values, labels, st.lists(labels, max_size=4)), max_size=4))
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()), allow_nan=True)
    cut = draw(st.integers(0, len(text)))
    return text[:cut] if draw(st.booleans()) else text

any_completion = st.one_of(any_unicode, binary, tagged(), json_like())

def wrap(text, how):
    "The completion as trl may pass it: a string, a chat turn, a multimodal chat turn, or junk around it."
    return [text, [{"role": "assistant", "content": text}], [{"role": "assistant", "content": [{"type": "text", "text": text}]}],
            text.encode("utf-8", errors="surrogatepass")][how]

def name(f) -> str: return getattr(f, "func", f).__name__

def check_scores(scores, n):
    assert len(scores) == n
    for r in scores:
        assert isinstance(r, float) and math.isfinite(r) and 0.0 <= r <= 1.0, r

# --- properties ----------------------------------------------------------------------------------------------------
@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=any_completion, how=st.integers(0, 3))
def test_every_reward_takes_any_completion(text, how):
    completions = [wrap(text, how), text]
    for f in REWARDS:
        check_scores(f(completions, prompts=["p", "p"], **{k: [v, v] for k, v in COLUMNS.items()}), 2)

@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=any_completion)
def test_breakdowns_are_finite(text):
    for d in (driving_breakdown(text, SAMPLE), json_breakdown(text, ["forward"], ["Follow traffic"])):
        for k, v in d.items():
            assert v is None or (isinstance(v, float) and math.isfinite(v)), (k, v)

coord = st.floats(-999, 999, allow_nan=False)

@settings(max_examples=500, deadline=None)
@given(wp=st.lists(st.tuples(coord, coord), min_size=6, max_size=6), pred=st.tuples(coord, coord),
       acts=st.lists(st.sampled_from(["forward", "stop/slow down", "turn left", "turn right"]), min_size=1, max_size=4, unique=True))
def test_well_formed_outputs_score_full_format(wp, pred, acts):
    "A property that can fail: any well-formed target gets format 1, and its waypoints read back to within rounding."
    text = format_driving_output("scene", pred, "reasoning", acts, wp)
    d = driving_breakdown(text, SAMPLE)
    assert d["format"] == 1.0, d
    assert np.abs(parse_driving_output(text).waypoints - np.array(wp)).max() <= 0.005 + 1e-9
    assert d["l2"] > 0 and 0 <= d["collision"] <= 1

def test_pathological_inputs_are_fast_and_zero():
    "Huge, deeply nested and repetitive completions: linear-time parsing, zero scores, no exceptions."
    target = format_driving_output("scene", [5, 0], "ok", ["forward"], EGO_FUTURE)
    nasty = ["(" * 200_000, "[" * 100_000, "{" * 100_000 + "}" * 100_000, "<answer>" * 50_000, "9" * 200_000,
             "<answer>[" + "(1, 2), " * 100_000 + "]</answer>", "(1," * 100_000, target[:-10] * 2000, "\x00" * 100_000,
             "<answer>[" + ", ".join(["(1e308, 1e308)"] * 6) + "]</answer>", "<answer>[" + ", ".join(["(" + "9" * 5000 + ", 0)"] * 6) + "]</answer>"]
    t0 = time.perf_counter()
    for text in nasty:
        for f in REWARDS:
            scores = f([text], **{k: [v] for k, v in COLUMNS.items()})
            check_scores(scores, 1)
            if name(f) in ("l2_reward", "collision_reward"): assert scores == [0.0], (name(f), text[:60])
    assert time.perf_counter() - t0 < 20, "parsing is not linear-time"
