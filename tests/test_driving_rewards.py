"""Kinematic prior, planning metrics and driving rewards on recorded clips, fed the way trl feeds them: dataset rows as lists."""
import numpy as np
import pytest

from vlarl.config import RewardConfig, build_config
from vlarl.data.clips import as_arrays, record_clips
from vlarl.kinematics import constant_velocity, kinematic_rollout, predict_position
from vlarl.eval.metrics import action_metrics, planning_metrics
from vlarl.rewards.driving import (candidate_outputs, driving_breakdown, make_driving_rewards, format_driving_output,
                           format_json_output, make_json_rewards)


@pytest.fixture(scope="module")
def rows():
    cfg = build_config(overrides=["world.clips_per_scenario=3", "world.frames=3", "world.image_size=32", "seed=11"])
    return record_clips(cfg, progress=False)


def trl_kwargs(rows, repeat=1):
    "Every column except the prompt, one value per completion, as GRPOTrainer._calculate_rewards builds them."
    cols = ["ego_future", "agents", "action", "explanations", "clip_id"]
    return {c: [r[c] for r in rows for _ in range(repeat)] for c in cols} | {"trainer_state": None, "log_metric": print}


def test_ground_truth_targets_score_top_marks_from_dataset_lists(rows):
    data = rows.select_columns(["ego_future", "agents", "action", "explanations", "clip_id", "collision", "ego_history", "ego_state"]).to_list()
    texts = [format_driving_output("scene", predict_position(r["ego_history"], r["ego_state"]["command"]), "think",
                                   r["action"] or ["forward"], r["ego_future"]) for r in data]
    fmt, l2, coll, act = (f(texts, **trl_kwargs(data)) for f in make_driving_rewards(RewardConfig()))
    assert fmt == [1.0] * len(data)
    assert min(l2) > 0.99                                   # two-decimal rounding only
    assert all(c == 1.0 for c, r in zip(coll, data) if not r["collision"])
    assert all(a == 1.0 for a, r in zip(act, data) if r["action"])


def test_group_of_candidates_ranks_ground_truth_first(rows):
    "A GRPO group per clip: ground truth, shifted, and into an agent; the truth has the best L2 reward in every group."
    data = rows.select_columns(["ego_future", "agents", "action", "explanations", "clip_id", "ego_history", "ego_state", "caption_concise"]).to_list()
    samples = [dict(r, ego_history=np.asarray(r["ego_history"]), ego_future=np.asarray(r["ego_future"])) for r in data]
    for s, r in zip(samples, data):
        cands = candidate_outputs(s)
        l2 = make_driving_rewards()[1](list(cands.values()), **trl_kwargs([r], repeat=len(cands)))
        assert l2[0] == max(l2) and l2[0] > l2[1], (s["clip_id"], l2)


def test_json_rewards_from_dataset_lists(rows):
    data = rows.select_columns(["action", "explanations", "ego_future", "agents", "clip_id", "caption_concise"]).to_list()
    texts = [format_json_output(r["caption_concise"], r["action"], r["explanations"]) for r in data]
    fmt, act, expl = (f(texts, **trl_kwargs(data)) for f in make_json_rewards())
    assert act == [1.0 if r["action"] else 0.0 for r in data] and expl == [1.0] * len(data)
    assert all(f == 1.0 for f, r in zip(fmt, data) if r["action"])


def test_planning_and_action_metrics_on_clips(rows):
    samples = [as_arrays(r) for r in rows]
    cv = np.array([constant_velocity(s["ego_history"]) for s in samples])
    prior = np.array([kinematic_rollout(s["ego_history"], s["ego_state"]["command"]) for s in samples])
    for plan in (cv, prior):
        m = planning_metrics(plan, samples)
        assert 0 < m["stp3"]["L2"]["avg"] < m["uniad"]["L2"]["avg"]
        assert all(0 <= m[c][k]["avg"] <= 1 for c in ("stp3", "uniad") for k in ("collision_grid", "collision_exact"))
    gt = [s["action"] for s in samples]
    perfect = action_metrics(gt, gt)
    assert perfect["F1_all"] == 1.0 and perfect["accuracy"] == 1.0
    always_forward = action_metrics([["forward"]] * len(gt), gt)
    assert always_forward["mF1"] < 1.0 and always_forward["f1"]["turn left"] == 0.0


def test_missing_or_bad_ground_truth_is_a_clear_error(rows):
    l2 = make_driving_rewards()[1]
    with pytest.raises(ValueError, match="needs the dataset column 'ego_future'"):
        l2(["x"], agents=[[]])
    with pytest.raises(ValueError, match=r"ego_future\[0\] must be 6 finite"):
        l2(["x"], ego_future=[[[0, 0]] * 3])
    text = format_driving_output("s", [1, 0], "t", ["forward"], [[k, 0] for k in range(1, 7)])
    with pytest.raises(ValueError, match="agent 0: field 'future'"):
        make_driving_rewards()[2]([text], agents=[[{"position": [1, 0]}]])
    with pytest.raises(ValueError, match="the sample lacks"):
        driving_breakdown(text, {"ego_future": [[0, 0]] * 6})
