"""The generator end to end on tiny models: condition maps in PAM's style in, a video out; the wiring
of each condition into its net or slot; sampling schedule and seeds; bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from diffusion_refs import pam_style_conditions
from pam_diffusion import ConditionError, SLOTS
from pam_diffusion.appearance import control_hints, pam_noise, pam_schedule
from pam_diffusion.errors import ConfigError

PROMPT = "a hand grasps a red can"


def test_end_to_end_default_49_frames():
    """Default frame count, PAM-style maps written as the engine writes them, at a tiny size."""
    from pam_diffusion.tiny import tiny_generator

    gen = tiny_generator(height=32, width=48)
    assert gen.config.num_frames == 49
    conds = pam_style_conditions(49, 32, 48)
    result = gen.generate(conds, PROMPT, seed=11)
    assert result.frames.shape == (49, 32, 48, 3) and result.frames.dtype == np.uint8
    assert result.first_frame.shape == (32, 48, 3) and result.first_frame.dtype == np.uint8
    assert len(result.candidates) == len(result.candidate_scores) == 2 and result.candidate_seeds == [11, 12]
    assert result.chosen == int(np.argmax(result.candidate_scores))
    assert result.first_frame is result.candidates[result.chosen]
    assert result.frames.std() > 0 and not np.array_equal(result.frames[0], result.frames[-1])
    assert result.fps == 15
    assert {"stage2_s", "stage3_s", "stage2_step_s", "stage3_step_s", "total_s"} <= set(result.timings)


def test_same_seed_same_video_other_seed_other_video(small_generator):
    conds = pam_style_conditions(9, 32, 48)
    a = small_generator.generate(conds, PROMPT, seed=5)
    b = small_generator.generate(conds, PROMPT, seed=5)
    c = small_generator.generate(conds, PROMPT, seed=6)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.first_frame, b.first_frame)
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.shape == (9, 32, 48, 3)


def test_given_first_frame_skips_stage2(small_generator, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("Stage II ran")

    monkeypatch.setattr(small_generator.appearance, "candidates", boom)
    first = np.full((32, 48, 3), 128, np.uint8)
    result = small_generator.generate(pam_style_conditions(9, 32, 48), PROMPT, seed=1, first_frame=first)
    assert result.chosen == -1 and result.candidates == [] and result.first_frame is first
    assert result.frames.shape == (9, 32, 48, 3)


def test_stage2_feeds_depth_normal_to_net1_and_hand_seg_to_net2(small_generator):
    pipe = small_generator.appearance.pipe
    seen: dict[int, torch.Tensor] = {}
    repeat: list[bool] = []
    def keep_hint(i):
        def hook(module, args, kwargs):
            seen.setdefault(i, kwargs["controlnet_cond"].clone())
        return hook

    def keep_repeat(module, args, kwargs):
        repeat.append(kwargs["controlnet_blocks_repeat"])

    hooks = [net.register_forward_pre_hook(keep_hint(i), with_kwargs=True) for i, net in enumerate(pipe.controlnet.nets)]
    hooks.append(pipe.transformer.register_forward_pre_hook(keep_repeat, with_kwargs=True))
    conds = pam_style_conditions(9, 32, 48)
    conds["normal"] = np.full((9, 32, 48, 3), 200, np.uint8)
    frame0 = {k: conds.get(k, np.zeros((9, 32, 48, 3), np.uint8))[0] for k in SLOTS}
    try:
        small_generator.appearance.candidates(frame0, PROMPT, [0], 32, 48)
    finally:
        for h in hooks:
            h.remove()
    unit = lambda key: torch.from_numpy(frame0[key].astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
    torch.testing.assert_close(seen[0][0], torch.cat([unit("depth"), unit("normal")]))
    torch.testing.assert_close(seen[1][0], torch.cat([unit("hand"), unit("seg")]))
    assert repeat and all(repeat)


def test_stage3_slots_hold_their_conditions_and_unused_are_zero(small_generator):
    motion = small_generator.motion
    captured = []

    def keep(module, args, kwargs):
        captured.append(kwargs["control_latents"].clone())

    hook = motion.pipe.transformer.register_forward_pre_hook(keep, with_kwargs=True)
    conds = pam_style_conditions(9, 32, 48)
    videos = {s: conds[s] for s in motion.used_conditions}
    first = np.full((32, 48, 3), 90, np.uint8)
    try:
        motion.animate(first, videos, PROMPT, seed=3, num_frames=9, height=32, width=48)
    finally:
        hook.remove()
    control = captured[0]
    assert control.shape == (2, 5, 3, 8, 4, 6)  # CFG batch, slots, latent frames, 4 + 4 channels, 32/8 x 48/8
    assert torch.equal(control[0], control[1])  # same conditions for the unconditional branch
    gen = torch.Generator().manual_seed(3 + 1)  # the condition generator
    for s in SLOTS:
        slot = control[0, SLOTS.index(s)]
        if s in motion.used_conditions:
            video = torch.from_numpy(conds[s].astype(np.float32) / 127.5 - 1).permute(3, 0, 1, 2)[None]
            expected = motion.pipe.encode_condition_video(video, gen)[0]
            torch.testing.assert_close(slot[:, :4], expected)
            assert slot[0, 4:].abs().sum() > 0 and slot[1:, 4:].abs().sum() == 0  # first frame, zero padded
        else:
            assert slot.abs().sum() == 0, s


def test_custom_scorer_chooses_the_candidate(small_generator, monkeypatch):
    from pam_diffusion.generator import PamVideoGenerator

    brightest = PamVideoGenerator(small_generator.config, small_generator.appearance.pipe, small_generator.motion.pipe,
                                  scorer=lambda image, frame0: float(image.mean()))
    result = brightest.generate(pam_style_conditions(9, 32, 48), PROMPT, seed=2)
    means = [c.mean() for c in result.candidates]
    assert result.chosen == int(np.argmax(means)) and result.candidate_scores == pytest.approx(means)
    with pytest.raises(ConfigError, match="unknown scorer 'best'"):
        PamVideoGenerator(small_generator.config, None, small_generator.motion.pipe, scorer="best")


def test_default_scorer_prefers_the_hand_where_the_maps_put_it():
    from pam_diffusion.scoring import hand_edges

    conds = {k: v[0] for k, v in pam_style_conditions(1, 64, 96).items()}
    aligned = np.where((conds["seg"] == [92, 0, 255]).all(-1)[..., None], 220, 40).astype(np.uint8).repeat(3, -1)
    shifted = np.roll(aligned, 20, axis=1)
    noise = np.random.default_rng(0).integers(0, 255, aligned.shape, dtype=np.uint8)
    scores = [hand_edges(img, conds) for img in (aligned, shifted, noise)]
    assert scores[0] > scores[1] and scores[0] > scores[2]


def test_pam_schedule_and_noise_match_xflux():
    """x-flux's get_schedule/get_noise (PAM's Stage II sampler) reproduced by our scheduler setup."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    from pam_diffusion.fullsize import FLUX_DEV_SCHEDULER

    for steps, h, w in ((28, 480, 720), (28, 480, 640), (2, 32, 48)):
        sigmas, shift = pam_schedule(steps, h, w)
        sched = FlowMatchEulerDiscreteScheduler.from_config(FLUX_DEV_SCHEDULER, use_dynamic_shifting=False, shift=shift)
        sched.set_timesteps(sigmas=list(sigmas))
        t = torch.linspace(1, 0, steps + 1)
        mu = 0.5 + (1.15 - 0.5) / (4096 - 256) * ((w // 8) * (h // 8) // 256 - 256)
        ref = math.exp(mu) / (math.exp(mu) + (1 / t - 1) ** 1.0)
        torch.testing.assert_close(sched.sigmas, ref.float(), rtol=1e-5, atol=1e-6)
    x = torch.randn(1, 16, 2 * math.ceil(32 / 16), 2 * math.ceil(48 / 16), generator=torch.Generator().manual_seed(9))
    ref = x.reshape(1, 16, 2, 2, 3, 2).permute(0, 2, 4, 1, 3, 5).reshape(1, 6, 64)  # "b c (h ph) (w pw) -> b (h w) (c ph pw)"
    assert torch.equal(pam_noise(9, 16, 32, 48, "cpu"), ref)


def test_stage2_runs_with_pams_schedule(small_generator):
    app = small_generator.appearance
    frame0 = {k: np.zeros((32, 48, 3), np.uint8) for k in SLOTS}
    app.candidates(frame0, PROMPT, [0], 32, 48)
    sigmas, shift = pam_schedule(app.steps, 32, 48)
    expected = shift * sigmas / (1 + (shift - 1) * sigmas)
    torch.testing.assert_close(app.pipe.scheduler.sigmas[:-1], torch.tensor(expected, dtype=torch.float32))
    assert len(app.step_times) == app.steps


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(depth=c["depth"][:, :16]), r"'depth'.*16x48.*expected 32x48"),
    (lambda c: c.update(seg=c["seg"][:5]), r"'seg'.*5 frames, expected 9"),
    (lambda c: c.update(hand=c["hand"][:8]), r"'hand'.*8 frames is not of the form 4k\+1"),
    (lambda c: c.update(depth=c["depth"].astype(np.float32)), r"'depth'.*uint8"),
    (lambda c: c.update(depth=c["depth"][..., 0]), r"'depth'.*shape \(T, H, W, 3\)"),
    (lambda c: c.update(flow=c["depth"]), r"unknown key 'flow'"),
])
def test_bad_conditions_fail_before_any_model_runs(small_generator, monkeypatch, change, message):
    def boom(*args, **kwargs):
        raise AssertionError("a model ran")

    monkeypatch.setattr(small_generator.appearance, "candidates", boom)
    monkeypatch.setattr(small_generator.motion, "animate", boom)
    conds = pam_style_conditions(9, 32, 48)
    change(conds)
    with pytest.raises(ConditionError, match=message):
        small_generator.generate(conds, PROMPT)


