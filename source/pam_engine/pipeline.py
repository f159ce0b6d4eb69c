"""The pipeline: N domain-randomised episodes, each Stage I (pose) -> capture -> (Stage II
appearance -> Stage III motion when weights are configured) -> an episode folder. ``pam
generate`` runs it in this process and the Ray workers of :mod:`pam_engine.distributed` run the
same :class:`Generator`.

Episode i draws everything from ``np.random.default_rng([seed, i])``, so a batch is
reproducible and a killed batch resumes where it stopped: finished episodes and recorded
failures are skipped. Several runs may share the folder: each claims an episode before making it
(``dataset.claims``), and only a provably dead run's claims and temporary folders are removed.
"""

from __future__ import annotations

import copy
import json
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from pam_engine.capture.camera import CameraRange, check_resolution, preset_canvas, sample_camera
from pam_engine.capture.style import MapStyle
from pam_engine.config import derive, from_dict, has_key, to_dict
from pam_engine.distributed import RayConfig, run_on_ray
from pam_engine.errors import ConfigError, OutputError, PamError
from pam_engine.pose.request import ObjectSpec, Stage1Config, Stage1Request
from pam_engine.pose.stage import run_stage1
from pam_engine.qa.config import QaConfig
from pam_diffusion.config import DiffusionConfig

DATASET_CONFIG_FILE = "dataset.json"


def _dexycb_names() -> list[str]:
    from pam_engine.conventions import YCB_CLASSES

    return list(YCB_CLASSES.values())


@dataclass(frozen=True)
class PromptConfig:
    """Prompt template; ``{object}``, ``{surface}`` and ``{lighting}`` are filled per episode."""

    template: str = "A realistic first-person video of a right hand grasping {object} on {surface} and lifting it, {lighting}."
    surfaces: list[str] = field(default_factory=lambda: [
        "a wooden table", "a white desk", "a kitchen counter", "a grey tabletop", "a dark wooden workbench"])
    lightings: list[str] = field(default_factory=lambda: [
        "soft daylight", "warm indoor light", "bright studio lighting", "natural window light"])


@dataclass(frozen=True)
class RandomizationConfig:
    """What varies between episodes."""

    objects: list[str] = field(default_factory=_dexycb_names)  # pool for the grasped object
    distractors: int = 0  # further objects from the pool standing on the table
    placement_radius: float = 0.08  # m: where objects may stand around the table centre
    camera: CameraRange = field(default_factory=CameraRange)
    start_distance: tuple[float, float] = (0.15, 0.28)  # m back along the approach for h0
    start_lift: tuple[float, float] = (0.04, 0.14)  # m above the grasp for h0
    start_rotation: float = 0.25  # rad, std of a random rotation of h0
    preview: bool = True  # random lighting, colours and textures of the sim preview


#: Stage I backends: the embedded MuJoCo scene, or Isaac Lab (kit-less Newton, or PhysX in Isaac Sim).
BACKENDS = ("mujoco", "isaaclab")


@dataclass(frozen=True)
class IsaacLabConfig:
    """Stage I on Isaac Lab (``backend: isaaclab``; docs/isaaclab.md). ``physics`` changes the
    data (part of the dataset's identity); ``num_envs`` and ``device`` only how fast it is made."""

    num_envs: int = 4  # parallel envs: episodes of one object run in batches of this size
    device: str = "cpu"  # cpu, cuda or cuda:N
    physics: str = "newton"  # newton (kit-less) or physx (Isaac Sim)

    def check(self) -> None:
        from pam_engine.isaaclab.checks import check_device, check_num_envs, check_physics

        for key, fn in (("num_envs", check_num_envs), ("physics", check_physics), ("device", check_device)):
            try:
                fn(getattr(self, key))
            except ConfigError as exc:
                raise ConfigError(f"config key 'isaaclab.{key}': {exc}") from None


@dataclass(frozen=True)
class WorldModelsConfig:
    """Outputs for the world models next to PAM (docs/worldmodels.md); neither is a condition map."""

    actions: bool = True  # HandWorld's 138-D per-frame action: actions.npy + actions_mask.npy
    static_video: bool = True  # DWM's static-scene video (objects at their initial poses, no hand): static.mp4


