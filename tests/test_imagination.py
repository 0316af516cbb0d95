"""The visual branch across notebooks: tokenizer round trip, `<img_k>` tokens in the VLM's vocabulary (and through a save/load),
the `drive_visual` sequence against the driving parsers and rewards, zero rewards for malformed output, clear errors for bad frames."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, SiglipVisionModel

from vlarl.config import build_config
from vlarl.data.clips import as_arrays, record_clips, split_clips
from vlarl.eval.image_metrics import InceptionFeatures, SiglipFeatures, fid_from_features, psnr, ssim
from vlarl.imagination.visual_task import EMPTY_VISUAL, VISUAL_TASK, make_visual_task_rewards, split_visual, visual_clips, visual_format_breakdown, visual_target, visual_task_dataset
from vlarl.imagination.warp import warp_frame
from vlarl.imagination.world_model import stage_tokenizer
from vlarl.model.vlm import assemble_video_vlm, load_video_vlm, make_processor, save_video_vlm, make_tiny_text_config, make_tiny_vision_config, train_tokenizer
from vlarl.rewards.driving import driving_format_breakdown, l2_reward, parse_driving_output
from vlarl.train.sft import tokenizer_corpus
from vlarl.model.vq import (VQVAE, add_image_tokens, codes_to_text, decode_codes, encode_frames, image_token_ids, image_token_names,
                      load_vq, pca_init, save_vq, text_to_codes)

CFG = build_config(overrides=["world.clips_per_scenario=2", "world.frames=3", "world.image_size=48", "world.scenarios=[highway,roundabout]",
                              "model.llm=scratch", "model.llm_layers=1", "imagine.grid=6", "imagine.codebook_size=16"])
GRID, K = CFG.imagine.grid, CFG.imagine.codebook_size


@pytest.fixture(scope="module")
def world():
    dsd = split_clips(record_clips(CFG, progress=False), 0.25, seed=0)
    samples = [as_arrays(r) for r in dsd["train"]]
    frames = np.stack([f for s in samples for f in s["frames"] + [s["future_frame"]]])
    vq = pca_init(VQVAE(48, GRID, K, 8, 8), frames)
    return dsd, samples, frames, vq


def test_tokenizer_round_trip_shapes(world, tmp_path):
    _, _, frames, vq = world
    codes = encode_frames(vq, frames[:5])
    assert codes.shape == (5, GRID, GRID) and codes.dtype == np.int64 and 0 <= codes.min() and codes.max() < K
    rec = decode_codes(vq, codes)
    assert rec.shape == frames[:5].shape and rec.dtype == np.uint8
    assert psnr(rec, frames[:5]).mean() > 15                             # a PCA-initialised tokenizer already reconstructs
    np.testing.assert_array_equal(encode_frames(load_vq(save_vq(vq, tmp_path / "vq")), frames[:5]), codes)
    np.testing.assert_array_equal(text_to_codes(codes_to_text(codes[0]), GRID, K), codes[0])


def test_wrong_image_shapes_are_clear_errors(world):
    _, _, frames, vq = world
    with pytest.raises(ValueError, match="takes 48x48x3 frames, got 64x64x3"): encode_frames(vq, np.zeros((1, 64, 64, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"): encode_frames(vq, np.zeros((1, 48, 48), np.uint8))
    with pytest.raises(ValueError, match=rf"\(N, {GRID}, {GRID}\)"): decode_codes(vq, np.zeros((1, GRID + 1, GRID), int))
    with pytest.raises(ValueError, match="differ in shape"): psnr(frames[:2], frames[:2, :24])
    with pytest.raises(ValueError, match="smaller than"): ssim(frames[:1, :8, :8], frames[:1, :8, :8])
    with pytest.raises(ValueError, match="at least 2 samples"): fid_from_features(np.zeros((1, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="imagine.grid = 7 must divide world.image_size"):
        stage_tokenizer(build_config(overrides=["imagine.grid=7"]), SimpleNamespace(checkpoints="/nonexistent"), lambda: frames)


def test_missing_or_mismatched_checkpoints_are_clear_errors(world, tmp_path):
    _, _, _, vq = world
    run = SimpleNamespace(checkpoints=tmp_path / "checkpoints")
    with pytest.raises(FileNotFoundError, match="no visual tokenizer at"): load_vq(tmp_path / "nothing")
    cfg = build_config(overrides=["world.image_size=48", "imagine.grid=6", f"imagine.vq_checkpoint={tmp_path / 'nothing'}"])
    with pytest.raises(FileNotFoundError, match="no visual tokenizer at"): stage_tokenizer(cfg, run, lambda: None)
    save_vq(vq, tmp_path / "vq48")
    cfg96 = build_config(overrides=[f"imagine.vq_checkpoint={tmp_path / 'vq48'}"])           # the world renders 96 px by default
    with pytest.raises(ValueError, match="takes 48 px frames, the world renders 96 px"): stage_tokenizer(cfg96, run, lambda: None)
    ok, info = stage_tokenizer(build_config(overrides=["world.image_size=48", "imagine.grid=6", f"imagine.vq_checkpoint={tmp_path / 'vq48'}"]), run, lambda: None)
    assert info["source"].endswith("vq48") and not run.checkpoints.exists()   # loaded, nothing trained
    with pytest.raises(FileNotFoundError, match="no Inception v3 weights"): InceptionFeatures(tmp_path / "inception.pth")
    with pytest.raises(FileNotFoundError, match="no SigLIP vision checkpoint"): SiglipFeatures(tmp_path / "siglip")


def test_image_tokens_in_the_vlm_vocabulary(world, tmp_path):
    dsd, samples, _, vq = world
    tok = train_tokenizer(tokenizer_corpus(dsd["train"], 3), 400)
    model = assemble_video_vlm(SiglipVisionModel(make_tiny_vision_config(CFG.model, 48)),
                               AutoModelForCausalLM.from_config(make_tiny_text_config(CFG.model, len(tok))), tok, 3)
    processor = make_processor(tok, 48, CFG.model.patch_size)
    n0 = len(tok)
    add_image_tokens(model, processor.tokenizer, vq)
    assert len(processor.tokenizer) == n0 + K + 2
    assert model.get_input_embeddings().weight.shape[0] == len(processor.tokenizer) == model.get_output_embeddings().weight.shape[0]
    ids = image_token_ids(processor.tokenizer, K)
    assert all(processor.tokenizer.encode(n, add_special_tokens=False) == [i] for n, i in zip(image_token_names(K), ids))
    save_video_vlm(model, processor, tmp_path / "vlm")
    model2, processor2 = load_video_vlm(tmp_path / "vlm")
    np.testing.assert_array_equal(image_token_ids(processor2.tokenizer, K), ids)
    torch.testing.assert_close(model2.get_input_embeddings().weight[ids], model.get_input_embeddings().weight[ids])
    text = codes_to_text(encode_frames(vq, samples[0]["future_frame"])[0])
    assert processor2.tokenizer.decode(processor2.tokenizer.encode(text, add_special_tokens=False)) == text


def test_the_visual_sequence_parses(world):
    _, samples, _, vq = world
    s = samples[0]
    codes = encode_frames(vq, [s["future_frame"]])[0]
    text = visual_target(s, codes)
    tags = [t for t in ("<perception>", "<prediction>", "<visual>", "<think>", "<action>", "<answer>")]
    assert [text.find(t) for t in tags] == sorted(text.find(t) for t in tags) and min(text.find(t) for t in tags) >= 0
    assert visual_format_breakdown(text, GRID, K)["format"] == 1.0
    np.testing.assert_array_equal(text_to_codes(text, GRID, K), codes)
    o = parse_driving_output(text)                                         # the driving parser reads through the visual block
    np.testing.assert_allclose(o.waypoints, s["ego_future"], atol=0.051)
    assert l2_reward([text], ego_future=[s["ego_future"]])[0] > 0.95
    rest, block = split_visual(text)
    assert driving_format_breakdown(rest)["format"] == 1.0 and block == codes_to_text(codes)
    masked = visual_target(s, None, masked=True)
    assert EMPTY_VISUAL in masked and visual_format_breakdown(masked, GRID, K, masked=True)["format"] == 1.0


@pytest.mark.parametrize("masked", [False, True])
def test_rewards_are_zero_on_malformed_output(world, masked):
    dsd, samples, _, vq = world
    rows = visual_task_dataset(visual_clips(dsd["train"], vq, CFG.world.scaling), CFG.world.scaling, 48, GRID, masked)
    funcs, _ = make_visual_task_rewards(vq, CFG.world.scaling, CFG.grpo.drive_weights, CFG.imagine.visual_weight, masked=masked)
    bad = ["", None, "<visual>", "<visual><img_1></visual>", "<answer>[(1, 2)]</answer>", b"\xff", 7, [{"role": "assistant", "content": 3}]]
    cols = {k: [rows[0][k]] * len(bad) for k in rows.column_names if k not in ("prompt", "task")}
    for f in funcs:
        assert f(bad, task=[VISUAL_TASK] * len(bad), **cols) == [0.0] * len(bad), f.__name__
    good = visual_target(samples[0], encode_frames(vq, [samples[0]["future_frame"]])[0], masked)
    row0 = {k: [v] for k, v in rows[0].items() if k not in ("prompt", "task")}
    assert funcs[0]([good], task=[VISUAL_TASK], **row0) == [1.0]


def test_warp_moves_the_scene():
    f = np.full((10, 10, 3), 100, np.uint8); f[4, 4] = 255
    np.testing.assert_array_equal(warp_frame(f, [3, -2])[2, 7], [255, 255, 255])
