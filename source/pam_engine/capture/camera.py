"""Pinhole camera in OpenCV conventions (x right, y down, z forward), its presets (``pam``: PAM's
stretched DexYCB geometry; ``square``), its random sampling, and its exact MuJoCo equivalent.

Pixel convention: OpenCV's, pixel (i, j) has its centre at (u, v) = (i, j). OpenGL's window
coordinates put that centre at (i + 0.5, j + 0.5); the conversions below account for it so the
MuJoCo render and ``Camera.project`` agree to rasterisation precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from pam_engine.errors import ConfigError

#: PAM's video size (width, height); CogVideoX needs sizes divisible by 16.
DEFAULT_WIDTH, DEFAULT_HEIGHT = 720, 480
#: DexYCB's typical focal length in pixels (its cameras are 640x480, fx ~ fy ~ 615).
DEXYCB_FOCAL = 615.0
#: World "up" of MuJoCo scenes.
WORLD_UP = (0.0, 0.0, 1.0)
#: DexYCB's frame size (width, height), on which PAM drew its keypoint maps.
DEXYCB_SIZE = (640, 480)
#: Camera presets. ``pam``: PAM's training geometry, a 640x480 DexYCB frame stretched 9/8 across to
#: the output size (720x480), so PAM's released weights see what they were trained on;
#: ``square``: square pixels at the output size, for one's own models.
CAMERA_PRESETS: tuple[str, ...] = ("pam", "square")
#: Horizontal stretch of the ``pam`` preset (PAM's loaders resize DexYCB's 640 columns to 720).
PAM_STRETCH = 720 / 640


def check_resolution(width: int, height: int) -> None:
    """Raise ConfigError unless both sides are positive multiples of 16 (the diffusion stages'
    latent grid needs it)."""
    if int(width) != width or int(height) != height or width <= 0 or height <= 0:
        raise ConfigError(f"camera resolution {width}x{height}: expected positive integers")
    if width % 16 or height % 16:
        raise ConfigError(
            f"camera resolution {width}x{height} is not divisible by 16 "
            "(the diffusion stages need width and height that are multiples of 16, e.g. 720x480)"
        )


def check_preset(preset: str) -> str:
    """``preset`` if it is a known camera preset, else a ConfigError naming the valid ones."""
    if preset not in CAMERA_PRESETS:
        raise ConfigError(f"camera preset {preset!r}: expected one of {', '.join(CAMERA_PRESETS)}")
    return preset


def preset_canvas(preset: str, width: int, height: int) -> tuple[int, int]:
    """Size of the frame a preset's ``width`` x ``height`` images are a resize of: for ``pam`` the
    DexYCB-like frame 8/9 as wide (640x480 for 720x480; at widths that are not multiples of 9 the
    nearest whole-pixel width, and K holds the exact stretch), for ``square`` the image itself."""
    check_preset(preset)
    if preset == "square":
        return int(width), int(height)
    return int(round(width / PAM_STRETCH)), int(height)


def resize_intrinsics(K: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """K of the same camera after resizing its image from ``from_size`` to ``to_size`` (width,
    height). Pixel centres sit at integers, so a pixel edge at -0.5 stays at -0.5:
    u' + 0.5 = s (u + 0.5)."""
    sx, sy = to_size[0] / from_size[0], to_size[1] / from_size[1]
    K = np.asarray(K, dtype=np.float64)
    return intrinsics(sx * K[0, 0], sy * K[1, 1], sx * (K[0, 2] + 0.5) - 0.5, sy * (K[1, 2] + 0.5) - 0.5)


