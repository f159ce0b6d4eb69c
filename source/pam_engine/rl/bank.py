"""A bank of synthesized grasps per training object, built once and cached on disk.

Grasp synthesis costs seconds per object, two orders of magnitude more than an episode's
physics, so the environment never synthesizes while training: each reset draws a grasp from
this bank. Grasps are stored in the object frame; an upright object moved or turned about the
vertical on the table keeps every grasp valid, so one synthesis serves every placement.

Each object's bank holds the best ``grasps_per_seed`` grasps of synthesis runs with several
seeds, the same synthesizer Stage I uses (whatever its current version: the cache key includes
a digest of its source, so an improved synthesizer invalidates old banks).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pam_engine.errors import PoseError
from pam_engine.policy.grasp_synthesis import GraspSynthesisConfig, GraspTarget

#: Bump when the stored layout changes.
BANK_FORMAT = 1


def _dexycb() -> list[str]:
    from pam_engine.objects import dexycb_object_names

    return list(dexycb_object_names())


@dataclass
class BankConfig:
    """Which objects to train on and how many grasps each gets."""

    objects: list[str] = field(default_factory=_dexycb)
    #: Synthesis seeds; Stage I uses the request seed, so evaluation (seeds 0..9) and training
    #: draw from different candidate sets.
    synthesis_seeds: list[int] = field(default_factory=lambda: [100, 101, 102, 103])
    grasps_per_seed: int = 3
    cache_dir: str | None = None  # default: $PAM_CACHE_DIR/grasp_bank or ~/.cache/pam_engine/grasp_bank


@dataclass
class ObjectGrasps:
    """The grasps of one object (object frame)."""

    name: str
    grasps: list[GraspTarget]


def default_cache_dir() -> Path:
    root = os.environ.get("PAM_CACHE_DIR")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "pam_engine"
    return base / "grasp_bank"


def _source_digest() -> str:
    """Digest of the code that decides what a grasp is (synthesis, scene, hand)."""
    import pam_engine.policy.grasp_synthesis as synthesis
    import pam_engine.sim.hand_builder as hand_builder
    import pam_engine.sim.scene as scene

    h = hashlib.sha256()
    for module in (synthesis, scene, hand_builder):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()[:16]


def _key(name: str, seeds: list[int], per_seed: int, synthesis: GraspSynthesisConfig, hand_key: str) -> str:
    meta = {"object": name, "seeds": list(seeds), "per_seed": per_seed, "synthesis": asdict(synthesis),
            "hand": hand_key, "source": _source_digest(), "format": BANK_FORMAT}
    return hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _pack(grasps: list[GraspTarget]) -> dict[str, np.ndarray]:
    return {
        "wrist_in_object": np.stack([g.wrist_in_object for g in grasps]),
        "angles": np.stack([g.angles for g in grasps]),
        "approach": np.stack([g.approach for g in grasps]),
        "preshape": np.stack([g.preshape for g in grasps]),
        "score": np.array([g.score for g in grasps]),
        "quality": np.array([g.quality for g in grasps]),
        "parts": np.stack([g.parts for g in grasps]).astype(bool),
    }


def _unpack(data) -> list[GraspTarget]:
    return [GraspTarget(data["wrist_in_object"][i], data["angles"][i], data["approach"][i], data["preshape"][i],
                        float(data["score"][i]), float(data["quality"][i]), data["parts"][i])
            for i in range(len(data["score"]))]


def synthesize_object(name: str, seeds: list[int], per_seed: int, stage1_config) -> list[GraspTarget]:
    """Synthesize grasps of one object upright on the table, as Stage I would (positions only)."""
    from pam_engine.stage1 import HandCache, ObjectSpec, _settle, load_objects, place_objects
    from pam_engine.policy.grasp_synthesis import GraspSynthesizer
    from pam_engine.sim.scene import HandObjectScene, PlacedObject

    cfg = stage1_config
    hand, articulation = HandCache.get(cfg.mano)
    specs = [ObjectSpec(name)]
    assets = load_objects(specs)
    poses = place_objects(assets, specs, np.random.default_rng(0), 0.0)
    scene = HandObjectScene(hand, articulation, [PlacedObject(assets[0], poses[0])], cfg.scene, betas=cfg.betas)
    _settle(scene, cfg)
    grasps: list[GraspTarget] = []
    for seed in seeds:
        synth_cfg = GraspSynthesisConfig(**{**asdict(cfg.synthesis), "seed": int(seed)})
        try:
            found = GraspSynthesizer(scene, 0, synth_cfg).synthesize(per_seed)
        except PoseError:
            continue
        for g in found:
            if g.preshape is None:
                g.preshape = np.zeros_like(g.angles)
            if not any(_same(g, h) for h in grasps):
                grasps.append(g)
    return grasps


def _same(a: GraspTarget, b: GraspTarget, tol_m: float = 0.005, tol_rad: float = 0.05) -> bool:
    d = np.linalg.norm(a.wrist_in_object[:3, 3] - b.wrist_in_object[:3, 3])
    r = np.linalg.norm(a.wrist_in_object[:3, :3] - b.wrist_in_object[:3, :3])
    return bool(d < tol_m and r < tol_rad and np.allclose(a.angles, b.angles, atol=tol_rad))


def load_bank(config: BankConfig, stage1_config, progress: bool = True) -> list[ObjectGrasps]:
    """Every configured object's grasps: from the disk cache, else synthesized and cached.
    Objects for which synthesis finds no grasp are left out with a note; none at all is an error."""
    from tqdm import tqdm

    from pam_engine.objects.hull_store import write_npz_atomic

    if not config.objects:
        raise PoseError("the grasp bank needs at least one object (config key 'bank.objects')")
    folder = Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir()
    hand_key = stage1_config.mano or os.environ.get("PAM_MANO_DIR") or "builtin"
    out: list[ObjectGrasps] = []
    for name in tqdm(config.objects, desc="grasp bank", disable=not progress, leave=False):
        path = folder / f"{_key(str(name), config.synthesis_seeds, config.grasps_per_seed, stage1_config.synthesis, hand_key)}.npz"
        grasps = None
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    grasps = _unpack(data) if int(data["format"]) == BANK_FORMAT else None
            except (OSError, KeyError, ValueError):
                grasps = None
        if grasps is None:
            grasps = synthesize_object(str(name), config.synthesis_seeds, config.grasps_per_seed, stage1_config)
            if grasps:
                folder.mkdir(parents=True, exist_ok=True)
                write_npz_atomic(path, {**_pack(grasps), "format": np.array(BANK_FORMAT)})
        if grasps:
            out.append(ObjectGrasps(str(name), grasps))
        else:
            print(f"grasp bank: no feasible grasp for {name!r}; it is left out of training")
    if not out:
        raise PoseError(f"grasp synthesis found no grasp for any of {config.objects}")
    return out
