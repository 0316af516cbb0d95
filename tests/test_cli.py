"Integration tests of the `vlarl` runner: real papermill runs of two tiny stage notebooks."
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from vlarl.tools.cli import main

ROOT = Path(__file__).resolve().parents[1]
PARAMS = 'profile = "tiny"\nconfig_path = ""\noverrides = ["world.frames=2"]\nrun_dir = ""'
SETUP = ("from vlarl.config import build_config, open_run, write_metrics\n"
         "cfg = build_config(profile, config_path or None, overrides)\n"
         "run = open_run(run_dir, cfg)")
A, B = "10_stage_a.ipynb", "20_stage_b.ipynb"


def write_stage(path, *cells):
    "A stage notebook keeping the contract: parameters cell, setup cell, then `cells`."
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(PARAMS, metadata={"tags": ["parameters"]})]
                                  + [nbformat.v4.new_code_cell(s) for s in (SETUP, *cells)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


def write_b(nbs, fail_on_13=True):
    boom = 'if cfg.seed == 13: raise ValueError("boom")' if fail_on_13 else "pass"
    write_stage(nbs / B, boom, 'write_metrics(run, "b", {"seed": cfg.seed})')


@pytest.fixture
def nbs(tmp_path):
    d = tmp_path / "nbs"
    d.mkdir()
    write_stage(d / A, 'write_metrics(run, "a", {"seed": cfg.seed, "frames": cfg.world.frames})')
    write_b(d)
    return d


def status(run_dir): return json.loads((run_dir / "run.json").read_text())["stages"]
def metrics(run_dir, stage): return json.loads((run_dir / "metrics" / f"{stage}.json").read_text())


def test_run_pipeline(nbs, tmp_path, capsys):
    rd = tmp_path / "run"
    assert main(["run", "--nbs", str(nbs), "--run-dir", str(rd), "-p", "seed=5"]) == 0
    out = capsys.readouterr().out
    assert f"run finished: {rd}" in out and f"[1/2] {A}: done in" in out and f"[2/2] {B}: done in" in out
    assert (rd / "notebooks" / A).is_file() and (rd / "notebooks" / B).is_file()
    st = status(rd)
    assert [st[n]["status"] for n in (A, B)] == ["done", "done"] and st[A]["seconds"] > 0
    # injected parameters reached the kernel: the run's config (seed=5, frames=6), not the smoke overrides (frames=2)
    assert metrics(rd, "a") == {"seed": 5, "frames": 6} and metrics(rd, "b") == {"seed": 5}
    executed = nbformat.read(str(rd / "notebooks" / A), as_version=4)
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in executed.cells)


def test_failing_stage(nbs, tmp_path, capsys):
    rd = tmp_path / "run"
    assert main(["run", "--nbs", str(nbs), "--run-dir", str(rd), "-p", "seed=13"]) == 1
    cap = capsys.readouterr()
    assert f"stage {B} failed in cell 4: ValueError: boom" in cap.err
    partial = rd / "notebooks" / B
    assert f"partially executed notebook: {partial}" in cap.err
    assert partial.is_file() and "boom" in partial.read_text()
    st = status(rd)
    assert st[A]["status"] == "done" and st[B]["status"] == "failed" and st[B]["error"] == "ValueError: boom"
    assert (rd / "metrics" / "a.json").is_file() and not (rd / "metrics" / "b.json").exists()
    assert main(["status", str(rd), "--nbs", str(nbs)]) == 1     # `vlarl status` shows the failure and the way on
    out = capsys.readouterr().out
    assert "ValueError: boom (cell 4)" in out and f"to continue: vlarl run --resume --run-dir {rd}" in out, out
    assert main(["status", str(tmp_path / "nowhere"), "--nbs", str(nbs)]) == 2