def test_bad_first_frame_and_geometry_are_named(small_generator):
    with pytest.raises(ConditionError, match=r"first_frame: expected uint8 \(32, 48, 3\)"):
        small_generator.generate({}, PROMPT, first_frame=np.zeros((32, 40, 3), np.uint8))
    from pam_diffusion.tiny import tiny_config

    with pytest.raises(ConfigError, match=r"frame count 10 is not of the form 4k\+1"):
        tiny_config(num_frames=10)
    with pytest.raises(ConfigError, match=r"width 40 is not a positive multiple of 16"):
        tiny_config(width=40)


def test_video_size_must_match_learned_positional_embeddings(small_generator):
    from pam_diffusion.generator import PamVideoGenerator
    from pam_diffusion.tiny import tiny_config

    stage3 = small_generator.motion.pipe
    with pytest.raises(ConfigError, match=r"64x96: .* only generates 32x48 videos"):
        PamVideoGenerator(tiny_config(height=64, width=96), None, stage3)
    with pytest.raises(ConfigError, match=r"stage3\.max_sequence_length 20: .* needs 16 text tokens"):
        PamVideoGenerator(tiny_config(height=32, width=48, stage3=dict(max_sequence_length=20)), None, stage3)


def test_missing_conditions_are_black(small_generator):
    """Stage II sees black maps where a condition is missing."""
    frame0 = {k: np.zeros((32, 48, 3), np.uint8) for k in SLOTS}
    hints = control_hints(frame0)
    assert all(h.shape == (1, 6, 32, 48) and torch.all(h == -1) for h in hints)
    result = small_generator.generate({}, PROMPT, seed=0, first_frame=np.zeros((32, 48, 3), np.uint8))
    assert result.frames.shape == (9, 32, 48, 3)