@dataclass(frozen=True)
class GenerateConfig:
    """Everything ``pam generate`` needs (YAML + ``key=value`` overrides)."""

    episodes: int = 4
    seed: int = 0
    width: int = 720
    height: int = 480
    keep_failed: bool = False  # also write episodes whose grasp failed (meta success=false)
    #: trained grasp policy checkpoint (`pam train-policy`); None: the scripted controller
    policy: str | None = None
    stage1: Stage1Config = field(default_factory=Stage1Config)
    randomization: RandomizationConfig = field(default_factory=RandomizationConfig)
    #: How condition maps are drawn; the defaults are PAM's (inferno depth, PAM's limb order).
    maps: MapStyle = field(default_factory=MapStyle)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    #: Stages II and III (weights, steps, offloading); skipped while its weight paths are unset.
    #: Its frame count and size follow ``stage1.num_frames``, ``width`` and ``height``.
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    #: Where episodes run (this process, a local Ray, or a Ray cluster); not part of the
    #: dataset's identity: a batch may resume with another number of workers.
    ray: RayConfig = field(default_factory=RayConfig)
    #: HandWorld's actions and DWM's static-scene video in every episode (docs/worldmodels.md)
    world_models: WorldModelsConfig = field(default_factory=WorldModelsConfig)
    #: Label-consistency check of each written episode (docs/qa.md); off while
    #: ``qa.max_keypoint_error`` is unset. Episodes that fail are kept and marked rejected.
    qa: QaConfig = field(default_factory=QaConfig)
    #: Where Stage I runs: "mujoco" (embedded) or "isaaclab" (N parallel Isaac Lab envs, captured
    #: from the Isaac camera; settings in ``isaaclab``). Part of the dataset's identity.
    backend: str = "mujoco"
    isaaclab: IsaacLabConfig = field(default_factory=IsaacLabConfig)

    def check(self) -> None:
        """Validate (nothing is changed: derived values come from :meth:`resolve`): every value in
        range, the prompt template renders; ConfigError naming the key, before anything is written
        (objects and the output folder are checked by ``Generator``)."""
        from pam_engine.pose.request import check_numbers, check_stage1

        check_resolution(self.width, self.height)
        check_stage1(self.stage1)
        if self.diffusion.is_configured() and (self.stage1.num_frames - 1) % 4:
            raise ConfigError(f"config key 'stage1.num_frames': the video stage needs 4k+1 frames, got {self.stage1.num_frames}")
        if self.episodes < 1:
            raise ConfigError(f"config key 'episodes': expected at least 1, got {self.episodes}")
        if self.seed < 0:
            raise ConfigError(f"config key 'seed': expected an integer >= 0, got {self.seed}")
        r = self.randomization
        check_numbers(r, "randomization")
        if not r.objects:
            raise ConfigError("config key 'randomization.objects': expected at least one object")
        if r.distractors < 0:
            raise ConfigError(f"config key 'randomization.distractors': expected >= 0, got {r.distractors}")
        for key in ("start_distance", "start_lift"):
            lo, hi = getattr(r, key)
            if not 0 <= lo <= hi:
                raise ConfigError(f"config key 'randomization.{key}': expected (low, high) with 0 <= low <= high, "
                                  f"got {[lo, hi]}")
        for key in ("placement_radius", "start_rotation"):
            if getattr(r, key) < 0:
                raise ConfigError(f"config key 'randomization.{key}': expected >= 0, got {getattr(r, key)}")
        check_prompt_template(self.prompt.template)
        self.ray.check()
        self.qa.check()
        if self.backend not in BACKENDS:
            raise ConfigError(f"config key 'backend': unknown backend {self.backend!r}; expected one of "
                              f"{', '.join(BACKENDS)}")
        if self.backend == "isaaclab":
            self.isaaclab.check()
            if r.distractors:
                raise ConfigError(f"config key 'randomization.distractors' = {r.distractors}: the isaaclab backend "
                                  "spawns the grasped object alone (one object per task); set it to 0")
            if self.policy:
                raise ConfigError(f"config key 'policy' = {self.policy!r}: the isaaclab backend's Stage I plays the "
                                  "scripted plan (learned policies run there through standalone/play.py); unset it")
            if self.ray.enabled:
                raise ConfigError("config key 'ray': the isaaclab backend runs its envs in this process "
                                  "(set isaaclab.num_envs instead of Ray workers)")

    def resolve(self, given: dict | None = None) -> "GenerateConfig":
        """The validated config with its derived values filled in, as a new object: the video's
        frame count, size and fps follow the capture's, the camera's size the output's, Stage I's
        placement radius the randomization's. A value the user set (a key of ``given``, their raw
        mapping; without it, a value other than the default) that disagrees is an error naming
        both keys. Resolving a resolved config changes nothing."""
        self.check()
        if self.stage1.synthesis.seed != 0 and (given is None or has_key(given, "stage1.synthesis.seed")):
            raise ConfigError(f"config key 'stage1.synthesis.seed' = {self.stage1.synthesis.seed!r} conflicts with the "
                              "per-episode synthesis seed (each episode synthesizes with its own seed); leave it unset")
        derived = {
            "diffusion.num_frames": (self.stage1.num_frames, "'stage1.num_frames'"),
            "diffusion.height": (self.height, "'height'"),
            "diffusion.width": (self.width, "'width'"),
            "diffusion.fps": (int(self.stage1.scene.fps), "'stage1.scene.fps'"),
            "randomization.camera.width": (self.width, "'width'"),
            "randomization.camera.height": (self.height, "'height'"),
            "stage1.placement_radius": (self.randomization.placement_radius, "'randomization.placement_radius'"),
        }
        if self.backend == "isaaclab" and self.isaaclab.physics == "newton":
            # Newton's Warp renderer shares one ray field (one K) across its envs
            derived["randomization.camera.focal_jitter"] = (0.0, "'backend' = 'isaaclab' with the newton physics "
                                                                 "preset (one camera K for all envs)")
        # PAM's Stage II saw unstretched 640x480 frames: under the "pam" preset it paints on the
        # canvas, unless the user chose its size
        canvas = preset_canvas(self.randomization.camera.preset, self.width, self.height)
        user_size = (has_key(given, "diffusion.stage2.size") if given is not None
                     else self.diffusion.stage2.size is not None)
        if not user_size and canvas != (self.width, self.height) and not (canvas[0] % 16 or canvas[1] % 16):
            derived["diffusion.stage2.size"] = (canvas, "the 'pam' camera preset's canvas")
        return derive(self, derived, given)


