"""Stage 0 end to end: the runner records a dataset, and what comes back from disk keeps the schema's promises."""
import numpy as np
import pytest

from vlarl.tools.cli import main
from vlarl.config import RunDir, read_metrics
from vlarl.data.clips import as_arrays, load_clips
from vlarl.sim import box_fit
from vlarl.schema import ACTIONS, AGENT_CLASSES, COMMANDS, DECIDABLE_EXPLANATIONS, FUTURE_STEPS

FRAMES, SIZE = 3, 80


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "stage0"
    code = main(["run", "stage0", "--run-dir", str(path), "--publish-figures", str(path.parent / "published"), "-p", "world.clips_per_scenario=3",
                 "-p", f"world.frames={FRAMES}", "-p", f"world.image_size={SIZE}", "-p", "data.held_out_frac=0.3"])
    assert code == 0
    return RunDir.open(path)


@pytest.fixture(scope="module")
def clips(run):
    return load_clips(run.data / "clips")


def test_run_directory_layout(run):
    assert (run.notebooks / "04_stage0_dataset.ipynb").is_file()
    assert (run.figures / "world_samples.png").is_file() and (run.figures / "label_distribution.png").is_file()
    card = read_metrics(run, "stage0_dataset")["card"]
    assert card["train"]["clips"] + card["held_out"]["clips"] == 12
    assert run.config().world.frames == FRAMES
    assert sorted(p.name for p in (run.path.parent / "published").iterdir()) == ["label_distribution.png", "world_samples.png"]


def test_split_keeps_clips_apart(clips):
    train, held = set(clips["train"]["clip_id"]), set(clips["held_out"]["clip_id"])
    assert train and held and not train & held
    assert set(clips["held_out"]["scenario"]) == {"highway", "merge", "roundabout", "intersection"}


def test_schema_shapes_and_dtypes(clips):
    for ex in clips["train"]:
        s = as_arrays(ex)
        assert len(s["frames"]) == FRAMES and all(f.shape == (SIZE, SIZE, 3) and f.dtype == np.uint8 for f in s["frames"])
        assert s["future_frame"].shape == (SIZE, SIZE, 3)
        assert s["ego_history"].shape == (FRAMES, 2) and s["ego_future"].shape == (FUTURE_STEPS, 2)
        assert np.allclose(s["ego_history"][-1], 0), "history ends at the ego, the origin of its frame"
        assert s["ego_state"]["command"] in COMMANDS
        assert set(s["action"]) <= set(ACTIONS) and set(s["explanations"]) <= set(DECIDABLE_EXPLANATIONS)
        for a in s["agents"]:
            assert a["cls"] in AGENT_CLASSES and a["boxes"].shape == (FRAMES + 1, 4) and a["future"].shape == (FUTURE_STEPS, 2)
            vis = a["boxes"][a["visible"]]
            assert ((vis[:, 2] > vis[:, 0]) & (vis[:, 3] > vis[:, 1])).all()
            assert (vis >= 0).all() and (vis <= SIZE).all()
        for cap in ("caption_raw", "caption_detailed", "caption_concise"):
            assert isinstance(s[cap], str) and len(s[cap].split()) >= 5


def test_ego_frame_points_forward(clips):
    "+x is forward: a moving ego has its past behind it and its next waypoint ahead."
    moving = [as_arrays(ex) for ex in clips["train"] if ex["ego_state"]["speed"] > 3]
    assert moving
    for s in moving:
        assert s["ego_future"][0, 0] > 0 and s["ego_history"][-2, 0] < 0


def test_boxes_hold_the_rendered_vehicles(clips):
    "After the PNG round trip, every vehicle pixel is inside a box of its class and every visible box holds its pixels."
    seen = 0
    for ex in clips["train"]:
        s = as_arrays(ex)
        for k in range(FRAMES + 1):
            for cls in ("car", "truck", "bus", "motorcycle"):
                assert box_fit(s, k, cls) == (1.0, 1.0), (s["clip_id"], k, cls)
                seen += sum(a["cls"] == cls and a["visible"][k] for a in s["agents"])
    assert seen > 10


def test_bad_config_is_refused_before_anything_runs(tmp_path, capsys):
    assert main(["run", "stage0", "--run-dir", str(tmp_path / "r"), "-p", "world.frames=1"]) == 2
    assert "world.frames: must be >= 2" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
