"""Stage I on Isaac Lab: a batch of the pipeline's episodes in N parallel envs, captured from the
Isaac camera (needs ``isaaclab``).

Each episode is set up exactly as the embedded Stage I sets it up (:func:`pose.stage.prepare_stage1`:
placement, settling, grasp synthesis, h0, the plan, on the MuJoCo scene, from the request's seed),
its state at step 0 is written into Isaac env ``k``, and the scripted controller plays every
env's plan in lockstep on Isaac Lab's physics. At the capture rate each env's articulation state
is recorded (wrist pose and joint angles, object pose, contacts) and its camera read: metric depth
along the optical axis, instance ids mapped to DexYCB ids through the semantic labels, the
colour image, K and world->camera from the camera's data. ``pose_m`` and the keypoints come from
the recorded state through the engine's hand model; the engine's success rule judges the end. A
diverging env ends its episode early as failed (as the embedded rollout does); the others go on.

The pipeline (:class:`pam_engine.pipeline.Generator`) then turns each result into an episode as
it does for the embedded backend. Nothing here imports the pipeline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
from tqdm import tqdm

from pam_engine.capture.camera import Camera
from pam_engine.capture.frames import CaptureSequence
from pam_engine.conventions import SEG_HAND
from pam_engine.errors import ConfigError
from pam_engine.isaaclab.checks import check_device, check_num_envs, check_physics
from pam_engine.pose.request import Stage1Config, Stage1Request
from pam_engine.trajectory import CONTACT_PARTS, Trajectory

#: The controller Isaac Lab episodes are played with (the plan, open loop).
POLICY = "scripted-1"


@dataclass
class IsaacEpisodeInput:
    """One episode of a batch: the Stage I request, the h0 sampler (``pose.setup.StartSampler``)
    and ``camera_for(target_point) -> Camera`` (the episode's engine camera around a point)."""

    request: Stage1Request
    start_sampler: Callable | None = None
    camera_for: Callable[[np.ndarray], Camera] | None = None  # None: a task without camera


@dataclass
class IsaacEpisodeResult:
    trajectory: Trajectory
    camera: Camera | None  # None when the episode never started (no grasp found) or without camera
    capture: CaptureSequence | None
    timings: dict = field(default_factory=dict)
    started: bool = True  # False: no grasp was found, the trajectory is the failed one of pose.stage


class IsaacStage1:
    """A camera-equipped Isaac Lab task for one object (Newton steps identical worlds only) that
    runs batches of up to ``num_envs`` Stage I episodes. Close it (``close``) before building the
    next one: Isaac Lab holds one simulation per process."""

    def __init__(self, stage1: Stage1Config, object_name: str, width: int | None = None, height: int | None = None,
                 num_envs: int = 4, device: str = "cpu", physics: str = "newton", asset_dir: str | None = None):
        """``width``/``height`` None: no camera (trajectories only, ``pam simulate``)."""
        from pam_engine.isaaclab.task import PamGraspEnv, make_env_cfg
        from pam_engine.rl.env import EnvConfig

        check_num_envs(num_envs)
        check_device(device)
        self.physics = check_physics(physics)
        self.stage1 = stage1
        self.object_name = str(object_name)
        engine = replace(EnvConfig(), stage1=stage1)
        cfg = make_env_cfg([self.object_name], num_envs=num_envs, device=device, physics=physics, engine=engine,
                           camera=None if width is None else (width, height), asset_dir=asset_dir, camera_rgb=True,
                           episode_source=False)
        self.env = PamGraspEnv(cfg)
        self.num_envs = num_envs
        self.width, self.height = width, height

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
            self.env = None

    def run(self, episodes: list[IsaacEpisodeInput], progress: bool = False) -> list[IsaacEpisodeResult]:
        """Stage I and the capture of up to ``num_envs`` episodes, one env each."""
        import torch

        from pam_engine.isaaclab.capture import pose_cameras, read_frames
        from pam_engine.pose.stage import prepare_stage1
        from pam_engine.pose.success import engine_rule

        if not 1 <= len(episodes) <= self.num_envs:
            raise ConfigError(f"an Isaac Lab batch holds 1..{self.num_envs} episodes (num_envs), got {len(episodes)}")
        for ep in episodes:
            names = [str(o.name) for o in ep.request.objects]
            if names != [self.object_name]:
                raise ConfigError(f"Isaac Lab task for {self.object_name!r} got an episode with objects {names} "
                                  "(one object per task, no distractors)")
        env, cfg = self.env, self.stage1
        results: list[IsaacEpisodeResult | None] = [None] * len(episodes)
        active, scenes, plans, cameras, timings = [], [], [], [], []
        for k, ep in enumerate(episodes):
            t0 = time.perf_counter()
            prepared = prepare_stage1(ep.request, cfg, POLICY, ep.start_sampler)
            prepared.timings["setup"] = time.perf_counter() - t0
            if prepared.failed is not None:
                results[k] = IsaacEpisodeResult(prepared.failed, None, None, prepared.timings, started=False)
                continue
            scene = prepared.scene
            scene.sync()
            camera = None
            if env.camera is not None:
                if ep.camera_for is None:
                    raise ConfigError("an Isaac Lab task with a camera needs each episode's camera_for")
                camera = ep.camera_for(scene.object_poses()[0][:3, 3])  # the pipeline's camera target
            if camera is not None and (camera.width, camera.height) != (self.width, self.height):
                raise ConfigError(f"episode camera {camera.width}x{camera.height}: the Isaac camera renders "
                                  f"{self.width}x{self.height}")
            active.append(k)
            scenes.append(scene)
            plans.append(prepared.setup.plan)
            cameras.append(camera)
            timings.append(prepared.timings)
        if not active:
            return results  # type: ignore[return-value]
        t0 = time.perf_counter()
        n_act = len(active)
        # idle envs (a short last batch) replay the first episode; their results are dropped
        fill = [j % n_act for j in range(self.num_envs)]
        env.write_scene_states(list(range(self.num_envs)), [scenes[j] for j in fill])
        from pam_engine.rl.features import SurfaceCloud

        surface = SurfaceCloud.of(scenes[0].objects[0].asset, env.surface.shape[1]).points  # the contact probes' object
        env.surface[:] = torch.as_tensor(surface, dtype=env.surface.dtype, device=env.device)
        if env.camera is not None:
            pose_cameras(env, [cameras[j] for j in fill])
        env.sim.forward()
        env.scene.update(dt=0.0)

        per_frame = cfg.scene.control_per_frame
        num_steps = cfg.num_steps
        if any(p.num_steps != num_steps for p in plans):
            raise ConfigError(f"plans of {[p.num_steps for p in plans]} steps; expected {num_steps}")
        n_frames, n_dof = cfg.num_frames, env.n_dof
        wrist = np.zeros((n_act, n_frames, 4, 4))
        angles = np.zeros((n_act, n_frames, n_dof))
        objects = np.zeros((n_act, n_frames, 1, 3, 4))
        contacts = np.zeros((n_act, n_frames, len(CONTACT_PARTS)), dtype=bool)
        seqs = [CaptureSequence.allocate(n_frames, self.height, self.width) if env.camera is not None else None
                for _ in range(n_act)]
        recorded = np.zeros(n_act, dtype=int)
        alive = np.ones(n_act, dtype=bool)
        failure = [""] * n_act
        frame_cameras: list[Camera | None] = [None] * n_act
        plan_q = torch.as_tensor(np.stack([np.concatenate([plans[j].wrist_q, plans[j].fingers], 1) for j in fill]),
                                 dtype=torch.float32, device=env.device)  # (num_envs, steps, 6 + n_dof)
        bar = tqdm(total=n_frames, desc="isaac frames", disable=not progress, leave=False)
        for step in range(num_steps):
            if step % per_frame == 0:
                frame = step // per_frame
                self._record(frame, alive, wrist, angles, objects, contacts, seqs, frame_cameras, cameras,
                             read_frames)
                recorded[alive] = frame + 1
                bar.update(1)
                if step == num_steps - 1:
                    break
            env.set_joint_targets(plan_q[:, step])
            env.physics_control_step()
            diverged = env.diverged().cpu().numpy()[:n_act]
            for j in np.flatnonzero(diverged & alive):
                alive[j] = False
                failure[j] = f"simulation diverged at t={(step + 1) * cfg.scene.control_dt:.3f} s (step {step}, Isaac Lab)"
        bar.close()
        rollout_s = (time.perf_counter() - t0) / n_act

        from pam_engine.hand.pose import pose_m_and_keypoints

        hand, articulation = env.hand_model, env.articulation
        betas = None if cfg.betas is None else np.asarray(cfg.betas, float)
        for j, k in enumerate(active):
            n = int(recorded[j])
            sl = slice(0, n)
            if not failure[j]:
                rise = objects[j, n - 1, 0, 2, 3] - objects[j, 0, 0, 2, 3]
                failure[j] = engine_rule(rise, contacts[j, n - 1], cfg.success_height)
            pose_m, keypoints = pose_m_and_keypoints(hand, articulation, wrist[j, sl], angles[j, sl], betas)
            scene = scenes[j]
            traj = Trajectory(
                fps=cfg.scene.fps, pose_m=pose_m, betas=np.zeros(10) if betas is None else betas,
                wrist_pose=wrist[j, sl], joint_angles=angles[j, sl], joint_names=list(articulation.names),
                joint_3d=keypoints, pose_y=objects[j, sl], object_names=[p.asset.name for p in scene.objects],
                object_ids=[int(p.asset.seg_id) for p in scene.objects], contacts=contacts[j, sl],
                success=not failure[j], failure_reason=failure[j], target_object=0, hand_model=hand.name,
                policy=POLICY, seed=int(episodes[k].request.seed))
            seq = seqs[j]
            if seq is not None:
                seq = CaptureSequence(seq.rgb[sl], seq.depth[sl], seq.seg[sl], seq.hand_mesh[sl])
            timings[j]["rollout"] = rollout_s
            results[k] = IsaacEpisodeResult(traj, frame_cameras[j], seq, timings[j])
        return results  # type: ignore[return-value]

    def _record(self, frame, alive, wrist, angles, objects, contacts, seqs, frame_cameras, cameras, read_frames):
        env = self.env
        n_act = len(alive)
        w = env.wrist_pose().cpu().numpy()
        q = env.finger_angles().cpu().numpy()
        obj = env.object_pose().cpu().numpy()
        parts = env.contacts()[0].cpu().numpy()
        images = read_frames(env, [self.object_name]) if env.camera is not None else None
        for j in range(n_act):
            if not alive[j]:
                continue
            wrist[j, frame] = w[j]
            angles[j, frame] = q[j]
            objects[j, frame, 0] = obj[j, :3]
            contacts[j, frame] = parts[j]
            if images is None:
                continue
            img = images[j]
            if frame_cameras[j] is None:  # K and world->camera from the camera's data
                K = np.array([[img.K[0, 0], 0.0, img.K[0, 2]], [0.0, img.K[1, 1], img.K[1, 2]], [0.0, 0.0, 1.0]])
                frame_cameras[j] = Camera(K, img.world_to_cam, self.width, self.height, canvas=cameras[j].canvas)
            seq = seqs[j]
            seq.depth[frame] = img.depth
            seq.seg[frame] = img.seg
            if img.rgb is not None:
                seq.rgb[frame] = img.rgb
            seq.hand_mesh[frame] = np.where((img.seg == SEG_HAND)[..., None], seq.rgb[frame], 0)
