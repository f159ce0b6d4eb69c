"""The Stage II and III trainers on tiny random models and a tiny generated dataset: the loss goes down,
only control parameters change, checkpoints reload through the project's loaders (and PAM's key
layout), a resumed run repeats the uninterrupted one exactly, drops happen at the set rate, the latent
cache equals on-the-fly encoding, and bad input is refused before training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from training_data import write_tiny_dataset
from pam_diffusion.training import TrainingConfigError, load_trainer_config, train
from pam_diffusion.training.data import DatasetError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = {"appearance": ROOT / "configs" / "train_appearance_tiny.yaml",
           "motion": ROOT / "configs" / "train_motion_tiny.yaml"}
PROMPTS = ("red can", "mustard")  # short: the tiny text encoders take 16 tokens


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny_dataset"), episodes=3, prompts=PROMPTS)


def config(stage: str, data: Path, out: Path, **overrides):
    base = {"data.root": str(data), "data.video": "video.mp4", "train.output_dir": str(out),
            "train.progress": False, "train.validate_every": 0, "train.checkpoint_every": 1000}
    base.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_trainer_config(CONFIGS[stage], stage, base)


def state_bytes(module: torch.nn.Module) -> dict[str, bytes]:
    """The bytes of every weight (parameters; buffers such as fixed positional tables are not weights)."""
    return {k: v.detach().cpu().numpy().tobytes() for k, v in module.named_parameters()}


# --- Stage II -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stage2_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("s2")
    return train(config("appearance", dataset, out / "run", train__max_steps=24, train__checkpoint_every=12,
                        model__tiny_seed=7))


def test_stage2_loss_decreases_and_only_controlnets_change(stage2_run):
    from pam_diffusion.tiny import tiny_components

    r = stage2_run
    assert r.steps == 24 and len(r.losses) == 24 and r.stopped == "max_steps"
    print(f"stage II fixed-batch loss {r.fixed_loss_start:.4f} -> {r.fixed_loss_end:.4f} over 24 steps")
    assert r.fixed_loss_end < 0.9 * r.fixed_loss_start, (r.fixed_loss_start, r.fixed_loss_end)
    fresh = tiny_components(32, 48, seed=7).stage2
    pipe = r.task.pipe
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        assert state_bytes(pipe.components[name]) == state_bytes(fresh[name]), f"{name} changed"
    # the nets started as PAM starts them (copied Flux blocks, zero residual projections) and moved
    from pam_diffusion.flux_controlnet import controlnet_from_transformer

    start = controlnet_from_transformer(fresh["transformer"]).state_dict()
    trained = pipe.controlnet.nets[0].state_dict()
    changed = [k for k in start if not torch.equal(start[k], trained[k])]
    assert any(k.startswith("controlnet_blocks") for k in changed)
    assert any(k.startswith("input_hint_block") for k in changed)


def test_stage2_checkpoint_is_pams_layout_and_reloads_identically(stage2_run):
    from diffusion_refs import pam_layout
    from pam_diffusion.checkpoints import load_weights_file
    from pam_diffusion.convert import load_pam_controlnets

    r = stage2_run
    ckpt = r.checkpoint
    assert ckpt.name == "checkpoint-000024"
    sd = load_weights_file(ckpt / "controlnet.bin")
    transformer = r.task.pipe.transformer
    layout = pam_layout(transformer)
    expected = {f"controlnet{i}.{k}": shape for i in (1, 2) for k, shape in layout.items()}
    # what DoubleControl(ControlNetFlux, ControlNetFlux).load_state_dict(strict=True) requires
    assert {k: tuple(v.shape) for k, v in sd.items()} == expected

    hints, kwargs = _stage2_inputs(transformer)
    with torch.no_grad():
        want = r.task.controlnet(controlnet_cond=hints, **kwargs)
        for source in (ckpt / "controlnet.bin", ckpt):  # x-flux file, and the diffusers folders beside it
            got = load_pam_controlnets(source, transformer.config)(controlnet_cond=hints, **kwargs)
            for a, b in zip(want[0], got[0]):
                assert torch.equal(a, b)


def _stage2_inputs(transformer):
    """ControlNet inputs for a 32x48 image: 4x6 latents packed 2x2 into 2x3 tokens."""
    gen = torch.Generator().manual_seed(0)
    c = transformer.config
    hidden = torch.randn(1, 6, c.in_channels, generator=gen)
    img_ids = torch.zeros(6, 3)
    img_ids[:, 1] = torch.arange(2).repeat_interleave(3)
    img_ids[:, 2] = torch.arange(3).repeat(2)
    hints = [torch.rand(1, 6, 32, 48, generator=gen) * 2 - 1 for _ in range(2)]
    kwargs = dict(hidden_states=hidden, controlnet_mode=[torch.full((1,), -1)] * 2, conditioning_scale=[1.0, 1.0],
                  encoder_hidden_states=torch.randn(1, 5, c.joint_attention_dim, generator=gen),
                  pooled_projections=torch.randn(1, c.pooled_projection_dim, generator=gen),
                  timestep=torch.tensor([0.5]), img_ids=img_ids, txt_ids=torch.zeros(5, 3),
                  guidance=torch.tensor([4.0]), return_dict=False)
    return hints, kwargs


def test_stage2_resume_reproduces_uninterrupted_losses(dataset, tmp_path):
    kw = dict(train__max_steps=6, train__gradient_accumulation_steps=2, train__lr_scheduler="cosine",
              train__lr_warmup_steps=2)
    full = train(config("appearance", dataset, tmp_path / "full", **kw))
    first = train(config("appearance", dataset, tmp_path / "cut", **kw), stop_after=2)
    assert first.stopped == "stop_after" and first.steps == 2 and first.checkpoint.name == "checkpoint-000002"
    rest = train(config("appearance", dataset, tmp_path / "cut", **kw))
    assert rest.resumed_from == 2 and rest.steps == 6
    assert rest.losses == full.losses  # exactly, step by step
    a = full.task.controlnet.state_dict()
    b = rest.task.controlnet.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_stage2_trained_weights_load_in_the_generator(stage2_run, weight_folders):
    """``pam generate``'s loader takes the trainer's controlnet.bin like PAM's released one."""
    from diffusion_refs import pam_style_conditions
    from pam_diffusion import DiffusionConfig
    from pam_diffusion.generator import PamVideoGenerator
    from pam_diffusion.tiny import TINY_TEXT_LEN

    cfg = DiffusionConfig.from_dict(dict(
        height=32, width=48, num_frames=9, device="cpu", dtype="float32", offload="none", vae_tiling=False,
        vae_slicing=False, local_files_only=True,
        stage2=dict(flux_path=weight_folders["flux_path"], controlnet_path=str(stage2_run.checkpoint / "controlnet.bin"),
                    steps=2, num_candidates=1, max_sequence_length=TINY_TEXT_LEN),
        stage3=dict(cogvideox_path=weight_folders["cogvideox_path"], transformer_path=weight_folders["transformer_path"],
                    steps=2, max_sequence_length=TINY_TEXT_LEN)))
    gen = PamVideoGenerator.from_config(cfg)
    trained = stage2_run.task.controlnet.nets[1].state_dict()
    loaded = gen.appearance.pipe.controlnet.nets[1].state_dict()
    assert all(torch.equal(trained[k], loaded[k]) for k in trained)
    result = gen.generate(pam_style_conditions(9, 32, 48), "red can", seed=0)
    assert result.frames.shape == (9, 32, 48, 3)


