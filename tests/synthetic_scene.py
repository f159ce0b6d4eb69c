"""A test fixture: a small synthetic scene that follows the capture scene contract, a skinned
two-bone "finger" standing in for the hand, one mesh object and a table. The capture and dataset
tests use it to check rendering against known geometry."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pam_engine.capture.renderer import SegLookup
from pam_engine.capture.style import RANDOM_TEXTURE_PREFIX
import mujoco

from pam_engine.conventions import SEG_HAND


def tube_mesh(length: float, radius: float, rings: int = 16, segments: int = 16):
    """Vertices (N, 3) and triangles (M, 3) of a closed tube along +x from 0 to ``length``."""
    xs = np.linspace(0.0, length, rings)
    angles = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)
    verts = [[x, radius * math.cos(a), radius * math.sin(a)] for x in xs for a in angles]
    verts += [[0.0, 0.0, 0.0], [length, 0.0, 0.0]]
    faces = []
    for i in range(rings - 1):
        for j in range(segments):
            a, b = i * segments + j, i * segments + (j + 1) % segments
            c, d = a + segments, b + segments
            faces += [[a, b, d], [a, d, c]]
    start, end = rings * segments, rings * segments + 1
    for j in range(segments):
        faces.append([start, (j + 1) % segments, j])
        last = (rings - 1) * segments
        faces.append([end, last + j, last + (j + 1) % segments])
    return np.asarray(verts, dtype=np.float64), np.asarray(faces, dtype=np.int32)


def box_mesh(half: tuple[float, float, float]):
    """Vertices and outward-wound triangles of an axis-aligned box centred at the origin."""
    hx, hy, hz = half
    v = np.array([[sx * hx, sy * hy, sz * hz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                  [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]], dtype=np.int32)
    return v.astype(np.float64), f


@dataclass
class DemoScene:
    model: "mujoco.MjModel"
    seg_lookup: SegLookup
    object_geom: int  # visual mesh geom of the object (group 2)
    object_id: int  # its DexYCB id
    object_body: int
    hand_root_mocap: int  # mocap index of the finger's root body
    hinge_qpos: int  # qpos address of the finger's hinge
    skin: int
    table_geoms: tuple[int, ...]
    object_half: tuple[float, float, float]

    def set_frame(self, data: "mujoco.MjData", t: int, num_frames: int) -> None:
        """Pose frame t of a demo "grasp": the finger approaches the object and bends."""
        s = t / max(num_frames - 1, 1)
        data.mocap_pos[self.hand_root_mocap] = [-0.16 + 0.06 * s, -0.02, self.object_half[2] + 0.03]
        data.qpos[self.hinge_qpos] = 1.0 * s
        angle = 0.4 * s
        data.qpos[0:7] = [0.0, 0.0, self.object_half[2], math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2)]
        mujoco.mj_kinematics(self.model, data)
        mujoco.mj_camlight(self.model, data)


def demo_labels(scene: DemoScene, data: "mujoco.MjData", num_frames: int):
    """Stand-in hand keypoints (21, spread along the finger's two bones) and the object's pose
    for each frame of the demo animation: (T, 21, 3) and (T, 1, 3, 4), world frame."""
    m = scene.model
    root = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "finger_root")
    tip = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "finger_tip")
    joints = np.zeros((num_frames, 21, 3))
    pose_y = np.zeros((num_frames, 1, 3, 4))
    for t in range(num_frames):
        scene.set_frame(data, t, num_frames)
        p0, p1 = data.xpos[root].copy(), data.xpos[tip].copy()
        p2 = p1 + data.xmat[tip].reshape(3, 3)[:, 0] * 0.06
        for k in range(21):
            f = 2 * k / 20
            joints[t, k] = p0 + (p1 - p0) * f if f <= 1 else p1 + (p2 - p1) * (f - 1)
        pose_y[t, 0, :, :3] = data.xmat[scene.object_body].reshape(3, 3)
        pose_y[t, 0, :, 3] = data.xpos[scene.object_body]
    return joints, pose_y


def build_demo_scene(object_id: int = 3, object_half=(0.035, 0.025, 0.06), finger_length: float = 0.12,
                     finger_radius: float = 0.012, table_texture: bool = True, camera=None) -> DemoScene:
    """Compile the demo scene (object first so its free joint owns qpos[0:7]); ``camera`` (a
    ``Camera``) is added as the model camera ``pam_camera`` when given."""
    spec = mujoco.MjSpec()
    spec.visual.global_.offwidth = 720
    spec.visual.global_.offheight = 480
    spec.stat.extent = 1.0  # znear = 0.01 m, zfar = 50 m

    if table_texture:
        tex = spec.add_texture(name=f"{RANDOM_TEXTURE_PREFIX}_table", type=mujoco.mjtTexture.mjTEXTURE_2D,
                               builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER, width=64, height=64,
                               rgb1=[0.6, 0.5, 0.4], rgb2=[0.4, 0.3, 0.2])
        mat = spec.add_material(name="table_mat")
        mat.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = tex.name
        mat.texrepeat = [4, 4]
    world = spec.worldbody
    floor = world.add_geom(name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[2, 2, 0.1],
                           pos=[0, 0, -0.75], rgba=[0.5, 0.5, 0.55, 1], group=0)
    table = world.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.45, 0.35, 0.02],
                           pos=[0, 0, -0.02], rgba=[0.7, 0.6, 0.5, 1], group=1)
    if table_texture:
        table.material = "table_mat"
    world.add_light(name="sun", pos=[0, 0, 2], dir=[0, 0, -1])

    # Object: free body, visual mesh in group 2, collision box in group 3.
    verts, faces = box_mesh(object_half)
    spec.add_mesh(name="object_mesh", uservert=verts.reshape(-1).tolist(), userface=faces.reshape(-1).tolist())
    obj = world.add_body(name="object", pos=[0, 0, object_half[2]])
    obj.add_freejoint()
    obj.add_geom(name="object_visual", type=mujoco.mjtGeom.mjGEOM_MESH, meshname="object_mesh",
                 rgba=[0.8, 0.2, 0.2, 1], group=2, contype=0, conaffinity=0)
    obj.add_geom(name="object_collision", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(object_half), group=3)

    # Finger: mocap root + hinged tip, a tube skin bound to both, collision capsules in group 3.
    half = finger_length / 2
    root = world.add_body(name="finger_root", mocap=True, pos=[-0.16, -0.02, object_half[2] + 0.03])
    root.add_geom(type=mujoco.mjtGeom.mjGEOM_CAPSULE, fromto=[0, 0, 0, half, 0, 0], size=[finger_radius, 0, 0],
                  group=3, contype=0, conaffinity=0)
    tip = root.add_body(name="finger_tip", pos=[half, 0, 0])
    tip.add_joint(name="finger_hinge", type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0, 1, 0])
    tip.add_geom(type=mujoco.mjtGeom.mjGEOM_CAPSULE, fromto=[0, 0, 0, half, 0, 0], size=[finger_radius, 0, 0],
                 group=3, contype=0, conaffinity=0)

    tverts, tfaces = tube_mesh(finger_length, finger_radius)
    root_pos = np.array([-0.16, -0.02, object_half[2] + 0.03])
    skin = spec.add_skin(name="hand_skin", rgba=[0.85, 0.65, 0.55, 1])
    skin.vert = (tverts + root_pos).reshape(-1).tolist()
    skin.face = tfaces.reshape(-1).tolist()
    w_tip = np.clip((tverts[:, 0] - 0.3 * finger_length) / (0.4 * finger_length), 0.0, 1.0)
    skin.bodyname = ["finger_root", "finger_tip"]
    skin.bindpos = np.concatenate([root_pos, root_pos + [half, 0, 0]]).tolist()
    skin.bindquat = [1, 0, 0, 0, 1, 0, 0, 0]
    ids = np.arange(len(tverts))
    skin.vertid = [ids[w_tip < 1].tolist(), ids[w_tip > 0].tolist()]
    skin.vertweight = [(1 - w_tip[w_tip < 1]).tolist(), w_tip[w_tip > 0].tolist()]

    if camera is not None:
        camera.add_to_spec(spec, "pam_camera")
    model = spec.compile()
    geom = lambda name: mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, name)  # noqa: E731
    skin_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SKIN, "hand_skin")
    obj_geom = geom("object_visual")
    lookup = SegLookup(geoms={obj_geom: object_id}, skins={skin_id: SEG_HAND})
    root_body = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "finger_root")
    hinge = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, "finger_hinge")
    return DemoScene(
        model=model, seg_lookup=lookup, object_geom=obj_geom, object_id=object_id,
        object_body=mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, "object"),
        hand_root_mocap=int(model.body_mocapid[root_body]), hinge_qpos=int(model.jnt_qposadr[hinge]),
        skin=skin_id, table_geoms=(geom("floor"), geom("table")), object_half=tuple(object_half),
    )