PROMPT_FIELDS = ("object", "surface", "lighting")


def check_prompt_template(template: str) -> None:
    """The template may use only ``{object}``, ``{surface}`` and ``{lighting}`` (no attribute or
    index look-ups: a template is data), and must render."""
    import string

    key = "config key 'prompt.template'"
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc} in {template!r} (write literal braces as {{{{ and }}}})") from exc
    for name in fields:
        if name not in PROMPT_FIELDS:
            raise ConfigError(f"{key}: unknown field {{{name}}} in {template!r}; expected only "
                              + ", ".join("{" + f + "}" for f in PROMPT_FIELDS))
    try:
        template.format(object="an object", surface="a table", lighting="daylight")
    except (ValueError, KeyError, IndexError) as exc:
        raise ConfigError(f"{key}: does not render ({type(exc).__name__}: {exc})") from exc


@dataclass
class EpisodePlan:
    """The random draws of one episode."""

    index: int
    seed: int
    objects: list[ObjectSpec]
    prompt: str


@dataclass
class GenerateSummary:
    written: int = 0
    grasped: int = 0  # episodes whose grasp succeeded
    failed: int = 0
    skipped: int = 0
    busy: int = 0  # held by another live run (it makes them)
    attempted: int = 0
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    diffusion_skipped: bool = True
    qa: dict | None = None  # the dataset's qa_summary.json after the run (QA enabled): its ``rejected`` list

    @property
    def success_rate(self) -> float:
        return self.grasped / self.attempted if self.attempted else 0.0

    def report(self) -> str:
        lines = [f"episodes written: {self.written}, failed: {self.failed}, skipped (already done): {self.skipped}"
                 + (f", left to another run making them: {self.busy}" if self.busy else ""),
                 f"grasp success rate: {100 * self.success_rate:.0f}% of {self.attempted} attempted"]
        if self.qa is not None:
            rejected = self.qa.get("rejected") or []
            lines.append(f"QA: {self.qa.get('passed', 0)} of {self.qa.get('checked', 0)} episode(s) passed; "
                         f"{len(rejected)} rejected (kept, never counted as good data; listed in qa_summary.json)"
                         + (f": {', '.join(rejected[:10])}" if rejected else ""))
        if self.attempted:
            per = ", ".join(f"{k} {v / self.attempted:.2f} s" for k, v in self.stage_seconds.items())
            lines.append(f"time per episode: {per}")
        return "\n".join(lines)


def readable_name(name: str) -> str:
    """'006_mustard_bottle' -> 'a mustard bottle'; a mesh file by its file name only
    ('/home/me/scans/red_cup.obj' -> 'a red cup')."""
    if "/" in name or "\\" in name or Path(name).suffix:
        name = Path(name.replace("\\", "/")).stem.replace("-", "_")
    words = name.split("_")

    if words and words[0].isdigit():
        words = words[1:]
    text = " ".join(words) or name
    return ("an " if text[:1] in "aeiou" else "a ") + text


