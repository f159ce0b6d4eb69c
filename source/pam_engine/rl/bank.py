"""A bank of synthesized grasps per training object, built once and cached on disk.

Grasp synthesis costs seconds per object, two orders of magnitude more than an episode's
physics, so the environment never synthesizes while training: each reset draws a grasp from
this bank. Grasps are stored in the object frame; an upright object moved or turned about the
vertical on the table keeps every grasp valid, so one synthesis serves every placement.

Each object's bank holds, per synthesis seed, the grasp Stage I itself would use (synthesis,
with the bank's own search, batched by default; then the physical trial of
:mod:`~pam_engine.pose.grasp.trial`), followed by further
candidates that pass the same trial, up to ``grasps_per_seed``: the policy trains on the kind of
plans it will meet, and on many of them (with few grasps per object it learns those grasps, not
grasping: 10 per object lifted the training grasps from 69% to 79% but not unseen ones).

The cache (:mod:`pam_engine.cache`) is keyed by every input that changes the grasps: the object's
surfaces and mass, the hand's model and articulation, the scene physics, synthesis, trial and
plan settings, the seeds and :data:`BANK_FORMAT` (bumped when the algorithm changes), not by
source files, so a comment edit keeps every bank.

Shipped bank: ``pam_engine/assets/dexycb_grasp_bank.npz`` holds the default bank of the 21
DexYCB objects (default :class:`BankConfig`, default Stage I config), one entry per object
under the same key the disk cache uses, built by ``tools/build_grasp_bank.py``. An entry is used
only when its key equals the one computed now, so it is never stale: any change of object, hand,
physics, settings, seeds or :data:`BANK_FORMAT` misses it (logged) and the object is
synthesized as before. Cold, the 21 objects are synthesized over every core (``jobs``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from pam_engine import cache
from pam_engine.errors import ConfigError, PoseError
from pam_engine.pose.grasp.synthesis import GraspSynthesisConfig
from pam_engine.pose.grasp.target import GraspTarget

#: Bump when the stored layout changes, or when synthesis or the physical trial change what they
#: find for the same inputs (the key covers every input, not the code).
BANK_FORMAT = 5  # 4: the batched synthesis search (GraspSynthesisConfig.search); 5: with the trial that plays the plan
SHIPPED_FILE = "dexycb_grasp_bank.npz"


def _dexycb() -> list[str]:
    from pam_engine.objects import dexycb_object_names

    return list(dexycb_object_names())


@dataclass(frozen=True)
class BankConfig:
    """Which objects to train on and how many grasps each gets."""

    objects: list[str] = field(default_factory=_dexycb)
    #: Synthesis seeds; Stage I uses the request seed, so evaluation (seeds 0..9) and training
    #: draw from different candidate sets.
    synthesis_seeds: list[int] = field(default_factory=lambda: list(range(100, 110)))
    grasps_per_seed: int = 1  # Stage I's choice, then other candidates that pass its physical trial
    #: grasp synthesis search for the bank (GraspSynthesisConfig.search): the batched one, since the
    #: bank synthesizes hundreds of times and keeps only grasps that pass the physical trial
    search: str = "batched"
    cache_dir: str | None = None  # default: $PAM_CACHE_DIR/grasp_bank or ~/.cache/pam_engine/grasp_bank


@dataclass
class ObjectGrasps:
    """The grasps of one object (object frame)."""

    name: str
    grasps: list[GraspTarget]


def default_cache_dir() -> Path:
    return cache.cache_dir("grasp_bank")


def _object_description(asset) -> dict:
    """What of an object decides its grasps: its surfaces (visual and collision), mass
    properties and scale."""
    return {"mesh": [np.asarray(asset.mesh.vertices), np.asarray(asset.mesh.faces)],
            "collision": [np.asarray(p.vertices) for p in asset.collision_parts],
            "mass": float(asset.mass), "com": np.asarray(asset.com), "inertia": np.asarray(asset.inertia),
            "scale": float(asset.scale)}


def _hand_description(hand, articulation) -> dict:
    """What of the hand decides its grasps: the skinned model and the articulation (its joints,
    axes and limits)."""
    return {"model": hand, "articulation": articulation}


def bank_key(asset, seeds: list[int], per_seed: int, stage1_config, hand, articulation,
             search: str | None = None) -> str:
    """The cache key of one object's bank: every input that changes the grasps found (the object,
    the hand, the scene physics, settling, synthesis (with the bank's ``search`` when given), the
    physical trial, the plan's closing rule, the seeds) and the bank's format, never source files."""
    cfg = stage1_config
    synthesis = cfg.synthesis if search is None else replace(cfg.synthesis, search=search)
    return cache.cache_key(
        object=_object_description(asset), hand=_hand_description(hand, articulation), betas=cfg.betas,
        scene=cfg.scene, num_frames=cfg.num_frames, settle_time=cfg.settle_time, synthesis=synthesis, check=cfg.check, plan=cfg.plan,
        seeds=[int(s) for s in seeds], per_seed=int(per_seed), format=BANK_FORMAT)


def _pack(grasps: list[GraspTarget]) -> dict[str, np.ndarray]:
    return {
        "wrist_in_object": np.stack([g.wrist_in_object for g in grasps]),
        "angles": np.stack([g.angles for g in grasps]),
        "approach": np.stack([g.approach for g in grasps]),
        "preshape": np.stack([g.preshape for g in grasps]),
        "score": np.array([g.score for g in grasps]),
        "quality": np.array([g.quality for g in grasps]),
        "parts": np.stack([g.parts for g in grasps]).astype(bool),
        "family": np.array([g.family for g in grasps], dtype=str),
        "squeeze": np.stack([np.zeros_like(g.angles) if g.squeeze is None else g.squeeze for g in grasps]),
    }


def _unpack(data) -> list[GraspTarget]:
    return [GraspTarget(data["wrist_in_object"][i], data["angles"][i], data["approach"][i], data["preshape"][i],
                        float(data["score"][i]), float(data["quality"][i]), data["parts"][i], str(data["family"][i]),
                        data["squeeze"][i])
            for i in range(len(data["score"]))]


def synthesize_object(name: str, seeds: list[int], per_seed: int, stage1_config,
                      search: str | None = None) -> list[GraspTarget]:
    """Grasps of one object upright on the table, chosen per seed as Stage I chooses them (with
    synthesis search ``search`` when given)."""
    from pam_engine.pose.grasp.synthesis import GraspSynthesizer
    from pam_engine.pose.grasp.trial import choose_grasps
    from pam_engine.pose.request import ObjectSpec
    from pam_engine.pose.setup import build_scene, load_objects, place_objects, settle

    cfg = stage1_config
    specs = [ObjectSpec(name)]
    assets = load_objects(specs)
    poses = place_objects(assets, specs, np.random.default_rng(0), 0.0)
    scene = build_scene(assets, poses, cfg)
    settle(scene, cfg)
    grasps: list[GraspTarget] = []
    for seed in seeds:
        synth_cfg = GraspSynthesisConfig(**{**asdict(cfg.synthesis), "seed": int(seed),
                                            **({"search": search} if search is not None else {})})
        try:
            found = GraspSynthesizer(scene, 0, synth_cfg).synthesize(max(cfg.check.candidates, per_seed, 1))
        except PoseError:
            continue
        # Stage I's choice first, then further candidates that pass the same trial
        for g in choose_grasps(scene, found, 0, cfg.check, cfg.plan, count=max(per_seed, 1), num_steps=cfg.num_steps):
            if g.preshape is None:
                g.preshape = np.zeros_like(g.angles)
            if not any(_same(g, h) for h in grasps):
                grasps.append(g)
    return grasps


def _same(a: GraspTarget, b: GraspTarget, tol_m: float = 0.005, tol_rad: float = 0.05) -> bool:
    d = np.linalg.norm(a.wrist_in_object[:3, 3] - b.wrist_in_object[:3, 3])
    r = np.linalg.norm(a.wrist_in_object[:3, :3] - b.wrist_in_object[:3, :3])
    return bool(d < tol_m and r < tol_rad and np.allclose(a.angles, b.angles, atol=tol_rad))


def shipped_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("pam_engine") / "assets" / SHIPPED_FILE))


def _read(path: Path, name: str, log: bool = True) -> list[GraspTarget] | None:
    """The cached grasps of ``name``, or None (logged) when absent or damaged."""
    if not path.is_file():
        if log:
            cache.log_miss("grasp bank", repr(name), path)
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) == BANK_FORMAT:
                return _unpack(data)
            cache.log_miss("grasp bank", repr(name), path, f"stored in format {int(data['format'])}")
            return None
    except cache.UNREADABLE as exc:
        cache.log_unreadable("grasp bank", repr(name), path, exc)
        return None


def _read_shipped(key: str, name: str, path: Path | None = None) -> list[GraspTarget] | None:
    """The shipped grasps of ``name`` stored under exactly ``key``, or None."""
    path = shipped_path() if path is None else path
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format"]) != BANK_FORMAT or f"{key}.score" not in data.files:
                return None
            if str(data[f"{key}.name"]) != name:
                return None
            return _unpack({k[len(key) + 1:]: data[k] for k in data.files if k.startswith(key + ".")})
    except cache.UNREADABLE as exc:  # a damaged install: say so, then synthesize
        cache.log_unreadable("shipped grasp bank", repr(name), path, exc)
        return None


def pack_shipped(entries: dict[str, tuple[str, list[GraspTarget]]]) -> dict[str, np.ndarray]:
    """The arrays of a shipped bank file: {key: (object name, grasps)}."""
    out: dict[str, np.ndarray] = {"format": np.array(BANK_FORMAT)}
    for key, (name, grasps) in entries.items():
        out[f"{key}.name"] = np.array(name)
        out.update({f"{key}.{k}": v for k, v in _pack(grasps).items()})
    return out


def bank_paths(config: BankConfig, stage1_config) -> dict[str, Path]:
    """Each configured object's cache file (named by its :func:`bank_key`)."""
    from pam_engine.pose.request import ObjectSpec
    from pam_engine.pose.setup import HandCache, load_objects

    folder = cache.cache_dir("grasp_bank", config.cache_dir)
    hand, articulation = HandCache.get(stage1_config.mano)
    names = [str(n) for n in config.objects]
    assets = dict(zip(names, load_objects([ObjectSpec(n) for n in names])))
    return {n: folder / (bank_key(assets[n], config.synthesis_seeds, config.grasps_per_seed, stage1_config,
                                  hand, articulation, config.search) + ".npz") for n in names}


def load_bank(config: BankConfig, stage1_config, progress: bool = True, jobs: int | None = None,
              shipped: bool = True) -> list[ObjectGrasps]:
    """Every configured object's grasps: from the disk cache, else the shipped bank (same key
    only), else synthesized (over ``jobs`` processes, default every core) and cached. Objects
    for which synthesis finds no grasp are left out with a note; none at all is an error."""
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    if not config.objects:
        raise PoseError("the grasp bank needs at least one object (config key 'bank.objects')")
    from pam_engine.pose.grasp.synthesis import SEARCH_MODES

    if config.search not in SEARCH_MODES:
        raise ConfigError(f"config key 'bank.search': expected one of {list(SEARCH_MODES)}, got {config.search!r}")
    paths = bank_paths(config, stage1_config)
    names = list(paths)
    found = {n: _read(paths[n], n, log=False) for n in names}
    for n in names:
        if found[n] is None and shipped:
            found[n] = _read_shipped(paths[n].stem, n)
        if found[n] is None:
            cache.log_miss("grasp bank", repr(n), paths[n])
    missing = [n for n in names if found[n] is None]
    if missing:
        if jobs is None:
            jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        args = {n: (n, config.synthesis_seeds, config.grasps_per_seed, stage1_config, config.search) for n in missing}
        bar = tqdm(total=len(missing), desc="grasp bank (synthesizing)", disable=not progress, leave=False)
        if jobs > 1 and len(missing) > 1:
            with ProcessPoolExecutor(max_workers=min(jobs, len(missing)), mp_context=mp.get_context("spawn")) as pool:
                futures = {pool.submit(_synthesize_args, args[n]): n for n in missing}
                for fut in as_completed(futures):
                    found[futures[fut]] = fut.result()
                    bar.update()
        else:
            for n in missing:
                found[n] = _synthesize_args(args[n])
                bar.update()
        bar.close()
        for n in missing:
            if found[n]:
                cache.write_npz_atomic(paths[n], {**_pack(found[n]), "format": np.array(BANK_FORMAT)})
    out = []
    for n in names:
        if found[n]:
            out.append(ObjectGrasps(n, found[n]))
        else:
            print(f"grasp bank: no feasible grasp for {n!r}; it is left out of training")
    if not out:
        raise PoseError(f"grasp synthesis found no grasp for any of {config.objects}")
    return out


def _synthesize_args(args) -> list[GraspTarget]:
    return synthesize_object(*args)
