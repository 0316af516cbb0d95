"The real dataset adapters (nuScenes, BDD100K + BDD-OIA) on fixtures written in the published formats: schema-identical to the simulated world's samples, read through `ensure_clips`, split by video, and clear errors naming the broken file."
import json

import numpy as np
import pytest

from vlarl.data.bdd import write_bdd_fixture
from vlarl.config import ConfigError, RunDir, build_config
from vlarl.data.clips import as_arrays, ensure_clips, record_clips, video_of
from vlarl.data.nuscenes import DatasetFormatError, nuscenes_clips, open_nuscenes, write_nuscenes_fixture

SMALL = ["world.frames=4", "world.image_size=64"]

@pytest.fixture(scope="module")
def sim_sample():
    "One simulated clip at the same T and image size: the reference schema."
    cfg = build_config("tiny", overrides=SMALL + ["world.scenarios=[highway]", "world.clips_per_scenario=1"])
    ds = record_clips(cfg, progress=False)
    return ds.features, as_arrays(ds[0])

def shapes(s: dict) -> dict:
    "Field -> shape/dtype signature of a sample in numpy form (agents by their first entry)."
    sig = {k: (np.asarray(v).shape, np.asarray(v).dtype.kind) for k, v in s.items() if k in ("ego_history", "ego_future", "future_frame")}
    sig["frames"] = [(f.shape, f.dtype) for f in s["frames"]]
    sig["ego_state"] = {k: type(v).__name__ for k, v in s["ego_state"].items()}
    a = s["agents"][0]
    sig["agent"] = {k: (np.asarray(v).shape, np.asarray(v).dtype.kind) for k, v in a.items()}
    return sig

def check_like_sim(dsd, sim):
    features, ref = sim
    for split in dsd.values(): assert split.features == features
    s = as_arrays(dsd["train"][0])
    assert shapes(s) == shapes(ref)
    assert set(s["action"]) <= {"forward", "stop/slow down", "turn left", "turn right"} and s["ego_state"]["command"] in ("left", "right", "straight")
    assert s["caption_detailed"] and s["caption_concise"] and s["caption_raw"]
    assert not {video_of(c) for c in dsd["train"]["clip_id"]} & {video_of(c) for c in dsd["held_out"]["clip_id"]}

def run_with(tmp_path, source: str, root, extra=()):
    cfg = build_config("tiny", overrides=SMALL + [f"data.source={source}", f"data.root={root}", *extra])
    return ensure_clips(RunDir.create(cfg, tmp_path / "run"), cfg)

def test_nuscenes_through_ensure_clips(tmp_path, sim_sample):
    root = write_nuscenes_fixture(tmp_path / "nuscenes", samples_per_scene=14)
    dsd = run_with(tmp_path, "nuscenes", root, ["data.stride=2"])
    assert sum(map(len, dsd.values())) == 6  # 14 key frames: windows of 10 start at 0, 2, 4 in each of 2 scenes
    check_like_sim(dsd, sim_sample)
    assert dsd["held_out"].unique("scenario") == ["boston-seaport"]

def test_bdd_through_ensure_clips(tmp_path, sim_sample):
    root = write_bdd_fixture(tmp_path / "bdd")
    dsd = run_with(tmp_path, "bdd", root)
    assert sorted([*dsd["train"]["clip_id"], *dsd["held_out"]["clip_id"]]) == ["bdd-b1c66a42-6f7d68ca", "bdd-c0a1b2c3-d4e5f607"]
    check_like_sim(dsd, sim_sample)
    both = dsd["train"].to_list() + dsd["held_out"].to_list()
    assert {c["clip_id"]: c["action"] for c in both} == {"bdd-b1c66a42-6f7d68ca": ["forward"], "bdd-c0a1b2c3-d4e5f607": ["stop/slow down"]}

@pytest.mark.parametrize("breakage, named", [
    (lambda r: (r / "v1.0-mini" / "sample.json").unlink(), "sample.json"),
    (lambda r: (r / "v1.0-mini" / "scene.json").write_text("[{"), "scene.json"),
    (lambda r: (r / "v1.0-mini" / "ego_pose.json").write_text(json.dumps([{"token": "x"}])), "ego_pose.json"),
    (lambda r: next((r / "samples" / "CAM_FRONT").glob("*.jpg")).unlink(), "CAM_FRONT"),
])
def test_nuscenes_errors_name_the_file(tmp_path, breakage, named):
    root = write_nuscenes_fixture(tmp_path / "nuscenes")
    breakage(root)
    cfg = build_config("tiny", overrides=SMALL + ["data.source=nuscenes", f"data.root={root}"])
    with pytest.raises(DatasetFormatError, match=named): list(nuscenes_clips(cfg))