# --- Stage III ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stage3_run(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("s3")
    return train(config("motion", dataset, out / "run", train__max_steps=24, train__checkpoint_every=12,
                        train__validate_every=24, train__cache_dir=str(out / "cache")))


def test_stage3_loss_decreases_and_only_control_branch_changes(stage3_run):
    from pam_diffusion.tiny import tiny_components

    r = stage3_run
    print(f"stage III fixed-batch loss {r.fixed_loss_start:.4f} -> {r.fixed_loss_end:.4f} over 24 steps")
    assert r.steps == 24 and r.fixed_loss_end < 0.9 * r.fixed_loss_start, (r.fixed_loss_start, r.fixed_loss_end)
    fresh = tiny_components(32, 48, seed=0).stage3
    pipe = r.task.pipe
    for name in ("vae", "text_encoder"):
        assert state_bytes(pipe.components[name]) == state_bytes(fresh[name]), f"{name} changed"
    control = ("transformer_blocks_copy.", "combine_linears.", "initial_combine_linear.")
    now, start = state_bytes(pipe.transformer), state_bytes(fresh["transformer"])
    base_keys = [k for k in now if not k.startswith(control)]
    assert base_keys and all(now[k] == start[k] for k in base_keys), "a base weight changed"
    assert any(now[k] != start[k] for k in now if k.startswith("combine_linears."))
    assert any(now[k] != start[k] for k in now if k.startswith("transformer_blocks_copy."))
    assert sorted((r.output_dir / "validation").glob("step000024_*.mp4"))