def intrinsics(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """The 3x3 matrix K of a pinhole camera."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def look_at(eye, target, up=WORLD_UP) -> np.ndarray:
    """World->camera 4x4 (OpenCV axes) of a camera at ``eye`` looking at ``target``; the image's
    "up" (-y) is as close to ``up`` as the viewing direction allows."""
    eye = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye
    norm = np.linalg.norm(forward)
    if not np.isfinite(norm) or norm < 1e-9:
        raise ConfigError(f"look_at: eye {eye.tolist()} and target {np.asarray(target).tolist()} coincide")
    forward /= norm
    right = np.cross(forward, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(right) < 1e-6:
        raise ConfigError(f"look_at: viewing direction {forward.tolist()} is parallel to up {list(up)}")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    cam_to_world = np.eye(4)
    cam_to_world[:3, :3] = np.stack([right, down, forward], axis=1)
    cam_to_world[:3, 3] = eye
    return invert_rigid(cam_to_world)


def invert_rigid(transform: np.ndarray) -> np.ndarray:
    """Inverse of a 4x4 rigid transform (rotation + translation)."""
    out = np.eye(4)
    rot = transform[:3, :3]
    out[:3, :3] = rot.T
    out[:3, 3] = -rot.T @ transform[:3, 3]
    return out


@dataclass(frozen=True, eq=False)
class Camera:
    """A pinhole camera: intrinsics ``K`` (pixels), extrinsics ``world_to_cam`` (OpenCV axes)."""

    K: np.ndarray
    world_to_cam: np.ndarray = field(default_factory=lambda: np.eye(4))
    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    #: (width, height) of the frame these images are a resize of; keypoint maps are drawn there and
    #: resized nearest, as PAM's loaders did. None: the image itself (square pixels).
    canvas: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        check_resolution(self.width, self.height)
        if self.canvas is not None:
            size = tuple(self.canvas) if isinstance(self.canvas, (tuple, list)) else ()
            if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in size):
                raise ConfigError(f"camera canvas must be two positive integers (width, height), got {self.canvas!r}")
            cw, ch = int(size[0]), int(size[1])
            object.__setattr__(self, "canvas", None if (cw, ch) == (self.width, self.height) else (cw, ch))
        K = np.asarray(self.K, dtype=np.float64)
        T = np.asarray(self.world_to_cam, dtype=np.float64)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)):
            raise ConfigError(f"camera K must be a finite 3x3 matrix, got shape {K.shape}")
        if K[0, 0] <= 0 or K[1, 1] <= 0 or K[0, 1] != 0 or np.any(K[2] != (0, 0, 1)) or K[1, 0] != 0:
            raise ConfigError(f"camera K must be [[fx,0,cx],[0,fy,cy],[0,0,1]] with fx, fy > 0, got {K.tolist()}")
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise ConfigError(f"camera world_to_cam must be a finite 4x4 matrix, got shape {T.shape}")
        rot = T[:3, :3]
        if not np.allclose(rot @ rot.T, np.eye(3), atol=1e-6) or np.linalg.det(rot) < 0 or np.any(T[3] != (0, 0, 0, 1)):
            raise ConfigError("camera world_to_cam must be a rigid transform (rotation + translation)")
        object.__setattr__(self, "K", K)
        object.__setattr__(self, "world_to_cam", T)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def from_focal(cls, focal: float = DEXYCB_FOCAL, width: int = DEFAULT_WIDTH, height: int = DEFAULT_HEIGHT,
                   world_to_cam=None, principal=None) -> "Camera":
        """Square pixels of ``focal`` pixels; principal point at the image centre unless given."""
        cx, cy = principal if principal is not None else (width / 2.0, height / 2.0)
        return cls(intrinsics(focal, focal, cx, cy), np.eye(4) if world_to_cam is None else world_to_cam,
                   width, height)

    @classmethod
    def default(cls, world_to_cam=None) -> "Camera":
        """Square pixels at PAM's 720x480 video size with DexYCB's focal length (615 px: ~61 deg
        across, ~43 deg down); ``Camera.pam`` is PAM's training geometry."""
        return cls.from_focal(DEXYCB_FOCAL, DEFAULT_WIDTH, DEFAULT_HEIGHT, world_to_cam)

    @classmethod
    def dexycb(cls, world_to_cam=None, focal: float = DEXYCB_FOCAL) -> "Camera":
        """A DexYCB-like 640x480 camera (fx = fy = 615, principal point at the centre)."""
        return cls.from_focal(focal, *DEXYCB_SIZE, world_to_cam)

    @classmethod
    def pam(cls, world_to_cam=None, focal: float = DEXYCB_FOCAL, width: int = DEFAULT_WIDTH,
            height: int = DEFAULT_HEIGHT) -> "Camera":
        """PAM's training geometry: a DexYCB-like frame of square ``focal``-pixel pixels
        (``preset_canvas``, 640x480 for 720x480) stretched to ``width`` x ``height``, so fx = 1.125 fy."""
        return cls.preset("pam", focal, width, height, world_to_cam)

    @classmethod
    def preset(cls, name: str, focal: float = DEXYCB_FOCAL, width: int = DEFAULT_WIDTH,
               height: int = DEFAULT_HEIGHT, world_to_cam=None) -> "Camera":
        """A camera of preset ``name`` (``CAMERA_PRESETS``): ``focal`` pixels of the canvas, the
        principal point at the canvas centre."""
        canvas = preset_canvas(name, width, height)
        K = resize_intrinsics(intrinsics(focal, focal, canvas[0] / 2.0, canvas[1] / 2.0), canvas, (width, height))
        return cls(K, np.eye(4) if world_to_cam is None else world_to_cam, width, height, canvas)

    def resized(self, width: int, height: int) -> "Camera":
        """This camera with its image resized to ``width`` x ``height`` (K exact, see
        ``resize_intrinsics``); keypoint maps stay drawn on this camera's canvas."""
        K = resize_intrinsics(self.K, (self.width, self.height), (width, height))
        return Camera(K, self.world_to_cam, width, height, self.canvas or (self.width, self.height))

    def with_pose(self, world_to_cam) -> "Camera":
        return replace(self, world_to_cam=np.asarray(world_to_cam, dtype=np.float64))

    def looking_at(self, eye, target, up=WORLD_UP) -> "Camera":
        """This camera moved to ``eye`` and aimed at ``target``."""
        return self.with_pose(look_at(eye, target, up))

    # --- properties ---------------------------------------------------------------------------

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    @property
    def cam_to_world(self) -> np.ndarray:
        return invert_rigid(self.world_to_cam)

    @property
    def position(self) -> np.ndarray:
        """Camera centre in the world frame."""
        return self.cam_to_world[:3, 3]

    # --- geometry -----------------------------------------------------------------------------

    def world_to_camera(self, points) -> np.ndarray:
        """Points (..., 3) from the world frame to the camera frame."""
        p = np.asarray(points, dtype=np.float64)
        return p @ self.world_to_cam[:3, :3].T + self.world_to_cam[:3, 3]

    def camera_to_world(self, points) -> np.ndarray:
        """Points (..., 3) from the camera frame to the world frame."""
        p = np.asarray(points, dtype=np.float64)
        c2w = self.cam_to_world
        return p @ c2w[:3, :3].T + c2w[:3, 3]

    def pose_to_camera(self, pose_world) -> np.ndarray:
        """Rigid poses (..., 3 or 4, 4) world -> camera frame; returns the same leading shape with
        3x4 matrices (DexYCB's ``pose_y`` layout)."""
        pose = np.asarray(pose_world, dtype=np.float64)
        rot = self.world_to_cam[:3, :3] @ pose[..., :3, :3]
        trans = pose[..., :3, 3] @ self.world_to_cam[:3, :3].T + self.world_to_cam[:3, 3]
        return np.concatenate([rot, trans[..., None]], axis=-1)

    def project_camera(self, points_cam) -> tuple[np.ndarray, np.ndarray]:
        """Camera-frame points (..., 3) -> pixel coordinates (..., 2) and depth z (...).
        Points at or behind the camera plane get NaN pixel coordinates."""
        p = np.asarray(points_cam, dtype=np.float64)
        z = p[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            safe = np.where(z > 1e-9, z, np.nan)
            u = self.fx * p[..., 0] / safe + self.cx
            v = self.fy * p[..., 1] / safe + self.cy
        return np.stack([u, v], axis=-1), z

    def project(self, points_world) -> tuple[np.ndarray, np.ndarray]:
        """World points (..., 3) -> pixel coordinates (..., 2) (OpenCV: pixel centres at integers)
        and depth along the optical axis z (...)."""
        return self.project_camera(self.world_to_camera(points_world))

    def pixel_rays(self) -> np.ndarray:
        """(H, W, 3) camera-frame rays with z = 1 through every pixel centre (depth * ray = point)."""
        u = (np.arange(self.width, dtype=np.float64) - self.cx) / self.fx
        v = (np.arange(self.height, dtype=np.float64) - self.cy) / self.fy
        rays = np.ones((self.height, self.width, 3))
        rays[..., 0] = u[None, :]
        rays[..., 1] = v[:, None]
        return rays

    # --- MuJoCo -------------------------------------------------------------------------------

    def gl_frustum(self, znear: float) -> dict[str, float]:
        """The off-centre OpenGL frustum (MuJoCo ``mjvGLCamera`` fields) that reproduces K exactly:
        window coordinates put pixel centres at +0.5, OpenGL's y points up."""
        ccx, ccy = self.cx + 0.5, self.cy + 0.5
        left = -znear * ccx / self.fx
        right = znear * (self.width - ccx) / self.fx
        return {
            "frustum_center": 0.5 * (left + right),
            "frustum_width": 0.5 * (right - left),
            "frustum_top": znear * ccy / self.fy,
            "frustum_bottom": -znear * (self.height - ccy) / self.fy,
        }

    def mujoco_attributes(self) -> dict:
        """Attributes of an MJCF/MjSpec ``<camera>`` in the world body that renders exactly this camera.

        MuJoCo's camera looks along its -z with y up (OpenCV's y and z flipped). Its principal
        point is an offset from the image centre in window coordinates, measured so that a
        positive offset moves the optical axis left/up: offset = (W/2, H/2) - (cx, cy) - 0.5.
        Sensor size only fixes the pixel pitch, so one micrometre per pixel is used.
        """
        cam_to_world = self.cam_to_world
        mj_rot = cam_to_world[:3, :3] @ np.diag([1.0, -1.0, -1.0])
        quat = np.empty(4)
        import mujoco  # local: keeps camera maths importable without MuJoCo

        mujoco.mju_mat2Quat(quat, mj_rot.reshape(-1))
        return {
            "pos": cam_to_world[:3, 3].copy(),
            "quat": quat,
            "resolution": [self.width, self.height],
            "focal_pixel": [self.fx, self.fy],
            "principal_pixel": [self.width / 2.0 - (self.cx + 0.5), self.height / 2.0 - (self.cy + 0.5)],
            "sensor_size": [self.width * 1e-6, self.height * 1e-6],
        }

    def add_to_spec(self, spec, name: str = "pam_camera"):
        """Add this camera to ``spec.worldbody`` (an ``mujoco.MjSpec``) and return the new camera."""
        cam = spec.worldbody.add_camera(name=name)
        for key, value in self.mujoco_attributes().items():
            setattr(cam, key, value)
        return cam


@dataclass(frozen=True)
class CameraRange:
    """Where ``sample_camera`` may put the camera, around a target point (world frame, z up)."""

    distance: tuple[float, float] = (0.45, 0.75)  # metres from the (jittered) target
    azimuth_deg: tuple[float, float] = (-180.0, 180.0)  # around world z, 0 = looking along -x
    elevation_deg: tuple[float, float] = (20.0, 65.0)  # above the horizontal
    roll_deg: tuple[float, float] = (-10.0, 10.0)  # about the optical axis
    target_jitter: float = 0.03  # metres, uniform per axis
    focal: float = DEXYCB_FOCAL  # pixels
    focal_jitter: float = 0.1  # relative, uniform in [1 - j, 1 + j]
    width: int = DEFAULT_WIDTH
    height: int = DEFAULT_HEIGHT
    #: ``CAMERA_PRESETS``: "pam" (PAM's stretched DexYCB geometry; ``focal`` is in canvas pixels)
    #: for PAM's released weights, "square" (square pixels) for one's own models.
    preset: str = "pam"

    def __post_init__(self) -> None:
        check_resolution(self.width, self.height)
        check_preset(self.preset)
        for name in ("distance", "azimuth_deg", "elevation_deg", "roll_deg"):
            lo, hi = getattr(self, name)
            if not lo <= hi:
                raise ConfigError(f"CameraRange.{name}: expected (low, high) with low <= high, got {(lo, hi)}")
        if self.distance[0] <= 0:
            raise ConfigError(f"CameraRange.distance must be positive, got {self.distance}")
        if not (-90 < self.elevation_deg[0] and self.elevation_deg[1] < 90):
            raise ConfigError(f"CameraRange.elevation_deg must lie in (-90, 90), got {self.elevation_deg}")
        if not 0 <= self.focal_jitter < 1 or self.focal <= 0 or self.target_jitter < 0:
            raise ConfigError("CameraRange: focal must be > 0, focal_jitter in [0, 1), target_jitter >= 0")


def sample_camera(rng: np.random.Generator, target, camera_range: CameraRange | None = None) -> Camera:
    """A random camera looking at ``target`` (world frame) within ``camera_range``."""
    r = camera_range or CameraRange()
    target = np.asarray(target, dtype=np.float64) + rng.uniform(-r.target_jitter, r.target_jitter, 3)
    dist = rng.uniform(*r.distance)
    az = math.radians(rng.uniform(*r.azimuth_deg))
    el = math.radians(rng.uniform(*r.elevation_deg))
    eye = target + dist * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    w2c = look_at(eye, target)
    roll = math.radians(rng.uniform(*r.roll_deg))
    c, s = math.cos(roll), math.sin(roll)
    roll_rot = np.eye(4)
    roll_rot[:2, :2] = [[c, -s], [s, c]]  # rotation about the camera's optical axis
    focal = r.focal * rng.uniform(1 - r.focal_jitter, 1 + r.focal_jitter)
    return Camera.preset(r.preset, focal, r.width, r.height, roll_rot @ w2c)