def test_memory_options_on_cpu(small_generator):
    from pam_diffusion.generator import apply_memory_options
    from pam_diffusion.tiny import tiny_config

    pipe = small_generator.motion.pipe
    cfg = tiny_config(height=32, width=48, num_frames=9, vae_tiling=True, vae_slicing=True, offload="model")
    try:
        apply_memory_options(pipe, cfg, "cpu", cfg.stage3_offload)  # offload needs an accelerator: stays on CPU
        assert pipe.vae.use_tiling and pipe.vae.use_slicing and pipe._execution_device.type == "cpu"
    finally:
        pipe.vae.disable_tiling()
        pipe.vae.disable_slicing()


def test_stage2_size_unstretches_the_maps_and_stretches_the_first_frame_back():
    """PAM's Stage II saw unstretched 640x480 frames: with ``stage2.size`` the first-frame maps are
    taken back to that size (nearest maps exactly: PAM enlarged them nearest, i -> floor(i w / W))
    and the chosen frame is stretched to the video size."""
    from pam_diffusion.conditions import resize_map, stage2_maps
    from pam_diffusion.tiny import tiny_generator

    canvas = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    stretched = canvas[:, (np.arange(720) * 640) // 720]  # PAM's nearest resize to 720x480
    np.testing.assert_array_equal(resize_map(stretched, 640, 480, nearest=True), canvas)
    maps = stage2_maps({"seg": stretched, "depth": stretched}, 640, 480)
    np.testing.assert_array_equal(maps["seg"], canvas)
    assert maps["depth"].shape == (480, 640, 3)

    gen = tiny_generator(height=32, width=48, num_frames=9, stage2=dict(size=[32, 32]))
    hints = []
    gen.appearance.pipe.controlnet.nets[1].register_forward_pre_hook(
        lambda module, args, kwargs: hints.append(kwargs["controlnet_cond"]), with_kwargs=True)
    result = gen.generate(pam_style_conditions(9, 32, 48), PROMPT, seed=2)
    assert all(c.shape == (32, 32, 3) for c in result.candidates)
    assert result.first_frame.shape == (32, 48, 3) and result.frames.shape == (9, 32, 48, 3)
    assert hints and all(tuple(h.shape[-2:]) == (32, 32) for h in hints)  # the hand|seg hint at stage2.size
    # a first-frame map given for Stage II replaces the one taken from the videos
    hints.clear()
    given = np.full((32, 32, 3), 200, np.uint8)
    gen.generate(pam_style_conditions(9, 32, 48), PROMPT, seed=2, stage2_conditions={"hand": given})
    torch.testing.assert_close(hints[0][0, :3], torch.full((3, 32, 32), 200 / 127.5 - 1))
    with pytest.raises(ConditionError, match="32x32"):
        gen.generate(pam_style_conditions(9, 32, 48), PROMPT, stage2_conditions={"hand": np.zeros((32, 48, 3), np.uint8)})
    with pytest.raises(ConfigError, match=r"stage2.size: expected null or \[width, height\]"):
        tiny_generator(height=32, width=48, num_frames=9, stage2=dict(size=[30, 32]))
