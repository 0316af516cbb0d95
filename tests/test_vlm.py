"""The video VLM across notebooks: which parameters each stage trains, resuming, and clear errors for bad input."""
import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast, SiglipVisionModel
from tokenizers import Tokenizer, models

from vlarl.config import TrainConfig, build_config
from vlarl.data.clips import record_clips
from vlarl.model.vlm import (INSTRUCTION_CONCISE, add_lora, assemble_video_vlm, make_video_vlm, generate_text, load_video_vlm,
                         make_processor, save_video_vlm, set_trainable, make_tiny_text_config, make_tiny_vision_config, trainable_names,
                         train_tokenizer)
from vlarl.train.sft import SPLIT_ENTRIES, STAGE1_PARTS, last_checkpoint, make_entries, tokenizer_corpus, train_entries

CFG = build_config(overrides=["world.clips_per_scenario=2", "world.frames=2", "world.image_size=48",
                              "world.scenarios=[highway,merge]", "model.llm=scratch", "model.llm_layers=1"])


@pytest.fixture(scope="module")
def clips():
    return record_clips(CFG, progress=False)


@pytest.fixture()
def vlm(clips):
    tok = train_tokenizer(tokenizer_corpus(clips, CFG.world.frames), 400)
    model = assemble_video_vlm(SiglipVisionModel(make_tiny_vision_config(CFG.model, 48)),
                               AutoModelForCausalLM.from_config(make_tiny_text_config(CFG.model, len(tok))), tok, CFG.world.frames)
    return model, make_processor(tok, 48, CFG.model.patch_size)


def test_stage1_trains_exactly_projector_and_temporal(vlm):
    model, _ = vlm
    set_trainable(model, STAGE1_PARTS)
    names = trainable_names(model)
    assert names == {n for n, _ in model.named_parameters() if n.startswith(("model.multi_modal_projector.", "model.temporal_embedding"))}
    assert "model.temporal_embedding" in names and not any("vision_tower" in n or "language_model" in n for n in names)


@pytest.mark.parametrize("train_temporal", [False, True])
def test_stage2_trains_lora_and_projector(vlm, train_temporal):
    model, _ = vlm
    names = trainable_names(add_lora(model, r=32, alpha=64, train_temporal=train_temporal))
    lora = {n for n in names if "lora_" in n}
    targets = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in lora} == targets, "LoRA on every linear layer of the LLM"
    assert all("language_model" in n for n in lora)
    assert any("multi_modal_projector" in n and "modules_to_save" in n for n in names)
    assert any(n.endswith("temporal_embedding") for n in names) == train_temporal
    assert not any("vision_tower" in n for n in names)


def test_training_resumes_from_its_last_checkpoint(vlm, clips, tmp_path):
    model, processor = vlm
    set_trainable(model, STAGE1_PARTS)
    entries = make_entries(clips, SPLIT_ENTRIES)
    tc = TrainConfig(epochs=1, lr=1e-3, batch_size=4)
    first = train_entries(model, processor, entries, tc, tmp_path)
    steps_per_epoch = first.state.global_step
    assert last_checkpoint(tmp_path).endswith(f"checkpoint-{steps_per_epoch}")
    second = train_entries(model, processor, entries, TrainConfig(epochs=2, lr=1e-3, batch_size=4), tmp_path)
    assert second.state.global_step == 2 * steps_per_epoch
    assert len([h for h in second.state.log_history if "loss" in h]) == 2 * steps_per_epoch  # the first epoch's log came with the checkpoint


def test_saved_vlm_generates_the_same(vlm, clips, tmp_path):
    model, processor = vlm
    frames = clips["frames"][:2]
    save_video_vlm(model, processor, tmp_path / "vlm")
    back, proc = load_video_vlm(tmp_path / "vlm")
    assert generate_text(model, processor, frames, INSTRUCTION_CONCISE, 8) == generate_text(back, proc, frames, INSTRUCTION_CONCISE, 8)


def test_clear_errors(vlm, clips, tmp_path):
    model, processor = vlm
    with pytest.raises(FileNotFoundError, match="vision checkpoint"):
        make_video_vlm(str(tmp_path / "missing"), str(tmp_path / "also-missing"), 2)
    with pytest.raises(FileNotFoundError, match="no VLM checkpoint"):
        load_video_vlm(tmp_path / "nothing-here")
    frames = clips["frames"][0]
    with pytest.raises(ValueError, match="expected 2 frames per clip, got 1"):
        generate_text(model, processor, [frames[:1]], INSTRUCTION_CONCISE)
    with pytest.raises(ValueError, match="HxWx3"):
        generate_text(model, processor, [[np.zeros((48, 48), np.uint8)] * 2], INSTRUCTION_CONCISE)
    bare = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), eos_token="</s>")
    with pytest.raises(ValueError, match="has no chat template"):
        make_processor(bare, 48, CFG.model.patch_size)
    bare.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    with pytest.raises(ValueError, match="lacks the image token"):
        make_processor(bare, 48, CFG.model.patch_size)