def plan_episode(cfg: GenerateConfig, index: int) -> EpisodePlan:
    rng = np.random.default_rng([cfg.seed, index])
    pool = cfg.randomization.objects
    chosen = [pool[int(rng.integers(len(pool)))]]
    others = [o for o in pool if o != chosen[0]]
    for _ in range(min(cfg.randomization.distractors, len(others))):
        chosen.append(others.pop(int(rng.integers(len(others)))))
    p = cfg.prompt
    prompt = p.template.format(object=readable_name(str(chosen[0])),
                               surface=p.surfaces[int(rng.integers(len(p.surfaces)))] if p.surfaces else "a table",
                               lighting=p.lightings[int(rng.integers(len(p.lightings)))] if p.lightings else "")
    return EpisodePlan(index, int(rng.integers(2**31 - 1)), [ObjectSpec(o) for o in chosen], prompt)


#: Settings that change how a batch runs, never what it produces: a resumed batch may change
#: them (the dataset's identity, :func:`dataset_identity`, leaves them out). ``qa`` only judges
#: what was produced (``qa.json``), so a batch may resume with another threshold.
RUNTIME_KEYS = ("ray", "qa", "isaaclab.num_envs", "isaaclab.device", "diffusion.device", "diffusion.offload", "diffusion.stage2.offload", "diffusion.stage3.offload",
                "diffusion.vae_tiling", "diffusion.vae_slicing", "diffusion.local_files_only")


def dataset_identity(config: dict) -> dict:
    """The content-defining part of a config (as plain data): what makes a resume "the same run"."""
    out = json.loads(json.dumps(config))
    if out.get("backend", "mujoco") == "mujoco":  # the identity MuJoCo datasets had before the key existed
        out.pop("backend", None)
        out.pop("isaaclab", None)
    for key in RUNTIME_KEYS:
        node = out
        *parents, last = key.split(".")
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out


