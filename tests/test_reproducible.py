"Two fresh runs on the same seed write the same stage metrics (stages 0-2 at smoke size, as papermill runs them)."
import pytest

from vlarl.config import RunDir, metrics_differences

from test_real_checkpoints import run_stage, smoke_overrides

STAGES = ["04_stage0_dataset", "05_stage1_alignment", "06_stage2_split_entry"]


@pytest.mark.slow
def test_two_runs_write_the_same_metrics(tmp_path):
    overrides = {}
    for name in STAGES: overrides.update(smoke_overrides(name))
    runs = [tmp_path / "a" / "run", tmp_path / "b" / "run"]
    for run in runs:
        for name in STAGES: run_stage(name, run, overrides)
    a, b = (RunDir.open(r) for r in runs)
    assert {p.stem for p in a.metrics.glob("*.json")} >= {"stage0_dataset", "stage1_alignment", "stage2_split_entry"}
    assert metrics_differences(a, b) == {}