def test_stage3_checkpoint_reloads_identically_sharded(stage3_run, tmp_path):
    from pam_diffusion.checkpoints import weight_files
    from pam_diffusion.control_transformer import load_pam_transformer
    from pam_diffusion.training.motion import save_stage3

    r = stage3_run
    model = r.task.transformer
    sharded = tmp_path / "sharded"
    save_stage3(model, sharded, max_shard_size="100KB")
    assert len(weight_files(sharded)) > 1 and (sharded / "diffusion_pytorch_model.safetensors.index.json").is_file()
    config = json.loads((sharded / "config.json").read_text())
    assert config["num_tracking_blocks"] == model.config.num_tracking_blocks
    gen = torch.Generator().manual_seed(0)
    c = model.config
    x = torch.randn(1, 3, c.in_channels, 4, 6, generator=gen)
    control = torch.randn(1, 5, 3, c.in_channels, 4, 6, generator=gen)
    text = torch.randn(1, c.max_text_seq_length, c.text_embed_dim, generator=gen)
    pipe = r.task.pipe
    rotary = pipe._prepare_rotary_positional_embeddings(32, 48, 3, torch.device("cpu"))
    trained = model.state_dict()
    outputs = []
    with torch.no_grad():
        want = model(x, text, torch.tensor([500]), control_latents=control, image_rotary_emb=rotary).sample
        for folder in (r.checkpoint / "transformer", sharded):
            loaded = load_pam_transformer(folder)
            state = loaded.state_dict()
            assert any(k.startswith("transformer_blocks_copy.") for k in state)
            assert "initial_combine_linear.weight" in state
            # every weight and buffer bit for bit
            assert state.keys() == trained.keys()
            assert all(torch.equal(state[k], trained[k]) for k in state)
            outputs.append(loaded(x, text, torch.tensor([500]), control_latents=control, image_rotary_emb=rotary).sample)
    # Both folders load the very same model. The in-memory trained model holds the same weights in
    # other memory (the optimiser's), where CPU matmul kernels may round differently (seen: 7e-7).
    assert torch.equal(outputs[0], outputs[1])
    torch.testing.assert_close(outputs[0], want, rtol=1e-5, atol=1e-5)


def test_stage3_trained_transformer_loads_in_the_generator(stage3_run, weight_folders):
    """``pam generate``'s loader takes the trainer's transformer folder like PAM's released one."""
    from diffusion_refs import pam_style_conditions
    from pam_diffusion import DiffusionConfig
    from pam_diffusion.generator import PamVideoGenerator
    from pam_diffusion.tiny import TINY_TEXT_LEN

    cfg = DiffusionConfig.from_dict(dict(
        height=32, width=48, num_frames=9, device="cpu", dtype="float32", offload="none", vae_tiling=False,
        vae_slicing=False, local_files_only=True,
        stage2=dict(flux_path=weight_folders["flux_path"], controlnet_path=weight_folders["controlnet_path"],
                    steps=2, num_candidates=1, max_sequence_length=TINY_TEXT_LEN),
        stage3=dict(cogvideox_path=weight_folders["cogvideox_path"],
                    transformer_path=str(stage3_run.checkpoint / "transformer"), steps=2,
                    max_sequence_length=TINY_TEXT_LEN)))
    gen = PamVideoGenerator.from_config(cfg)
    trained = stage3_run.task.transformer.state_dict()
    loaded = gen.motion.pipe.transformer.state_dict()
    assert set(trained) == set(loaded) and all(torch.equal(trained[k], loaded[k]) for k in trained)
    first = np.zeros((32, 48, 3), np.uint8)
    assert gen.generate(pam_style_conditions(9, 32, 48), "red can", seed=0, first_frame=first).frames.shape == \
        (9, 32, 48, 3)


