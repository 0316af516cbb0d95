"The distributed path on CPU: a tiny stage-2 step under `accelerate launch` with 2 gloo processes; both ranks must train on different rows and end with the same weights."
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from vlarl.config import RunDir, build_config
from vlarl.data.clips import ensure_clips
from vlarl.train.sft import stage1_model

ROOT = Path(__file__).resolve().parents[1]
TINY = ["world.scenarios=[highway, merge]", "world.clips_per_scenario=3", "data.held_out_frac=0.3", "world.frames=2", "world.image_size=48",
        "model.pretrain_epochs=1", "model.vision_pretrain_epochs=0", "model.llm=scratch", "model.llm_layers=1", "model.vocab_size=400",
        "stage1.epochs=1", "stage2.epochs=1", "stage2.batch_size=2"]

@pytest.fixture(scope="module")
def stage1_run(tmp_path_factory):
    "A tiny run with its clips and stage-1 checkpoint, made in this (single) process."
    cfg = build_config("tiny", overrides=TINY)
    run = RunDir.create(cfg, tmp_path_factory.mktemp("dist") / "run")
    stage1_model(cfg, run, ensure_clips(run, cfg))
    return run

def accelerate_launch(args, timeout=240):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "SDL_VIDEODRIVER": "offscreen", "MPLBACKEND": "Agg",
           "TOKENIZERS_PARALLELISM": "false"}
    cmd = [str(Path(sys.executable).parent / "accelerate"), "launch", "--config_file", str(ROOT / "configs/accelerate/ddp.yaml"), *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)

def test_two_gloo_ranks_train_the_same_weights(stage1_run, tmp_path):
    trace = tmp_path / "trace"
    t0 = time.perf_counter()
    r = accelerate_launch(["-m", "vlarl.tools.launch", "stage2", "--run-dir", str(stage1_run.path), "--trace", str(trace)])
    seconds = time.perf_counter() - t0
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    info = [json.loads((trace / f"rank{i}.json").read_text()) for i in (0, 1)]
    assert [i["world_size"] for i in info] == [2, 2] and all("MULTI_CPU" in i["distributed_type"] for i in info)
    assert info[0]["global_step"] == info[1]["global_step"] >= 1
    assert set(info[0]["rows"]) != set(info[1]["rows"])  # each rank trained on its own shard of the entries
    w0, w1 = load_file(trace / "rank0.safetensors"), load_file(trace / "rank1.safetensors")
    assert w0.keys() == w1.keys() and any("lora_B" in k for k in w0) and any("projector" in k for k in w0)
    assert all((w0[k] == w1[k]).all() for k in w0), "the ranks' weights differ: gradients were not all-reduced"
    assert any(w0[k].abs().sum() > 0 for k in w0 if "lora_B" in k)  # LoRA B starts at zero: it trained
    assert (stage1_run.checkpoints / "stage2" / "config.json").is_file()  # the main process saved the merged model
    print(f"accelerate launch, 2 gloo ranks: {seconds:.1f} s")

@pytest.mark.parametrize("name, kind, detail", [("zero2", "DEEPSPEED", 2), ("zero3", "DEEPSPEED", 3), ("fsdp", "FSDP", 2), ("ddp", "MULTI_GPU", None)])
def test_shipped_accelerate_configs_parse(name, kind, detail):
    from accelerate.commands.config.config_args import load_config_from_file
    c = load_config_from_file(str(ROOT / "configs" / "accelerate" / f"{name}.yaml"))
    assert kind in str(c.distributed_type)
    if kind == "DEEPSPEED": assert c.deepspeed_config["zero_stage"] == detail
    if kind == "FSDP": assert c.fsdp_config["fsdp_version"] == detail
