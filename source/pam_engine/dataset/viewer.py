"""``pam view``: one self-contained HTML page showing a dataset's episodes — the photoreal video
(or the sim preview) with its hand keypoints drawn over it, and every condition map beside it,
all playing in sync. Videos are embedded as base64 data URIs (or linked relatively). Every string
taken from the dataset is HTML-escaped; label data goes in as JSON with ``<``, ``>`` and ``&``
escaped, read by the page's own script (docs/design.md, "Bad input and user files")."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from pam_engine.conventions import KEYPOINT_FINGER_COLORS, KEYPOINT_PARENTS
from pam_engine.dataset.format import TMP_PREFIX
from pam_engine.dataset.reader import Episode, list_episodes

#: Condition maps shown beside the main video, in this order.
PANELS = ("depth", "seg", "hand_keypoints", "hand_mesh", "normal")

_STYLE = """
body{font-family:sans-serif;background:#111;color:#ddd;margin:1em}
section.episode{border-top:1px solid #444;padding:.5em 0}
.grid{display:flex;flex-wrap:wrap;gap:6px}
figure{margin:0;position:relative}
figure video,figure canvas{width:360px;display:block}
figure canvas{position:absolute;left:0;top:0;pointer-events:none}
figcaption{font-size:12px;color:#aaa}
.ok{color:#7c7}.fail{color:#e77}
"""

_SCRIPT = """
(function(){
  const sections = Array.from(document.querySelectorAll('section.episode:not(.unreadable)'));
  let rendered = 0, failed = 0;
  function finish(){ document.body.dataset.rendered = String(rendered);
                     document.body.dataset.failed = String(failed); }
  sections.forEach(function(sec){
    const data = JSON.parse(sec.querySelector('script.labels').textContent);
    const videos = Array.from(sec.querySelectorAll('video'));
    const main = sec.querySelector('video.main');
    const canvas = sec.querySelector('canvas.keypoints');
    const ctx = canvas.getContext('2d');
    canvas.width = data.width; canvas.height = data.height;
    function missing(q){ return q[0] === -1 && q[1] === -1; }  // DexYCB's mark for no projection
    function draw(){
      const t = Math.min(data.joint_2d.length - 1, Math.max(0, Math.floor(main.currentTime * data.fps + 1e-3)));
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      const pts = data.joint_2d[t], vis = data.visible[t];
      let drawn = 0;
      ctx.lineWidth = 2;
      for (let i = 1; i < pts.length; i++) {
        const p = data.parents[i]; if (p < 0 || missing(pts[p]) || missing(pts[i])) continue;
        ctx.strokeStyle = data.colors[i]; ctx.beginPath();
        ctx.moveTo(pts[p][0], pts[p][1]); ctx.lineTo(pts[i][0], pts[i][1]); ctx.stroke();
      }
      for (let i = 0; i < pts.length; i++) {
        if (missing(pts[i])) continue;
        ctx.beginPath(); ctx.arc(pts[i][0], pts[i][1], 4, 0, 2 * Math.PI);
        ctx.fillStyle = data.colors[i]; ctx.strokeStyle = data.colors[i];
        if (vis[i]) { ctx.fill(); } else { ctx.stroke(); }
        drawn++;
      }
      canvas.dataset.frame = String(t); canvas.dataset.drawn = String(drawn);
    }
    let pending = videos.length, errors = 0;
    function settle(ok){
      if (!ok) errors++;
      if (--pending === 0) {
        if (errors === 0) { rendered++; sec.dataset.rendered = 'true'; draw(); } else { failed++; }
        finish();
      }
    }
    videos.forEach(function(v){
      if (v.readyState >= 1) { v.dataset.size = v.videoWidth + 'x' + v.videoHeight; settle(true); return; }
      v.addEventListener('loadedmetadata', function(){
        v.dataset.size = v.videoWidth + 'x' + v.videoHeight; settle(true); }, {once: true});
      v.addEventListener('error', function(){ settle(false); }, {once: true});
    });
    main.addEventListener('timeupdate', draw);
    main.addEventListener('seeked', draw);
    main.addEventListener('play', function(){ videos.forEach(function(v){ if (v !== main) { v.currentTime = main.currentTime; v.play(); } }); });
    main.addEventListener('pause', function(){ videos.forEach(function(v){ if (v !== main) v.pause(); }); });
    main.addEventListener('seeked', function(){ videos.forEach(function(v){ if (v !== main) v.currentTime = main.currentTime; }); });
    if ('requestVideoFrameCallback' in main) {
      const tick = function(){ draw(); main.requestVideoFrameCallback(tick); };
      main.requestVideoFrameCallback(tick);
    }
  });
  finish();
})();
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _json_for_script(data) -> str:
    """JSON safe inside a <script> element: no way to close the tag or open a comment."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _inside(path: Path, root: Path) -> Path:
    """``path`` resolved, refused when a symbolic link takes it out of the dataset folder (a
    hostile dataset could otherwise pull local files into a page the user then shares)."""
    resolved = path.resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise ValueError(f"{path.name} is a link to {resolved}, outside the dataset folder; refused")
    return resolved


def _video_src(path: Path, page_dir: Path, embed: bool, root: Path | None = None) -> str:
    if root is not None:
        path = _inside(path, root)
    if embed:
        return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
    return _esc(Path(_relpath(path, page_dir)).as_posix())


def _relpath(path: Path, start: Path) -> str:
    import os

    return os.path.relpath(path.resolve(), start.resolve())


def _keypoint_colors() -> list[str]:
    out = []
    for i in range(21):
        r, g, b = (min(255, int(c) + 35 * (i % 4)) for c in KEYPOINT_FINGER_COLORS[i // 4])
        out.append(f"rgb({r},{g},{b})")
    return out


def _episode_section(ep: Episode, page_dir: Path, embed: bool, root: Path | None = None) -> str:
    if root is not None:
        _inside(ep.path, root)
        _inside(ep.path / "labels.npz", root)
    meta = ep.meta
    labels = ep.labels
    joint_2d = np.round(np.asarray(labels["joint_2d"], dtype=np.float64), 1)
    payload = {
        "fps": float(meta.fps), "width": int(meta.width), "height": int(meta.height),
        "joint_2d": joint_2d.tolist(), "visible": np.asarray(labels["joint_visible"]).astype(int).tolist(),
        "parents": list(KEYPOINT_PARENTS), "colors": _keypoint_colors(),
    }
    main_name = "video" if ep.has_video else "sim_rgb"
    status = "success" if meta.success else f"failure: {meta.failure_reason}"
    objects = ", ".join(f"{i} {n}" for i, n in zip(meta.object_ids, meta.object_names))
    figures = [
        f'<figure><video class="main" controls muted loop playsinline preload="auto" '
        f'src="{_video_src(ep.video_path(main_name), page_dir, embed, root)}"></video>'
        f'<canvas class="keypoints"></canvas><figcaption>{_esc(main_name)} + keypoints</figcaption></figure>'
    ]
    for name in PANELS:
        figures.append(
            f'<figure><video muted loop playsinline preload="auto" '
            f'src="{_video_src(ep.video_path(name), page_dir, embed, root)}"></video>'
            f"<figcaption>{_esc(name)}</figcaption></figure>")
    return (
        f'<section class="episode" data-episode="{_esc(ep.name)}">'
        f"<h2>{_esc(ep.name)}</h2>"
        f'<p class="{"ok" if meta.success else "fail"}">{_esc(status)}</p>'
        f"<p>prompt: {_esc(meta.prompt)}</p><p>objects: {_esc(objects)}; policy: {_esc(meta.policy)} "
        f"{_esc(meta.policy_version)}; seed {_esc(meta.seed)}; {meta.num_frames} frames at {_esc(meta.fps)} fps</p>"
        f'<div class="grid">{"".join(figures)}</div>'
        f'<script type="application/json" class="labels">{_json_for_script(payload)}</script>'
        "</section>"
    )


def write_viewer(root: str | Path, out: str | Path | None = None, max_episodes: int = 20,
                 embed: bool = True) -> tuple[Path, int]:
    """Write the HTML page for dataset ``root`` (default ``root/index.html``); returns its path
    and the number of episodes shown (the first ``max_episodes``, by name)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder {root} does not exist or is not a folder")
    out = Path(out) if out is not None else root / "index.html"
    paths = list_episodes(root)
    total = len(paths)
    sections, shown, skipped = [], 0, []
    for path in paths[: max(0, max_episodes)]:
        try:  # one unreadable episode is marked, the page shows the rest
            sections.append(_episode_section(Episode(path), out.parent, embed, root))
            shown += 1
        except Exception as exc:  # noqa: BLE001 - corrupt npz/json, missing files, refused links
            skipped.append(path.name)
            sections.append(f'<section class="episode unreadable" data-episode="{_esc(path.name)}">'
                            f"<h2>{_esc(path.name)}</h2><p class=\"fail\">not shown: {_esc(type(exc).__name__)}: "
                            f"{_esc(exc)}</p></section>")
    sections = "".join(sections)
    note = f"showing {shown} of {total} episode(s)" + (
        f"; {len(skipped)} unreadable: {', '.join(skipped)}" if skipped else "")
    page = (
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
        f"<title>PAM Engine dataset {_esc(root.resolve().name)}</title><style>{_STYLE}</style></head>"
        f'<body data-rendered="0"><h1>PAM Engine dataset {_esc(root.resolve().name)}</h1><p>{_esc(note)}</p>'
        f"{sections}<script>{_SCRIPT}</script></body></html>"
    )
    tmp = out.with_name(f"{TMP_PREFIX}{out.name}")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out, shown