def test_stage3_resume_reproduces_uninterrupted_losses(dataset, tmp_path):
    kw = dict(train__max_steps=5, train__batch_size=2, train__cache_dir=str(tmp_path / "cache"))
    full = train(config("motion", dataset, tmp_path / "full", **kw))
    cut = config("motion", dataset, tmp_path / "cut", **kw)
    assert train(cut, stop_after=3).steps == 3
    rest = train(cut)
    assert rest.resumed_from == 3 and rest.losses == full.losses


def test_latent_cache_equals_on_the_fly_encoding(stage3_run, monkeypatch):
    from safetensors.torch import load_file

    task = stage3_run.task
    files = sorted(task.cache_dir.glob("*.safetensors"))
    assert len(files) == len(task.train_set)
    for i in range(len(task.train_set)):
        cached = load_file(str(task.cache_file(task.train_set, i)))
        fresh = task.encode(task.train_set, i)
        assert set(cached) == {"video", "image", "hand", "hand_image", "depth", "depth_image", "seg", "seg_image"}
        assert cached["video"].shape[1] == 3  # 9 frames -> 1 + 8/4 latent frames
        assert cached["video"].shape[0] == 2 * task.pipe.vae.config.latent_channels  # mean | logvar
        assert all(torch.equal(cached[k], fresh[k]) for k in cached)


def test_latent_cache_is_keyed_by_the_vae(dataset, tmp_path):
    from pam_diffusion.training.motion import MotionTask
    from accelerate import Accelerator

    cache = tmp_path / "cache"
    cfg = config("motion", dataset, tmp_path / "a", train__cache_dir=str(cache))
    a = MotionTask(cfg, Accelerator(cpu=True))
    files = set(cache.glob("*.safetensors"))
    b = MotionTask(cfg.replace(train={"output_dir": str(tmp_path / "b")}), Accelerator(cpu=True))
    assert set(cache.glob("*.safetensors")) == files  # reused, not re-encoded
    other = MotionTask(cfg.replace(model={"tiny_seed": 3}), Accelerator(cpu=True))  # another VAE
    assert other.vae_id != a.vae_id and len(set(cache.glob("*.safetensors"))) == 2 * len(files)
    del b


# --- PAM's semantics --------------------------------------------------------------------------------------

def test_condition_drop_rate_matches_setting():
    from pam_diffusion.training.appearance import draw_drops
    from pam_diffusion.training.data import step_rng

    names = ("hand", "depth", "seg")
    counts = {n: 0 for n in names}
    both = 0
    draws = 0
    for step in range(2000):
        d = draw_drops(step_rng(0, 13, step, 0, 0), names, 0.2, 8)
        for n in names:
            counts[n] += int(d[n].sum())
        both += int((d["hand"] & d["depth"]).sum())
        draws += 8
    for n in names:
        assert abs(counts[n] / draws - 0.2) < 0.01, (n, counts[n] / draws)
    assert abs(both / draws - 0.04) < 0.006  # independent draws
    assert not any(draw_drops(step_rng(0, 1), names, 0.0, 100)[n].any() for n in names)
    # per-condition settings (PAM's Stage II: hand keypoints 0.05, normal never, the rest 0.2)
    from pam_diffusion.training import TrainConfig

    t = TrainConfig(output_dir="x", condition_drop=0.2, condition_drops={"hand": 0.05, "normal": 0.0})
    names = ("depth", "normal", "hand", "seg")
    counts = {n: 0 for n in names}
    for step in range(2000):
        d = draw_drops(step_rng(0, 11, step, 0, 0), names, t.drop_probability, 8)
        for n in names:
            counts[n] += int(d[n].sum())
    rates = {n: counts[n] / 16000 for n in names}
    assert abs(rates["depth"] - 0.2) < 0.01 and abs(rates["seg"] - 0.2) < 0.01, rates
    assert abs(rates["hand"] - 0.05) < 0.005 and rates["normal"] == 0.0, rates