class Generator:
    """Runs a batch into one dataset folder."""

    def __init__(self, cfg: GenerateConfig, out: str | Path, diffusion=None, policy=None, given: dict | None = None,
                 check_objects: bool = True):
        """``diffusion(episode, plan) -> video`` overrides the configured diffusion stages (tests
        pass tiny models); otherwise they load from ``cfg.diffusion`` when configured. ``given``
        is the user's raw config mapping, when known (see :meth:`GenerateConfig.resolve`)."""
        from pam_engine.dataset.writer import EpisodeWriter

        cfg = cfg.resolve(given)
        self.cfg = cfg
        self.out = Path(out)
        if cfg.backend == "isaaclab":
            from pam_engine.isaaclab.checks import require_isaaclab

            require_isaaclab()  # names the install steps, before anything is written
        if check_objects:  # the Ray driver checked them already for its workers
            self._check_objects()
        injected_policy = policy is not None
        if policy is None and cfg.policy:
            from pam_engine.policy.loading import load_policy

            policy = load_policy(cfg.policy)  # a bad checkpoint fails here, before anything is written
        self.writer = EpisodeWriter(self.out)  # checks the folder is usable and writable
        self._check_same_config()
        if cfg.ray.enabled and (diffusion is not None or injected_policy):
            raise ConfigError("a policy or diffusion object given from Python cannot be sent to Ray workers: each worker "
                              "builds its own from the config (keys 'policy' and 'diffusion'); pass them through the "
                              "config, or run without Ray (ray.workers=0, no ray.address)")
        if diffusion is None and cfg.diffusion.is_configured() and not cfg.ray.enabled:
            # with Ray, only the workers load the models: the driver may have no GPU or memory for them
            from pam_diffusion.generator import PamVideoGenerator

            diffusion = video_stage(PamVideoGenerator.from_config(cfg.diffusion))
        self.diffusion = diffusion
        self.policy = policy
        self._check_qa()
        self._capture_buffer = None  # reused between episodes (saves first-touch page faults)
        self._claims = None
        #: set (by a signal handler) to stop at the next episode boundary or before writing
        self.stop_requested = False
        self._write_dataset_json()  # only now: every check passed

    @classmethod
    def from_config_dict(cls, cfg_dict: dict, out: str | Path) -> "Generator":
        """A generator from a plain config dict (how Ray workers receive it)."""
        return cls(from_dict(GenerateConfig, cfg_dict), out, check_objects=False)

    def new_summary(self, skipped: int = 0) -> "GenerateSummary":
        return GenerateSummary(diffusion_skipped=not self.diffusion_enabled, skipped=skipped)

    @property
    def diffusion_enabled(self) -> bool:
        """Whether episodes get the photoreal video (here, or on the Ray workers)."""
        return self.diffusion is not None or (self.cfg.ray.enabled and self.cfg.diffusion.is_configured())

    def _check_objects(self) -> None:
        """Every object of the pool resolves and its mesh loads (no collision decomposition)."""
        from pam_engine.errors import AssetError
        from pam_engine.objects.asset import check_object

        for i, name in enumerate(self.cfg.randomization.objects):
            try:
                check_object(name)
            except AssetError as exc:
                raise ConfigError(f"config key 'randomization.objects[{i}]': {exc}") from exc

    def _check_qa(self) -> None:
        """With ``qa.max_keypoint_error`` set: the video QA checks will exist, and so will the
        detector environment (its absence fails here, before any episode is made)."""
        qa = self.cfg.qa
        if not qa.enabled:
            return
        if qa.video == "video" and not self.diffusion_enabled:
            raise ConfigError("config key 'qa.max_keypoint_error' is set but no video.mp4 will be made (the diffusion "
                              "weights are not configured); set qa.video=sim_rgb to check the simulation preview")
        from pam_engine.qa.detector import detector_version

        detector_version(qa.detector_python)  # the environment exists and has mediapipe

    def _identity(self) -> dict:
        return dataset_identity(to_dict(self.cfg))

    def _check_same_config(self) -> None:
        """A folder holding a dataset resumes only with the config that made it; the refusal
        names the keys that differ."""
        path = self.out / DATASET_CONFIG_FILE
        if not path.exists():
            return
        try:
            previous = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise OutputError(f"{path} is unreadable ({exc}); remove it or use another folder") from exc
        if not isinstance(previous, dict):
            raise OutputError(f"{path} is not a dataset description (expected a JSON object)")
        before = dict(previous.get("config") or {})
        # a dataset made before the world-model outputs existed has neither (docs/worldmodels.md)
        before.setdefault("world_models", {"actions": False, "static_video": False})
        differing = differing_keys(dataset_identity(before), self._identity())
        if differing:
            shown = ", ".join(differing[:8]) + (f" and {len(differing) - 8} more" if len(differing) > 8 else "")
            raise OutputError(f"{self.out} holds a dataset made with a different config (differing keys: {shown}); "
                              "resume with the same config or choose another output folder")

    def _write_dataset_json(self) -> None:
        from pam_engine.dataset.format import dataset_description, features

        path = self.out / DATASET_CONFIG_FILE
        if path.exists():
            return
        tmp = path.with_name(f".tmp-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        cfg = self.cfg
        n_objects = 1 + min(cfg.randomization.distractors, len(set(cfg.randomization.objects)) - 1)
        schema = features(cfg.stage1.num_frames, cfg.height, cfg.width, n_objects, self.diffusion_enabled,
                          actions=cfg.world_models.actions, static_video=cfg.world_models.static_video)
        tmp.write_text(json.dumps(dataset_description(self._identity(), cfg.episodes, schema), indent=2))
        try:
            os.link(tmp, path)  # exclusive: a run started at the same moment with another config loses
        except FileExistsError:
            self._check_same_config()
        finally:
            tmp.unlink(missing_ok=True)

    def claims(self):
        """This process's claims on the output folder (opened on first use; ``close()`` ends them)."""
        from pam_engine.dataset.claims import ClaimStore

        if self._claims is None:
            self._claims = ClaimStore(self.out).open()  # also removes what dead runs left
        return self._claims

    def close(self) -> None:
        """Release this process's claims and owner record (a killed run's are swept by the next)."""
        if self._claims is not None:
            self._claims.close()
            self._claims = None

    def done_indices(self) -> set[int]:
        """Episodes already written or recorded as permanently failed."""
        from pam_engine.dataset.format import EPISODE_RE

        done = {int(p.name.split("_")[1]) for p in self.out.iterdir() if EPISODE_RE.match(p.name)}
        return done | self._failed_indices()

    def _failed_indices(self) -> set[int]:
        """Episodes in ``failures.jsonl`` that would fail again (a grasp that does not hold, bad
        input); unexpected errors (``retry``: out of memory, I/O, ...) are tried again."""
        from pam_engine.dataset.format import FAILURES_FILE

        done = set()
        failures = self.out / FAILURES_FILE
        if failures.exists():
            for line in failures.read_text().splitlines():
                try:
                    entry = json.loads(line)
                    if not entry.get("retry"):
                        done.add(int(entry["episode"].split("_")[1]))
                except (ValueError, KeyError, IndexError, AttributeError, TypeError):
                    continue
        return done

    def _is_done(self, index: int) -> bool:
        from pam_engine.dataset.format import episode_name

        return (self.out / episode_name(index)).is_dir() or index in self._failed_indices()

    def run(self, progress: bool = True) -> GenerateSummary:
        """Make every episode not done yet, here or on Ray workers (``cfg.ray``). Episodes that
        another live run holds are left to it (``summary.busy``)."""
        try:
            self.claims()  # sweeps what dead runs left before the list of episodes to make
            done = self.done_indices()
            todo = [i for i in range(self.cfg.episodes) if i not in done]
            summary = self.new_summary(skipped=self.cfg.episodes - len(todo))
            if self.cfg.ray.enabled:
                self.close()  # the workers claim for themselves
                summary = run_on_ray(self, todo, summary, self.cfg.ray, progress)
            else:
                self.run_indices(todo, summary, progress)
        finally:
            self.close()
        self._finish_qa(summary)
        return summary

    def _finish_qa(self, summary: "GenerateSummary") -> None:
        """QA of episodes written without a ``qa.json`` (a run killed between writing and QA), and
        the dataset's ``qa_summary.json`` with its ``rejected`` list."""
        if not self.cfg.qa.enabled:
            return
        from pam_engine.qa.check import check_dataset

        summary.qa = check_dataset(self.out, self.cfg.qa, progress=False, only_missing=True).summary

    def run_indices(self, indices: list[int], summary: GenerateSummary, progress: bool = False) -> None:
        """Make episodes ``indices``, counting into ``summary``. Each is claimed first (one left
        to a live run holding it); any exception in one episode is recorded with its traceback
        and the rest go on. Ctrl-C / SIGTERM (``KeyboardInterrupt``) discards the episode in
        flight and stops."""
        import traceback

        if self.cfg.backend == "isaaclab":
            return self._run_isaaclab(indices, summary, progress)
        claims = self.claims()
        bar = tqdm(indices, desc="episodes", disable=not progress)
        for index in bar:
            self._check_stop()
            if not claims.claim(index):
                summary.busy += 1
                continue
            try:
                if self._is_done(index):  # finished by another run since the list was made
                    summary.skipped += 1
                    continue
                summary.attempted += 1
                try:
                    self._capture_buffer = self._episode(plan_episode(self.cfg, index), summary, self._capture_buffer)
                except PamError as exc:
                    summary.failed += 1
                    self.writer.record_failure(index, f"{type(exc).__name__}: {exc}")
                except Exception as exc:  # noqa: BLE001 - CUDA OOM, PyAV, MuJoCo, bugs: record, go on
                    summary.failed += 1
                    self._capture_buffer = None
                    self.writer.record_failure(index, f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(),
                                               error=type(exc).__name__, retry=True)
            finally:
                claims.release(index)
            bar.set_postfix(ok=summary.written, failed=summary.failed)

    def _episode(self, plan: EpisodePlan, summary: GenerateSummary, capture_buffer):
        cfg = self.cfg
        rng = np.random.default_rng([cfg.seed, plan.index, 1])
        t0 = time.perf_counter()
        request = Stage1Request(plan.objects, target=0, seed=plan.seed)
        run = run_stage1(request, cfg.stage1, self.policy, start_sampler=self._start_sampler(rng))
        traj = run.trajectory
        summary.stage_seconds["stage1"] += time.perf_counter() - t0
        if not self._keep(plan, traj, summary):
            return capture_buffer

        t0 = time.perf_counter()
        scene = run.scene
        target = traj.pose_y[0, 0, :, 3] + np.array([0.0, 0.0, 0.08])
        camera = sample_camera(rng, target, cfg.randomization.camera)
        # DWM's static scene draws the same preview look: from the rng as the capture gets it
        static_rng = copy.deepcopy(rng) if cfg.randomization.preview else None
        seq = scene.capture(traj, camera, rng if cfg.randomization.preview else None, out=capture_buffer)
        summary.stage_seconds["capture"] += time.perf_counter() - t0
        self._finish(plan, traj, camera, seq, summary,
                     static=lambda: scene.capture_static(traj, camera, static_rng).rgb)
        return seq

    def _keep(self, plan: EpisodePlan, traj, summary: GenerateSummary) -> bool:
        """Count a Stage I result; a failed grasp (unless ``keep_failed`` and complete) is
        recorded in ``failures.jsonl`` and goes no further."""
        cfg = self.cfg
        summary.grasped += int(traj.success)
        complete = traj.num_frames == cfg.stage1.num_frames  # a diverged run stops early
        if not traj.success and not (cfg.keep_failed and complete):
            summary.failed += 1
            self.writer.record_failure(plan.index, traj.failure_reason, seed=plan.seed,
                                       objects=[str(o.name) for o in plan.objects])
            return False
        return True

    def _finish(self, plan: EpisodePlan, traj, camera, seq, summary: GenerateSummary, extra: dict | None = None,
                static=None) -> None:
        """Labels and condition maps of a captured Stage I result, Stages II-III when configured,
        then the atomic write (the same for every backend). ``static`` renders DWM's static-scene
        video; a backend without one (Isaac Lab, for now) writes none, and ``meta.extra`` says so."""
        from pam_engine.dataset.episode import make_episode

        cfg = self.cfg
        t0 = time.perf_counter()
        episode = make_episode(traj, camera, seq, prompt=plan.prompt, policy_version=traj.policy.rsplit("-", 1)[-1],
                               map_style=cfg.maps, actions=cfg.world_models.actions, extra=extra)
        summary.stage_seconds["capture"] += time.perf_counter() - t0
        if cfg.world_models.static_video and static is not None:
            t0 = time.perf_counter()
            episode.set_static(static())
            summary.stage_seconds["static"] += time.perf_counter() - t0

        if self.diffusion is not None:
            t0 = time.perf_counter()
            episode.video = self.diffusion(episode, plan)
            episode.meta.has_video = True
            summary.stage_seconds["diffusion"] += time.perf_counter() - t0

        t0 = time.perf_counter()
        self._check_stop()
        if not self.claims().still_held(plan.index):  # our lease lapsed and another run took it over
            summary.busy += 1
            return
        folder = self.writer.write(episode, index=plan.index, tmp_name=self.claims().tmp_name(f"episode_{plan.index:06d}"))
        summary.stage_seconds["write"] += time.perf_counter() - t0
        summary.written += 1
        if self.cfg.qa.enabled:
            self._qa_episode(folder, summary)

    def _run_isaaclab(self, indices: list[int], summary: GenerateSummary, progress: bool = False) -> None:
        """``run_indices`` with Stage I on Isaac Lab: the episodes grouped by object (one task per
        object, ``isaaclab.num_envs`` parallel envs), each batch claimed, simulated and captured
        in Isaac Lab, then every episode finished as on the embedded backend. A failing episode
        is recorded and the rest go on; Ctrl-C discards what is in flight and stops."""
        import traceback

        from pam_engine.isaaclab.stage1 import IsaacEpisodeInput, IsaacStage1

        cfg, claims = self.cfg, self.claims()
        isaac = cfg.isaaclab
        groups: dict[str, list[EpisodePlan]] = defaultdict(list)
        for index in indices:
            plan = plan_episode(cfg, index)
            groups[str(plan.objects[0].name)].append(plan)
        extra = {"backend": "isaaclab", "physics": isaac.physics}
        bar = tqdm(total=len(indices), desc="episodes (isaaclab)", disable=not progress)

        def record(plan, exc):
            summary.failed += 1
            if isinstance(exc, PamError):
                self.writer.record_failure(plan.index, f"{type(exc).__name__}: {exc}")
            else:  # CUDA OOM, Warp, Newton, bugs: tried again on the next run
                self.writer.record_failure(plan.index, f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(),
                                           error=type(exc).__name__, retry=True)

        for name, plans in groups.items():
            stage = None
            try:
                for start in range(0, len(plans), isaac.num_envs):
                    self._check_stop()
                    held = []
                    for plan in plans[start:start + isaac.num_envs]:
                        if not claims.claim(plan.index):
                            summary.busy += 1
                        elif self._is_done(plan.index):  # finished by another run since the list was made
                            summary.skipped += 1
                            claims.release(plan.index)
                        else:
                            held.append(plan)
                    try:
                        if not held:
                            continue
                        summary.attempted += len(held)
                        inputs = []
                        for plan in held:
                            rng = np.random.default_rng([cfg.seed, plan.index, 1])  # as _episode draws
                            inputs.append(IsaacEpisodeInput(
                                Stage1Request(plan.objects, target=0, seed=plan.seed), self._start_sampler(rng),
                                lambda point, rng=rng: sample_camera(rng, point + np.array([0.0, 0.0, 0.08]),
                                                                     cfg.randomization.camera)))
                        t0 = time.perf_counter()
                        try:
                            if stage is None:
                                stage = IsaacStage1(cfg.stage1, name, cfg.width, cfg.height, num_envs=isaac.num_envs,
                                                    device=isaac.device, physics=isaac.physics)
                            results = stage.run(inputs, progress=progress)
                        except Exception as exc:  # noqa: BLE001 - the whole batch failed: record each, go on
                            for plan in held:
                                record(plan, exc)
                            continue
                        summary.stage_seconds["stage1"] += time.perf_counter() - t0
                        for plan, result in zip(held, results):
                            try:
                                if not result.started:  # no grasp found: the episode never started
                                    summary.failed += 1
                                    self.writer.record_failure(plan.index, result.trajectory.failure_reason,
                                                               seed=plan.seed, objects=[str(o.name) for o in plan.objects])
                                elif self._keep(plan, result.trajectory, summary):
                                    self._finish(plan, result.trajectory, result.camera, result.capture, summary, extra)
                            except Exception as exc:  # noqa: BLE001 - record, go on
                                record(plan, exc)
                    finally:
                        for plan in held:
                            claims.release(plan.index)
                        bar.update(len(plans[start:start + isaac.num_envs]))
                        bar.set_postfix(ok=summary.written, failed=summary.failed)
            finally:
                if stage is not None:
                    stage.close()
        bar.close()

    def _qa_episode(self, folder: Path, summary: "GenerateSummary") -> None:
        """QA of a written episode: ``qa.json`` marks it passed or rejected (it is kept either
        way). A detector failure leaves it without ``qa.json``; the end of the run tries again."""
        import logging

        from pam_engine.qa.check import check_episode

        t0 = time.perf_counter()
        try:
            check_episode(folder, self.cfg.qa)  # Ray workers too: qa_summary.json is rebuilt by the driver
        except Exception as exc:  # noqa: BLE001 - the episode itself is fine; its check is retried
            logging.getLogger("pam_engine.qa").warning("QA of %s failed (%s: %s); retried at the end of the run",
                                                       folder.name, type(exc).__name__, exc)
        summary.stage_seconds["qa"] += time.perf_counter() - t0

    def _check_stop(self) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt

    def _start_sampler(self, rng: np.random.Generator):
        r = self.cfg.randomization

        def sample(grasp_wrist: np.ndarray, approach: np.ndarray, n_dof: int):
            from pam_engine.hand.pose import HandPose, make_transform

            position = (grasp_wrist[:3, 3] - rng.uniform(*r.start_distance) * approach
                        + np.array([0.0, 0.0, rng.uniform(*r.start_lift)]))
            position[2] = max(position[2], grasp_wrist[2, 3] + 0.03)
            rotation = Rotation.from_rotvec(rng.normal(scale=r.start_rotation, size=3)) * Rotation.from_matrix(grasp_wrist[:3, :3])
            return HandPose(make_transform(rotation, position), np.zeros(n_dof))

        return sample


def differing_keys(a, b, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain-data configs."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += differing_keys(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{prefix}.{key}" if prefix else str(key))
        return out
    return [] if a == b else [prefix or "<config>"]


def video_stage(generator):
    """Stages II and III as an episode hook: PAM's condition maps in, the video frames out."""

    def run(episode, plan: EpisodePlan) -> np.ndarray:
        maps = episode.maps
        conditions = {"depth": maps["depth"], "normal": maps["normal"], "seg": maps["seg"],
                      "hand": maps["hand_keypoints"]}
        return generator.generate(conditions, plan.prompt, seed=plan.seed,
                                  stage2_conditions=stage2_conditions(episode, generator.config.stage2.size)).frames

    return run


def stage2_conditions(episode, size) -> dict[str, np.ndarray] | None:
    """Stage II's keypoint map drawn on the canvas as PAM's Stage II loader drew it (no
    ``joint_3d``: list order) when Stage II paints on the episode's keypoint canvas; else None."""
    from pam_engine.capture.maps import canvas_keypoint_frame

    canvas = tuple(episode.meta.extra.get("maps", {}).get("keypoint_canvas", ()))
    if size is None or tuple(size) != canvas:
        return None
    hand = canvas_keypoint_frame(episode.labels["joint_2d"][0], episode.meta.width, episode.meta.height, canvas)
    return {"hand": hand}