def test_resume_skips_done_stages(nbs, tmp_path, capsys):
    rd = tmp_path / "run"
    assert main(["run", "--nbs", str(nbs), "--run-dir", str(rd), "-p", "seed=13"]) == 1
    write_b(nbs, fail_on_13=False)  # fix the failing stage, then continue the run
    capsys.readouterr()
    assert main(["run", "--nbs", str(nbs), "--run-dir", str(rd), "--resume"]) == 0
    out = capsys.readouterr().out
    assert f"[1/2] {A}: done in an earlier run, skipped" in out
    assert not (rd / "metrics" / "a.1.json").exists()  # stage a did not run again
    assert metrics(rd, "b") == {"seed": 13}  # the saved config was used
    assert [status(rd)[n]["status"] for n in (A, B)] == ["done", "done"]
    capsys.readouterr()
    assert main(["status", str(rd), "--nbs", str(nbs)]) == 0
    out = capsys.readouterr().out
    assert out.count(" done ") == 2 and "to continue" not in out, out
    assert main(["run", A, "--nbs", str(nbs), "--run-dir", str(rd), "--resume", "--redo"]) == 0  # stage a again
    assert (rd / "metrics" / "a.1.json").exists()
    assert main(["run", "--nbs", str(nbs), "--run-dir", str(rd), "--redo"]) == 2  # --redo names stages of a resumed run
    assert "--redo runs named stages of a resumed run again" in capsys.readouterr().err


def test_existing_run_dir_refused(nbs, tmp_path, capsys):
    rd = tmp_path / "run"
    rd.mkdir()
    (rd / "keep.txt").write_text("mine")
    assert main(["run", "--nbs", str(nbs), "--run-dir", str(rd)]) == 2
    err = capsys.readouterr().err
    assert "already exists and is not empty" in err and "Traceback" not in err
    assert sorted(p.name for p in rd.iterdir()) == ["keep.txt"]


def test_bad_override(nbs, tmp_path, capsys):
    rd = tmp_path / "run"
    assert main(["run", "--nbs", str(nbs), "--run-dir", str(rd), "-p", "world.frames=abc"]) == 2
    err = capsys.readouterr().err
    assert "world.frames" in err and "Traceback" not in err
    assert not rd.exists()


def test_run_one_notebook_by_substring(nbs, tmp_path, capsys):
    rd = tmp_path / "run"
    assert main(["run", "stage_a", "--nbs", str(nbs), "--run-dir", str(rd)]) == 0
    assert list(status(rd)) == [A] and not (rd / "notebooks" / B).exists()
    assert main(["run", "stage", "--nbs", str(nbs), "--run-dir", str(tmp_path / "r2")]) == 2
    assert "is ambiguous" in capsys.readouterr().err


def _module_env() -> dict:
    "The environment for `python -m vlarl.tools.cli` in a subprocess: this checkout first on the import path."
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def test_module_entry_point(nbs):
    p = subprocess.run([sys.executable, "-m", "vlarl.tools.cli", "stages", "--nbs", str(nbs)],
                       capture_output=True, text=True, env=_module_env(), timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [A, B]


def test_jobs_side_by_side(tmp_path, capsys):
    "`--jobs 2` from the command line (spawned workers under `python -m`): two independent stages at once."
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for name in ("04_stage0_dataset.ipynb", "34_stage_dpo_dialect.ipynb"):
        write_stage(nbs / name, f"import time\nt = time.time()\ntime.sleep(2)\n"
                                f"write_metrics(run, {name[:2]!r}, {{'start': t, 'end': time.time()}})")
    rd = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "vlarl.tools.cli", "run", "--nbs", str(nbs), "--run-dir", str(rd),
                        "--jobs", "2"], capture_output=True, text=True, env=_module_env(), timeout=300)
    assert p.returncode == 0, p.stderr
    a, b = metrics(rd, "04"), metrics(rd, "34")
    assert a["start"] < b["end"] and b["start"] < a["end"], (a, b)  # they overlapped
    assert " beside 04_stage0_dataset.ipynb" in p.stdout or " beside 34_stage_dpo_dialect.ipynb" in p.stdout, p.stdout
    assert main(["run", "--nbs", str(nbs), "--run-dir", str(tmp_path / "r2"), "--jobs", "0"]) == 2
    assert "expected a whole number of at least 1, got '0'" in capsys.readouterr().err


