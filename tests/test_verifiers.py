"""The verifiers stage after stage 0: it reads stage 0's clips, caches detections for every clip, and what it writes
is what the rewards read."""
import numpy as np
import pytest

from vlarl.rewards.caption import caption_reward
from vlarl.tools.cli import main
from vlarl.config import RunDir, read_metrics
from vlarl.data.clips import as_arrays, load_clips
from vlarl.rewards.detect import OracleDetector, detections_path, load_detections
from vlarl.rewards.semantic import load_clip_embeddings, load_dual_encoder, make_semantic_reward

SMOKE = ["-p", "world.clips_per_scenario=2", "-p", "world.frames=3", "-p", "world.image_size=64", "-p", "data.held_out_frac=0.3",
         "-p", "detect.epochs=1", "-p", "detect.imgsz=64", "-p", "detect.semantic_epochs=3",
         "-p", "detect.extra_clips_per_scenario=1"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "verifiers"
    assert main(["run", "stage0", "verifiers", "--run-dir", str(path), *SMOKE]) == 0
    return RunDir.open(path)


@pytest.fixture(scope="module")
def samples(run):
    dsd = load_clips(run.data / "clips")
    return [as_arrays(r) for split in ("train", "held_out") for r in dsd[split]]


def test_reads_stage0_and_reports(run):
    m = read_metrics(run, "verifiers")
    assert m["clips"]["source"] == "stage0" and m["clips"]["train"] + m["clips"]["held_out"] == 8
    assert 0 <= m["detector"]["held_out"]["map50"] <= 1
    assert m["semantic"]["retrieval_held_out"]["chance_r1"] == pytest.approx(1 / m["clips"]["held_out"])
    assert m["clips"]["extra_for_verifiers"] == 4  # one per scenario
    assert set(m["detector"]["ap50_held_out"]) <= {"car", "truck", "bus", "motorcycle", "obstacle"}
    ov = m["semantic"]["own_vs_other_held_out"]
    assert ov["clips"] == m["clips"]["held_out"] and ov["ci95"][0] <= ov["rate"] <= ov["ci95"][1]
    for key in ("yolo/held_out", "oracle/all"):
        assert set(m["caption_reward_sanity"][key]) >= {"pedestrian", "absent_class", "shuffled"}
    assert (run.figures / "detections.png").is_file() and (run.figures / "reward_sanity.png").is_file()


def test_caches_cover_every_clip(run, samples):
    ids = {s["clip_id"] for s in samples}
    for name in ("yolo", "oracle"):
        cache = load_detections(run.data / "detections" / f"{name}.json")
        assert set(cache) == ids
        assert all(len(r["frames"]) == 3 for r in cache.values())
    oracle = load_detections(run.data / "detections" / "oracle.json")
    assert [oracle[r["clip_id"]] for r in OracleDetector()(samples)] == OracleDetector()(samples)
    assert detections_path(run, run.config().detect) == run.data / "detections" / "yolo.json"


def test_rewards_read_what_the_stage_wrote(run, samples):
    cache = load_detections(detections_path(run, run.config().detect))
    caps = [s["caption_detailed"] for s in samples]
    r = caption_reward(caps, detections=[cache[s["clip_id"]] for s in samples], reference=caps)
    assert len(r) == len(samples) and all(np.isfinite(r))
    encoder = load_dual_encoder(run.checkpoints / "semantic")
    reward = make_semantic_reward(encoder, load_clip_embeddings(run.data / "clip_embeddings.json"))
    assert all(-1 <= x <= 1 for x in reward(caps, clip_id=[s["clip_id"] for s in samples]))