@pytest.mark.parametrize("breakage, named", [
    (lambda r: next(r.rglob("*_reasons.json")).unlink(), "train_25k_images_reasons.json"),
    (lambda r: next(r.rglob("*_actions.json")).write_text(json.dumps({"images": [{"file_name": "x.jpg", "id": 5}], "annotations": []})), "train_25k_images_actions.json"),
    (lambda r: next(r.rglob("b1c66a42-6f7d68ca.mov")).write_bytes(b"not a video"), "b1c66a42-6f7d68ca.mov"),
    (lambda r: next(r.rglob("bdd100k_labels_images_train.json")).write_text("{}"), "bdd100k_labels_images_train.json"),
])
def test_bdd_errors_name_the_file(tmp_path, breakage, named):
    root = write_bdd_fixture(tmp_path / "bdd")
    breakage(root)
    cfg = build_config("tiny", overrides=SMALL + ["data.source=bdd", f"data.root={root}"])
    with pytest.raises(DatasetFormatError, match=named): record_clips(cfg, progress=False)

def test_full_profile_points_at_a_root(tmp_path):
    cfg = build_config("full", overrides=["data.source=nuscenes", f"data.root={tmp_path}", "data.cameras=[CAM_FRONT_LEFT, CAM_FRONT, CAM_FRONT_RIGHT]"])
    assert (cfg.data.source, cfg.data.root, cfg.world.frames) == ("nuscenes", str(tmp_path), 16)
    with pytest.raises(ConfigError, match="data.root"): build_config("full", overrides=["data.source=bdd"])
    with pytest.raises(ConfigError, match="data.source"): build_config("tiny", overrides=["data.source=kitti", "data.root=/x"])
    with pytest.raises(DatasetFormatError, match="v1.0"): record_clips(cfg, progress=False)  # an empty folder is not a nuScenes root

def test_same_clips_as_nuscenes_devkit(tmp_path):
    "Where nuscenes-devkit can be imported, it reads the fixture and the adapter gives the same clips on it."
    pytest.importorskip("nuscenes.nuscenes", reason="optional nuscenes-devkit not installed, so the comparison with it did not run "
                        "(it pins numpy<2: pip install --no-deps nuscenes-devkit to run it)")
    root = write_nuscenes_fixture(tmp_path / "nuscenes")
    cfg = build_config("tiny", overrides=SMALL + ["data.source=nuscenes", f"data.root={root}", "data.cameras=[CAM_FRONT, CAM_BACK]"])
    ours, theirs = list(nuscenes_clips(cfg)), list(nuscenes_clips(cfg, open_nuscenes(root, devkit=True)))
    assert [c["clip_id"] for c in ours] == [c["clip_id"] for c in theirs]
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a["ego_future"], b["ego_future"])
        for x, y in zip(a["agents"], b["agents"]): np.testing.assert_allclose(x["boxes"], y["boxes"])


def test_hierarchical_examples_on_nuscenes(tmp_path):
    "OpenDriveVLA's environment-token examples (`03d`) build from nuScenes clips read in the published format."
    import torch
    from vlarl.model.hierarchical import (QA_KINDS, agents_in_view, alignment_examples, env_vectors, forecast_examples,
                                          map_caption, planning_examples, qa_answers, qa_examples)
    root = write_nuscenes_fixture(tmp_path / "nuscenes", samples_per_scene=14)
    dsd = run_with(tmp_path, "nuscenes", root, ["data.stride=2"])
    samples = [as_arrays(r) for r in [*dsd["train"], *dsd["held_out"]]]
    g, d = 4, 8  # patch grid and feature width: the examples only pool what they are given
    vectors = {s["clip_id"]: env_vectors(torch.randn(len(s["frames"]), g, g, d), s["agents"], 64) for s in samples}
    seen = {s["clip_id"]: agents_in_view(s) for s in samples}
    assert sum(map(len, seen.values())) > 0, "the fixture's annotations put no agent in view"
    aligned = alignment_examples(samples, vectors)
    assert len(aligned) == sum(2 + len(v) for v in seen.values())
    agent_captions = [e.answer for e in aligned if e.tokens[0][0] == "agent"]
    assert agent_captions and all(c.startswith("A ") and ("m ahead" in c or "m behind" in c) for c in agent_captions)
    full = sum(bool(np.all(a["future_valid"])) for v in seen.values() for a in v)
    assert len(forecast_examples(samples, vectors)) == full
    assert len(qa_examples(samples, vectors)) == len(QA_KINDS) * len(samples)
    assert len(planning_examples(samples, vectors)) == len(samples)
    s = samples[0]
    assert map_caption(s) == f"A road in {s['scenario']}."  # nuScenes has no lane labels here: the location only
    assert qa_answers(s)["perception"] == str(len(seen[s["clip_id"]]))