def test_training_counts_drops_at_the_setting(dataset, tmp_path):
    """The drops the loss actually applied during a run, counted by the task."""
    r = train(config("appearance", dataset, tmp_path / "run", train__max_steps=3, train__batch_size=4,
                     train__condition_drop=0.5, train__prompt_drop=1.0))
    counts = r.task.drop_counts
    assert counts["draws"] == 12 and counts["prompt"] == 12
    assert 0 < sum(counts[c] for c in ("depth", "normal", "hand", "seg")) < 48


def test_clip_frames_follow_pam():
    from pam_diffusion.training.data import clip_indices

    assert clip_indices(72, 49) == list(range(49))  # DexYCB: the first 49 of 72
    assert clip_indices(100, 49) == list(range(0, 98, 2))
    assert clip_indices(9, 9) == list(range(9))


# --- bad input ---------------------------------------------------------------------------------------------

def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_dataset_without_video_is_refused_before_training(dataset, tmp_path):
    data = copy_dataset(dataset, tmp_path / "data")
    (data / "episode_000001" / "video.mp4").unlink()
    with pytest.raises(DatasetError, match=r"episode episode_000001: no video frames \(video\.mp4 is missing\)"):
        train(config("motion", data, tmp_path / "out"))
    assert not list((tmp_path / "out").glob("checkpoint-*"))


def test_mismatched_frame_counts_are_refused(dataset, tmp_path):
    from diffusion_refs import pam_style_conditions
    from training_data import write_video

    data = copy_dataset(dataset, tmp_path / "data")
    write_video(data / "episode_000002" / "seg.mp4", pam_style_conditions(5, 32, 48)["seg"])
    with pytest.raises(DatasetError, match=r"episode episode_000002: seg\.mp4 has 5 frames but video\.mp4 has 9"):
        train(config("appearance", data, tmp_path / "out"))


def test_resolution_the_model_cannot_take_is_refused(dataset, tmp_path):
    with pytest.raises(DatasetError, match=r"episode episode_000000: frames are 32x48 \(HxW\), expected 64x96"):
        train(config("motion", dataset, tmp_path / "out", data__height=64, data__width=96, data__resize=False))
    # a transformer whose learned positional embeddings fix another size
    from pam_diffusion.tiny import tiny_cogvideox_transformer

    folder = tmp_path / "init64"
    tiny_cogvideox_transformer(64, 96, zero_init=True).save_pretrained(folder)
    import pam_diffusion.training.motion as motion

    def no_loading(*args, **kwargs):
        raise AssertionError("weights were loaded before the size check")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(motion, "build_stage3_components", no_loading)
        with pytest.raises(DatasetError, match=r"positional embeddings take only 64x96 videos"):
            train(config("motion", dataset, tmp_path / "out2", model__init_from=str(folder),
                         model__num_control_blocks=1))


def test_too_few_frames_for_the_clip(dataset, tmp_path):
    with pytest.raises(DatasetError, match=r"episode episode_000000: 9 frames, expected at least data\.num_frames=13"):
        train(config("motion", dataset, tmp_path / "out", data__num_frames=13))


