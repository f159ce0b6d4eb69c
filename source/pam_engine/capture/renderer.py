"""MuJoCo capture of one frame: RGB preview, metric depth, DexYCB segmentation and the shaded
hand-only image, with MuJoCo's low-level renderer through EGL.

Scene contract (the scene builder follows it):
- the hand's visible surface is a ``<skin>`` bound to the hand bodies;
- collision geoms (hand and objects) are in geom group 3 and are never drawn (nor 4, 5);
- object visual meshes are geoms in group 2, table/floor in groups 0-1 (background, id 0);
- textures whose name starts with ``pam_random`` may be repainted by ``PreviewStyle``.

Per frame: one ``mjv_updateScene``; one render read back as RGB *and* depth; the same scene
re-rendered flat with segment-id colours; a second small scene holding only the hand skin(s),
rendered with fixed material and light, no shadows, reflections or skybox.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from pam_engine.capture.camera import Camera
from pam_engine.capture.frames import FrameCapture
from pam_engine.capture.style import HandMeshStyle, PreviewStyle, paint_random_textures
from pam_engine.conventions import SEG_HAND
from pam_engine.errors import ConfigError

import mujoco

from pam_engine.capture.gl import configure_headless_gl

#: Geom groups drawn (0-1 table/floor, 2 object visuals); 3-5 (collision) never are.
VISIBLE_GEOM_GROUPS = (1, 1, 1, 0, 0, 0)


@dataclass
class SegLookup:
    """How MuJoCo objects map to DexYCB segmentation ids; anything not listed is background (0).

    ``geoms``: geom id -> seg id; ``skins``: skin id -> seg id. Skins mapped to the hand id (255)
    make up the hand-only image (all skins if none is).
    """

    geoms: dict[int, int] = field(default_factory=dict)
    skins: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind in ("geoms", "skins"):
            for key, value in getattr(self, kind).items():
                if not (isinstance(value, (int, np.integer)) and 0 <= int(value) <= 255):
                    raise ConfigError(f"SegLookup.{kind}[{key}] = {value!r}: expected a seg id in 0..255")

    @classmethod
    def from_names(cls, model: "mujoco.MjModel", geoms: dict[str, int] | None = None,
                   skins: dict[str, int] | None = None) -> "SegLookup":
        """Build from geom/skin names; an unknown name raises ConfigError."""
        def ids(names: dict[str, int], obj: int, kind: str) -> dict[int, int]:
            out = {}
            for name, seg in (names or {}).items():
                i = mujoco.mj_name2id(model, obj, name)
                if i < 0:
                    raise ConfigError(f"SegLookup: the model has no {kind} named {name!r}")
                out[i] = int(seg)
            return out

        return cls(ids(geoms, mujoco.mjtObj.mjOBJ_GEOM, "geom"), ids(skins, mujoco.mjtObj.mjOBJ_SKIN, "skin"))

    def hand_skins(self, nskin: int) -> list[int]:
        hand = [i for i, s in self.skins.items() if s == SEG_HAND]
        return hand if hand else list(range(nskin))

    def check(self, model: "mujoco.MjModel") -> None:
        for i in self.geoms:
            if not 0 <= i < model.ngeom:
                raise ConfigError(f"SegLookup.geoms: geom id {i} is outside the model's 0..{model.ngeom - 1}")
        for i in self.skins:
            if not 0 <= i < model.nskin:
                raise ConfigError(f"SegLookup.skins: skin id {i} is outside the model's 0..{model.nskin - 1}")


def _gl_context(width: int, height: int):
    """An offscreen OpenGL context of the backend named by MUJOCO_GL (EGL by default), chosen
    here rather than at ``import mujoco`` time so that importing MuJoCo first does not matter."""
    backend = configure_headless_gl()
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        GLContext = mujoco.GLContext
    return GLContext(width, height)


_SHARED = threading.local()


def _shared_gl_context(width: int, height: int):
    """(context, owned): with EGL, one context per thread that every capture in it reuses
    (surfaceless, so the size does not matter): a new context per episode cost ~0.1 s of CPU,
    and the CPU renderer compiled its shaders again in each. Other backends size their buffer
    by the context, so each capture gets its own."""
    if configure_headless_gl() != "egl":
        return _gl_context(width, height), True
    context = getattr(_SHARED, "egl", None)
    if context is None:
        context = _SHARED.egl = _gl_context(width, height)
    return context, False


def _scene_option(geom_groups, skin_groups) -> "mujoco.MjvOption":
    opt = mujoco.MjvOption()
    opt.geomgroup[:] = geom_groups
    opt.skingroup[:] = skin_groups
    for flag in (mujoco.mjtVisFlag.mjVIS_TENDON, mujoco.mjtVisFlag.mjVIS_FLEXVERT,
                 mujoco.mjtVisFlag.mjVIS_FLEXEDGE, mujoco.mjtVisFlag.mjVIS_FLEXFACE,
                 mujoco.mjtVisFlag.mjVIS_FLEXSKIN):
        opt.flags[flag] = 0
    opt.flags[mujoco.mjtVisFlag.mjVIS_SKIN] = 1
    return opt


def _set_flags(scene, **flags: bool) -> None:
    for name, value in flags.items():
        scene.flags[getattr(mujoco.mjtRndFlag, f"mjRND_{name.upper()}")] = int(value)


def _set_light(light, *, direction, pos, ambient, diffuse, specular, castshadow) -> None:
    direction = np.asarray(direction, dtype=np.float64)
    light.type = mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
    light.dir[:] = direction / np.linalg.norm(direction)
    light.pos[:] = pos
    light.ambient[:] = ambient
    light.diffuse[:] = diffuse
    light.specular[:] = specular
    light.castshadow = int(castshadow)
    light.headlight = 0
    light.attenuation[:] = (1.0, 0.0, 0.0)
    # every other field too, as mjv_updateScene fills a model light: a scene slot beyond the
    # model's lights is uninitialised memory, and a stray texid or intensity there shaded a few
    # pixels differently from run to run
    light.id = -1
    light.texid = -1
    light.intensity = 0.0
    light.range = 10.0
    light.bulbradius = 0.02
    light.cutoff = 0.0
    light.exponent = 0.0
    light.softness = 0.0


class MujocoCapture:
    """Captures ``FrameCapture``s of an ``MjModel``/``MjData`` positioned by the caller.

    One instance owns one EGL context and MuJoCo render context; call ``close()`` (or use it
    as a context manager) to free them. The offscreen buffer is the model's
    ``vis.global_.offwidth/offheight`` (raised to the camera size if smaller), or ``buffer``
    (width, height) when given: a capture that keeps one camera passes the camera's size, since
    every pass clears the whole buffer (a 1280x720 buffer behind a 720x480 camera cost a third
    of the render time on the CPU renderer); the pixels are the same.
    """

    def __init__(self, model: "mujoco.MjModel", camera: Camera, seg_lookup: SegLookup | None = None,
                 preview: PreviewStyle | None = None, hand_style: HandMeshStyle | None = None,
                 multisample: bool = False, profile: bool = False,
                 buffer: tuple[int, int] | None = None, draw_hand: bool = True) -> None:
        """``draw_hand=False`` leaves the hand out of every pass (no skin is drawn: DWM's static
        scene, docs/worldmodels.md); the hand-only image is then black."""
        self.model = model
        #: Seconds spent per pass, summed over captures, when ``profile`` is on (benchmarks).
        self.timings: dict[str, float] = {}
        self._profile = profile
        self.seg_lookup = seg_lookup or SegLookup()
        self.seg_lookup.check(model)
        self.hand_style = hand_style or HandMeshStyle()
        self._camera = camera
        self._gl, self._owns_gl = None, True
        self._con = None
        vis = model.vis.global_
        vis.offwidth = max(vis.offwidth, camera.width)
        vis.offheight = max(vis.offheight, camera.height)
        if buffer is None:
            buffer = (vis.offwidth, vis.offheight)
        if buffer[0] < camera.width or buffer[1] < camera.height:
            raise ConfigError(f"capture buffer {buffer[0]}x{buffer[1]} is smaller than the camera's "
                              f"{camera.width}x{camera.height}")
        self._buffer = (int(buffer[0]), int(buffer[1]))

        try:
            self._gl, self._owns_gl = _shared_gl_context(*self._buffer)
            self._gl.make_current()
            samples, size = model.vis.quality.offsamples, (vis.offwidth, vis.offheight)
            if not multisample:
                model.vis.quality.offsamples = 0  # exact per-pixel agreement of rgb/depth/seg
            vis.offwidth, vis.offheight = self._buffer  # what the render context sizes its buffer by
            try:
                self._con = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
            finally:
                model.vis.quality.offsamples = samples
                vis.offwidth, vis.offheight = size
            mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._con)
            self._con.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        except BaseException:
            self.close()
            raise

        self._scene = mujoco.MjvScene(model, maxgeom=max(1000, 2 * model.ngeom + model.nskin + 10))
        self._hand_scene = mujoco.MjvScene(model, maxgeom=max(16, model.nskin + 1))
        skins = (int(draw_hand),) * 6  # the hand's visible surface is its skin (scene contract)
        self._opt = _scene_option(VISIBLE_GEOM_GROUPS, skins)
        self._hand_opt = _scene_option((0,) * 6, skins)
        self._hand_skins = set(self.seg_lookup.hand_skins(model.nskin))
        self._freecam = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(model, self._freecam)
        self._catmask = int(mujoco.mjtCatBit.mjCAT_STATIC) | int(mujoco.mjtCatBit.mjCAT_DYNAMIC)
        self.set_preview(preview or PreviewStyle())
        self._alloc()

    # --- configuration ------------------------------------------------------------------------

    @property
    def camera(self) -> Camera:
        return self._camera

    def set_camera(self, camera: Camera) -> None:
        """Switch camera (e.g. per episode); a larger image than the first one is refused."""
        width, height = self._buffer
        if camera.width > width or camera.height > height:
            raise ConfigError(
                f"camera {camera.width}x{camera.height} exceeds this capture's buffer "
                f"{width}x{height}; create a new MujocoCapture for it")
        self._camera = camera
        self._alloc()

    def set_preview(self, style: PreviewStyle) -> None:
        """Lighting, colours and textures of the RGB preview (depth/seg/hand image unaffected)."""
        self._preview = style
        if style.texture_seed is not None and self._con is not None:
            self._make_current()
            for texid in paint_random_textures(self.model, style.texture_seed):
                mujoco.mjr_uploadTexture(self.model, self._con, texid)

    def _alloc(self) -> None:
        h, w = self._camera.height, self._camera.width
        self._rect = mujoco.MjrRect(0, 0, w, h)
        self._rgb = np.empty((h, w, 3), np.uint8)
        self._zbuf = np.empty((h, w), np.float32)
        self._segbuf = np.empty((h, w, 3), np.uint8)
        self._handbuf = np.empty((h, w, 3), np.uint8)

    # --- capture ------------------------------------------------------------------------------

    def capture(self, data: "mujoco.MjData", out: FrameCapture | None = None) -> FrameCapture:
        """Render the current state of ``data`` (kinematics already computed by the caller).
        Writes into ``out`` when given (e.g. views of a ``CaptureSequence``)."""
        if self._con is None:
            raise RuntimeError("MujocoCapture.capture called after close()")
        h, w = self._camera.height, self._camera.width
        if out is None:
            out = FrameCapture(np.empty((h, w, 3), np.uint8), np.empty((h, w), np.float32),
                               np.empty((h, w), np.uint8), np.empty((h, w, 3), np.uint8))
        self._make_current()
        m, scn = self.model, self._scene
        clock = time.perf_counter

        # Pass 1: preview RGB + depth from one render.
        t0 = clock()
        mujoco.mjv_updateScene(m, data, self._opt, None, self._freecam, self._catmask, scn)
        self._place_camera(scn)
        self._apply_preview(scn)
        mujoco.mjr_render(self._rect, scn, self._con)
        mujoco.mjr_readPixels(self._rgb, self._zbuf, self._rect, self._con)
        out.rgb[:] = self._rgb[::-1]
        self._metric_depth(self._zbuf[::-1], out.depth)

        # Pass 2: segmentation ids, same scene, flat colours.
        t1 = clock()
        lut = self._segid_lut(scn)
        _set_flags(scn, segment=True, idcolor=True)
        mujoco.mjr_render(self._rect, scn, self._con)
        _set_flags(scn, segment=False, idcolor=False)
        mujoco.mjr_readPixels(self._segbuf, None, self._rect, self._con)
        self._decode_seg(self._segbuf[::-1], lut, out.seg)

        # Pass 3: the hand skin alone, fixed shading.
        t2 = clock()
        hs = self._hand_scene
        mujoco.mjv_updateScene(m, data, self._hand_opt, None, self._freecam, self._catmask, hs)
        self._place_camera(hs)
        self._apply_hand_style(hs)
        mujoco.mjr_render(self._rect, hs, self._con)
        mujoco.mjr_readPixels(self._handbuf, None, self._rect, self._con)
        out.hand_mesh[:] = self._handbuf[::-1]
        if self._profile:
            t3 = clock()
            for key, dt in (("rgb+depth", t1 - t0), ("seg", t2 - t1), ("hand_mesh", t3 - t2)):
                self.timings[key] = self.timings.get(key, 0.0) + dt
        return out

    def _make_current(self) -> None:
        self._gl.make_current()

    def _place_camera(self, scn) -> None:
        cam = self._camera
        c2w = cam.cam_to_world
        znear = self.model.vis.map.znear * self.model.stat.extent
        zfar = self.model.vis.map.zfar * self.model.stat.extent
        frustum = cam.gl_frustum(znear)
        for glcam in scn.camera:
            glcam.pos[:] = c2w[:3, 3]
            glcam.forward[:] = c2w[:3, 2]
            glcam.up[:] = -c2w[:3, 1]
            glcam.orthographic = 0
            glcam.frustum_near = znear
            glcam.frustum_far = zfar
            for key, value in frustum.items():
                setattr(glcam, key, value)

    def _metric_depth(self, zbuf: np.ndarray, out: np.ndarray) -> None:
        """Reverse-Z float depth buffer -> metres along the optical axis; 0 where nothing was hit.
        Uses the float32 coefficients of the projection OpenGL used (glFrustum, reverse Z); the
        float32 arithmetic adds ~1e-7 relative error (0.1 um at 1 m)."""
        extent = self.model.stat.extent
        znear = np.float32(self.model.vis.map.znear * extent)
        zfar = np.float32(self.model.vis.map.zfar * extent)
        c = -(zfar + znear) / (zfar - znear)
        d = -(np.float32(2) * zfar * znear) / (zfar - znear)
        c = np.float32(-0.5) * c - np.float32(0.5)
        d = np.float32(-0.5) * d
        np.add(zbuf, c, out=out)
        np.divide(d, out, out=out)
        out[zbuf <= 0] = 0.0  # cleared to 0 = the far plane: no surface

    def _segid_lut(self, scn) -> np.ndarray:
        """Map from IDCOLOR value (scene geom index + 1; 0 = background) to DexYCB seg id."""
        n = scn.ngeom
        lut = np.zeros(n + 2, np.uint8)  # last entry catches out-of-range colours
        geom_map, skin_map = self.seg_lookup.geoms, self.seg_lookup.skins
        for g in scn.geoms[:n]:
            if g.segid < 0:
                continue
            if g.objtype == mujoco.mjtObj.mjOBJ_GEOM:
                lut[g.segid + 1] = geom_map.get(g.objid, 0)
            elif g.objtype == mujoco.mjtObj.mjOBJ_SKIN:
                lut[g.segid + 1] = skin_map.get(g.objid, 0)
        return lut

    @staticmethod
    def _decode_seg(idcolor: np.ndarray, lut: np.ndarray, out: np.ndarray) -> None:
        """IDCOLOR pixels (value = r + 256 g + 65536 b) -> seg ids through ``lut``."""
        if len(lut) <= 256:  # fewer than 255 scene geoms: the id is the red channel
            table = np.zeros(256, np.uint8)
            table[: len(lut)] = lut
            out[:] = cv2.LUT(np.ascontiguousarray(idcolor[..., 0]), table)
            return
        segid = idcolor.astype(np.int32)
        segid = segid[..., 0] | (segid[..., 1] << 8) | (segid[..., 2] << 16)
        np.take(lut, np.minimum(segid, len(lut) - 1), out=out)

    def _lights(self, scn, lights) -> None:
        scn.nlight = len(lights)
        for light, spec in zip(scn.lights, lights):
            _set_light(light, **spec)

    def _apply_preview(self, scn) -> None:
        style, cam = self._preview, self._camera
        c2w = cam.cam_to_world
        key_dir = np.asarray(style.light_dir, dtype=np.float64)
        lights = [
            dict(direction=key_dir, pos=c2w[:3, 3] - 3.0 * key_dir / np.linalg.norm(key_dir),
                 ambient=(style.ambient,) * 3, diffuse=(style.light_diffuse,) * 3,
                 specular=(style.specular,) * 3, castshadow=style.shadows),
            dict(direction=c2w[:3, 2], pos=c2w[:3, 3], ambient=(0.0,) * 3,
                 diffuse=(style.fill_diffuse,) * 3, specular=(0.0,) * 3, castshadow=False),
        ]
        self._lights(scn, lights)
        _set_flags(scn, shadow=style.shadows, reflection=style.reflections, skybox=style.skybox,
                   fog=False, haze=False, segment=False, idcolor=False)
        if style.geom_rgba or style.skin_rgba:
            for g in scn.geoms[: scn.ngeom]:
                table = style.geom_rgba if g.objtype == mujoco.mjtObj.mjOBJ_GEOM else (
                    style.skin_rgba if g.objtype == mujoco.mjtObj.mjOBJ_SKIN else None)
                if table and g.objid in table:
                    g.rgba[:] = table[g.objid]
                    if style.replace_material:
                        g.matid = -1
                        g.texid = -1

    def _apply_hand_style(self, hs) -> None:
        style, cam = self.hand_style, self._camera
        c2w = cam.cam_to_world
        for g in hs.geoms[: hs.ngeom]:  # the scene holds skins only; other skins become invisible
            if g.objtype == mujoco.mjtObj.mjOBJ_SKIN and g.objid in self._hand_skins:
                g.rgba[:] = style.rgba
                g.matid = -1
                g.texid = -1
                g.emission = style.emission
                g.specular = style.specular
                g.shininess = style.shininess
                g.reflectance = 0.0
            else:
                g.rgba[3] = 0.0  # drawn as transparent: no colour, no depth write
        light_dir = c2w[:3, :3] @ np.asarray(style.light_dir_camera, dtype=np.float64)
        self._lights(hs, [dict(direction=light_dir, pos=c2w[:3, 3], ambient=(style.ambient,) * 3,
                               diffuse=(style.diffuse,) * 3, specular=(style.specular,) * 3,
                               castshadow=False)])
        _set_flags(hs, shadow=False, reflection=False, skybox=False, fog=False, haze=False,
                   segment=False, idcolor=False)

    # --- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Free the MuJoCo render context, then the GL context if this capture owns one (idempotent)."""
        if self._con is not None:
            if self._gl is not None:
                self._gl.make_current()
            self._con.free()
            self._con = None
        if self._gl is not None:
            if self._owns_gl:
                self._gl.free()
            self._gl = None

    def __enter__(self) -> "MujocoCapture":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing left to free safely
            pass