def _two_sleeping_stages(tmp_path):
    "`vlarl run --jobs 2` in a process group of its own, once both of its stages are running (sleeping in a cell)."
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for name in ("04_stage0_dataset.ipynb", "34_stage_dpo_dialect.ipynb"):
        started = f"write_metrics(run, {name[:2]!r}, {{'start': time.time()}})"
        write_stage(nbs / name, f"import time\n{started}\ntime.sleep(300)")
    rd = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "vlarl.tools.cli", "run", "--nbs", str(nbs), "--run-dir", str(rd),
                          "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=_module_env(), start_new_session=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while not all((rd / "metrics" / f"{s}.json").exists() for s in ("04", "34")) and time.time() < deadline:
        time.sleep(0.5)
    return rd, p


def _group_alive(pgid: int) -> bool:
    "Whether any process of the process group `pgid` still runs."
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _group_ends(pgid: int, seconds: float) -> bool:
    "Whether every process of the group `pgid` ends within `seconds`; what is left is killed either way."
    deadline = time.time() + seconds
    while _group_alive(pgid) and time.time() < deadline:
        time.sleep(0.5)
    ended = not _group_alive(pgid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    return ended


def test_interrupt_reaching_only_the_parent(tmp_path):
    "A SIGINT to `vlarl run --jobs 2` alone (`kill -INT PID`, not its process group) stops both running stages."
    rd, p = _two_sleeping_stages(tmp_path)
    t0 = time.time()
    p.send_signal(signal.SIGINT)  # to the parent alone, not its process group
    try:
        out, _ = p.communicate(timeout=120)
    finally:
        assert _group_ends(p.pid, 30), "a worker or kernel outlived the interrupted run"
    assert p.returncode == 130, out
    assert time.time() - t0 < 60, out  # the workers heard it: nobody waited out STOP_SECONDS
    assert {s["status"] for s in status(rd).values()} == {"interrupted"}, status(rd)


def test_killed_run_leaves_no_stage_running(tmp_path):
    "When `vlarl run --jobs 2` is killed outright, its workers stop their stages and no kernel is left (Linux)."
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    rd, p = _two_sleeping_stages(tmp_path)
    p.kill()
    p.wait(timeout=60)  # not communicate(): the workers hold its output pipe until they end
    assert _group_ends(p.pid, 60), "a worker or kernel outlived the killed run"
    assert {s["status"] for s in status(rd).values()} == {"running"}  # nobody was left to record the end


def test_stage_parameters_readable_by_papermill(caplog):
    "`papermill --help-notebook` and headless runs see every stage parameter: no parameters line holds two `=`."
    import papermill
    from vlarl.tools.cli import STAGE_PARAMETERS, find_stage_notebooks
    stages = find_stage_notebooks(ROOT / "nbs")
    assert len(stages) >= 8
    for p in stages:
        with caplog.at_level("WARNING", logger="papermill"):
            caplog.clear()
            names = papermill.inspect_notebook(str(p))
        assert set(STAGE_PARAMETERS) <= set(names), f"{p.name}: papermill reads only {list(names)}"
        assert not [r for r in caplog.records if "Unable to parse" in r.getMessage()], f"{p.name}: {caplog.text}"


def test_mapping_overrides_through_papermill(tmp_path):
    "A headless run can pass overrides as a YAML mapping, the form the stage notebooks' smoke defaults use."
    import papermill
    write_stage(tmp_path / A, 'write_metrics(run, "a", {"seed": cfg.seed, "frames": cfg.world.frames})')
    rd = tmp_path / "run"
    papermill.execute_notebook(str(tmp_path / A), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                               parameters={"overrides": {"world.frames": 4, "seed": "9"}, "run_dir": str(rd)})
    assert metrics(rd, "a") == {"seed": 9, "frames": 4}


def test_publish_replicate_needs_a_stage(tmp_path, capsys):
    "`vlarl publish RUN --replicate` without `--stage` is refused with a clear error, before anything is written."
    assert main(["publish", str(tmp_path), "--replicate", "--results", str(tmp_path / "results")]) == 2
    assert "name the stage with --stage" in capsys.readouterr().err
    assert not (tmp_path / "results").exists()