def test_init_from_a_mismatched_checkpoint_names_the_keys(dataset, tmp_path):
    from diffusion_refs import pam_checkpoint
    from pam_diffusion import CheckpointMismatchError
    from pam_diffusion.tiny import tiny_flux_transformer

    other = tiny_flux_transformer(seed=0)
    sd = pam_checkpoint(other)
    sd["controlnet1.txt_in.weight"] = torch.zeros(16, 24)  # a different text width
    torch.save(sd, tmp_path / "controlnet.bin")
    with pytest.raises(CheckpointMismatchError, match=r"txt_in\.weight \(16, 24\)"):
        train(config("appearance", dataset, tmp_path / "out", model__init_from=str(tmp_path / "controlnet.bin")))


def test_init_from_a_transformer_that_does_not_fit_names_the_keys(dataset, tmp_path):
    from pam_diffusion import CheckpointMismatchError
    from pam_diffusion.tiny import tiny_cogvideox_transformer

    folder = tmp_path / "init"
    tiny_cogvideox_transformer(32, 48, zero_init=True).save_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "text_embed_dim": 24}))  # weights say 32
    with pytest.raises(CheckpointMismatchError, match=r"shape mismatches .*patch_embed\.text_proj\.weight"):
        train(config_for_init(dataset, tmp_path, folder))
    assert not list((tmp_path / "out").glob("checkpoint-*"))


def config_for_init(dataset, tmp_path, folder):
    return config("motion", dataset, tmp_path / "out", model__init_from=str(folder), model__num_control_blocks=1)


def test_config_errors_name_the_key(dataset, tmp_path):
    from pam_diffusion.errors import ConfigError

    with pytest.raises(ConfigError, match=r"unknown config key 'train\.lerning_rate'"):
        config("motion", dataset, tmp_path, train__lerning_rate=1.0)
    with pytest.raises(TrainingConfigError, match=r"train\.condition_drop: expected a probability"):
        config("motion", dataset, tmp_path, train__condition_drop=1.5)
    with pytest.raises(TrainingConfigError, match=r"data\.num_frames: 8 is not of the form 4k\+1"):
        config("motion", dataset, tmp_path, data__num_frames=8)
    with pytest.raises(TrainingConfigError, match=r"is for stage 'motion', not 'appearance'"):
        load_trainer_config(CONFIGS["motion"], "appearance")


def test_8bit_adam_without_bitsandbytes_is_refused(dataset, tmp_path):
    import importlib.util

    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed here")
    with pytest.raises(TrainingConfigError, match=r"adamw8bit.*bitsandbytes"):
        train(config("appearance", dataset, tmp_path / "out", train__optimizer="adamw8bit"))


def test_wall_clock_limit_stops_with_a_checkpoint(dataset, tmp_path):
    r = train(config("appearance", dataset, tmp_path / "out", train__max_steps=50, train__max_wall_s=1e-9))
    assert r.stopped == "wall_clock" and r.steps == 1 and r.checkpoint.name == "checkpoint-000001"
    assert not list(tmp_path.glob("out/.tmp-*"))


def test_resume_never_refuses_an_existing_run(dataset, tmp_path):
    train(config("appearance", dataset, tmp_path / "out", train__max_steps=1))
    with pytest.raises(TrainingConfigError, match=r"already holds checkpoint-000001"):
        train(config("appearance", dataset, tmp_path / "out", train__max_steps=2, train__resume="never"))


def test_split_file_selects_episodes(dataset, tmp_path):
    from pam_diffusion.training import DataConfig
    from pam_diffusion.training.data import scan_dataset

    split = tmp_path / "s0_train.txt"
    split.write_text("episode_000000\nepisode_000002\n")
    train_set, val_set = scan_dataset(DataConfig(root=str(dataset), height=32, width=48, num_frames=9,
                                                 split_file=str(split), val_episodes=0), ("depth",), 9)
    assert [e.name for e in train_set.episodes] == ["episode_000000", "episode_000002"] and not len(val_set)
    split.write_text("episode_000009\n")
    with pytest.raises(DatasetError, match=r"names episode\(s\) not in .*: episode_000009"):
        scan_dataset(DataConfig(root=str(dataset), height=32, width=48, split_file=str(split)), ("depth",), 9)
