"""``pam view``: one self-contained HTML page showing a dataset's episodes — the photoreal video
(or the sim preview) with its hand keypoints drawn over it (a toggle), and every other video beside
it, all following one scrubber per episode (and the main video while it plays); a plot of the
per-finger contacts, object heights and QA error over time; the QA figures of ``qa.json``; and
the candidate ranking of ``score_actions.json`` when the dataset has one. No network: inline
script and style only. Videos are embedded as base64 data URIs (or linked relatively). Every string
taken from the dataset is HTML-escaped; label data goes in as JSON with ``<``, ``>`` and ``&``
escaped, read by the page's own script (docs/design.md, "Bad input and user files")."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import numpy as np

from pam_engine.conventions import KEYPOINT_FINGER_COLORS, KEYPOINT_PARENTS
from pam_engine.dataset.format import MAP_VIDEOS, QA_FILE, TMP_PREFIX, WORLD_MODEL_VIDEOS
from pam_engine.dataset.reader import Episode, list_episodes, read_qa

#: Condition maps shown beside the main video, in this order.
PANELS = ("depth", "seg", "hand_keypoints", "hand_mesh", "normal")

_STYLE = """
body{font-family:sans-serif;background:#111;color:#ddd;margin:1em}
section.episode{border-top:1px solid #444;padding:.5em 0}
.grid{display:flex;flex-wrap:wrap;gap:6px}
figure{margin:0;position:relative}
figure video,figure canvas.keypoints{width:360px;display:block}
figure canvas.keypoints{position:absolute;left:0;top:0;pointer-events:none}
figcaption{font-size:12px;color:#aaa}
.controls{display:flex;gap:10px;align-items:center;margin:4px 0}
.controls input.scrubber{width:480px}
canvas.plot{background:#1b1b1b;display:block;margin-top:4px}
table{border-collapse:collapse;font-size:13px;margin:4px 0}
td,th{border:1px solid #444;padding:2px 6px;text-align:left}
.ok{color:#7c7}.fail{color:#e77}
"""

_SCRIPT = """
(function(){
  const sections = Array.from(document.querySelectorAll('section.episode:not(.unreadable)'));
  const selftest = /[#&]selftest=(\\d+)/.exec(location.hash);
  let rendered = 0, failed = 0;
  function finish(){ document.body.dataset.rendered = String(rendered);
                     document.body.dataset.failed = String(failed); }
  sections.forEach(function(sec){
    const data = JSON.parse(sec.querySelector('script.labels').textContent);
    const videos = Array.from(sec.querySelectorAll('video'));
    const main = sec.querySelector('video.main');
    const canvas = sec.querySelector('canvas.keypoints');
    const ctx = canvas.getContext('2d');
    const scrub = sec.querySelector('input.scrubber');
    const overlay = sec.querySelector('input.overlay');
    const play = sec.querySelector('button.play');
    const label = sec.querySelector('span.frame');
    const plot = sec.querySelector('canvas.plot');
    const T = data.joint_2d.length;
    let frame = 0;
    canvas.width = data.width; canvas.height = data.height;
    function clamp(f){ return Math.min(T - 1, Math.max(0, f)); }
    function frameOf(time){ return clamp(Math.floor(time * data.fps + 1e-3)); }
    function timeOf(f){ return (f + 0.5) / data.fps; }  // the middle of frame f: no rounding onto its neighbour
    function missing(q){ return q[0] === -1 && q[1] === -1; }  // DexYCB's mark for no projection
    function draw(){
      const t = frame;
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      canvas.dataset.frame = String(t);
      if (!overlay.checked) { canvas.dataset.drawn = '0'; return; }
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
      canvas.dataset.drawn = String(drawn);
    }
    function drawPlot(){
      // rows: the six contacts (filled where touching), then object height and QA error lines
      const g = plot.getContext('2d'), W = plot.width, H = plot.height, left = 60, rowH = 9;
      const x = function(f){ return left + (W - left - 8) * (T > 1 ? f / (T - 1) : 0); };
      const dx = (W - left - 8) / Math.max(1, T - 1);
      g.clearRect(0, 0, W, H); g.font = '10px sans-serif'; g.textBaseline = 'middle';
      let contactCells = 0;
      data.contact_names.forEach(function(name, k){
        const y = 4 + k * (rowH + 2);
        g.fillStyle = '#aaa'; g.fillText(name, 2, y + rowH / 2);
        g.fillStyle = '#2a2a2a'; g.fillRect(left, y, W - left - 8, rowH);
        g.fillStyle = data.contact_colors[k];
        for (let f = 0; f < T; f++) if (data.contacts[f][k]) { g.fillRect(x(f) - dx / 2, y, Math.max(1, dx), rowH); contactCells++; }
      });
      const top = 4 + data.contact_names.length * (rowH + 2) + 6, bottom = H - 14;
      function line(values, color, name, row){
        const finite = values.filter(function(v){ return v !== null; });
        if (!finite.length) return 0;
        let lo = Math.min.apply(null, finite), hi = Math.max.apply(null, finite);
        if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
        g.strokeStyle = color; g.lineWidth = 1.5; g.beginPath();
        let pen = false;
        values.forEach(function(v, f){
          if (v === null) { pen = false; return; }
          const y = bottom - (bottom - top) * (v - lo) / (hi - lo);
          if (pen) g.lineTo(x(f), y); else g.moveTo(x(f), y);
          pen = true;
        });
        g.stroke(); g.fillStyle = color; g.fillText(name, 2, top + 6 + 12 * row);
        return 1;
      }
      let lines = 0;
      data.heights.forEach(function(series, k){ lines += line(series, data.height_colors[k % data.height_colors.length],
                                                               data.height_names[k], k); });
      if (data.qa_error) lines += line(data.qa_error, '#f6c', 'QA px', data.heights.length);
      g.strokeStyle = '#fff'; g.lineWidth = 1; g.beginPath(); g.moveTo(x(frame), 0); g.lineTo(x(frame), H); g.stroke();
      g.fillStyle = '#aaa'; g.fillText('frame ' + frame + ' / ' + (T - 1), left, H - 6);
      plot.dataset.cursor = String(frame); plot.dataset.lines = String(lines);
      plot.dataset.contactCells = String(contactCells);
    }
    function show(f, seekAll){
      frame = clamp(f);
      scrub.value = String(frame); label.textContent = 'frame ' + frame;
      if (seekAll) videos.forEach(function(v){ v.currentTime = timeOf(frame); });
      draw(); drawPlot();
    }
    function pauseAll(){ videos.forEach(function(v){ v.pause(); }); play.textContent = 'play'; }
    scrub.max = String(T - 1);
    scrub.addEventListener('input', function(){ pauseAll(); show(parseInt(scrub.value, 10), true); });
    overlay.addEventListener('change', draw);
    play.addEventListener('click', function(){
      if (main.paused) {
        videos.forEach(function(v){ if (v !== main) v.currentTime = main.currentTime; v.play(); });
        play.textContent = 'pause';
      } else { pauseAll(); }
    });
    function follow(){  // while the main video plays (or is seeked by its own controls) the rest follow it
      const f = frameOf(main.currentTime);
      if (f !== frame) show(f, false);
      videos.forEach(function(v){
        if (v !== main && Math.abs(v.currentTime - main.currentTime) > 0.5 / data.fps) v.currentTime = main.currentTime;
      });
    }
    main.addEventListener('timeupdate', follow);
    main.addEventListener('seeked', follow);
    if ('requestVideoFrameCallback' in main) {
      const tick = function(){ follow(); main.requestVideoFrameCallback(tick); };
      main.requestVideoFrameCallback(tick);
    }
    let pending = videos.length, errors = 0;
    function settle(ok){
      if (!ok) errors++;
      if (--pending === 0) {
        if (errors === 0) { rendered++; sec.dataset.rendered = 'true'; show(0, false); if (selftest) runSelftest(); }
        else { failed++; }
        finish();
      }
    }
    function runSelftest(){
      // what a user does: drag the scrubber, then switch the overlay off and on (tests read the DOM)
      const target = clamp(parseInt(selftest[1], 10));
      let seeking = videos.length;
      videos.forEach(function(v){
        v.addEventListener('seeked', function(){
          v.dataset.seeked = v.currentTime.toFixed(4);
          if (--seeking === 0) sec.dataset.selftest = 'seeked';
        }, {once: true});
      });
      scrub.value = String(target); scrub.dispatchEvent(new Event('input'));
      videos.forEach(function(v){ v.dataset.time = v.currentTime.toFixed(4); });  // the seek each video started
      const on = canvas.dataset.drawn;
      overlay.checked = false; overlay.dispatchEvent(new Event('change'));
      sec.dataset.overlayOff = canvas.dataset.drawn;
      overlay.checked = true; overlay.dispatchEvent(new Event('change'));
      sec.dataset.overlayOn = canvas.dataset.drawn + '/' + on;
    }
    videos.forEach(function(v){
      if (v.readyState >= 1) { v.dataset.size = v.videoWidth + 'x' + v.videoHeight; settle(true); return; }
      v.addEventListener('loadedmetadata', function(){
        v.dataset.size = v.videoWidth + 'x' + v.videoHeight; settle(true); }, {once: true});
      v.addEventListener('error', function(){ settle(false); }, {once: true});
    });
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


#: Names of the six contact flags of ``labels.contacts`` (README, labels table) and their colours.
CONTACT_NAMES = ("thumb", "index", "middle", "ring", "little", "palm")
_CONTACT_COLORS = ("#8b35ff", "#0038ff", "#2b8ced", "#25a824", "#939300", "#c0603a")
_HEIGHT_COLORS = ("#4fc3f7", "#ffb74d", "#aed581", "#e57373")
#: The ranking ``pam score-actions`` writes at the dataset root (shown when present).
SCORE_ACTIONS_FILE = "score_actions.json"


def _num(value, digits: int = 1, percent: bool = False) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value):
        return "-"
    return f"{100 * value:.0f}%" if percent else f"{value:.{digits}f}"


def _qa_block(qa: dict | None) -> str:
    """The QA figures of ``qa.json`` as a table (every value escaped), or a line saying none."""
    if qa is None:
        return '<div class="qa" data-qa="none"><p>QA: not checked (run <code>pam qa</code>)</p></div>'
    passed = qa.get("passed") is True
    pck = qa.get("pck") if isinstance(qa.get("pck"), dict) else {}
    temporal = qa.get("temporal") if isinstance(qa.get("temporal"), dict) else {}
    flick = qa.get("flicker") if isinstance(qa.get("flicker"), dict) else {}
    worst = qa.get("worst_frames") if isinstance(qa.get("worst_frames"), list) else []
    rows = [
        ("video", _esc(qa.get("video", "?"))), ("detector", _esc(qa.get("detector", "?"))),
        ("detection rate", _num(qa.get("detection_rate"), percent=True)),
        ("keypoint error", f"{_num(qa.get('keypoint_error_px'))} px"),
        ("PCK@5/10/20 px", " / ".join(_num(pck.get(k), 2) for k in ("5", "10", "20"))),
        ("best lag", _esc(temporal.get("best_lag", "-"))),
        ("hand flicker (hand / background)", f"{_num(flick.get('hand'), 2)} / {_num(flick.get('background'), 2)}"),
        ("worst frames", ", ".join(f"{_esc(w.get('frame'))} ({_num(w.get('error_px'))} px)"
                                   for w in worst[:5] if isinstance(w, dict)) or "-"),
    ]
    failures = qa.get("failures") if isinstance(qa.get("failures"), list) else []
    body = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in rows)
    reasons = "".join(f"<li>{_esc(r)}</li>" for r in failures)
    return (f'<div class="qa" data-qa="{"passed" if passed else "rejected"}">'
            f'<p class="{"ok" if passed else "fail"}">QA: {"passed" if passed else "REJECTED"}</p>'
            f"<table>{body}</table>" + (f"<ul>{reasons}</ul>" if reasons else "") + "</div>")


def _series(values: np.ndarray, digits: int) -> list:
    return [None if not np.isfinite(v) else round(float(v), digits) for v in np.asarray(values, np.float64)]


def _episode_section(ep: Episode, page_dir: Path, embed: bool, root: Path | None = None) -> str:
    if root is not None:
        _inside(ep.path, root)
        _inside(ep.path / "labels.npz", root)
        if (ep.path / QA_FILE).exists():
            _inside(ep.path / QA_FILE, root)
    meta = ep.meta
    labels = ep.labels
    joint_2d = np.round(np.asarray(labels["joint_2d"], dtype=np.float64), 1)
    heights = np.asarray(labels["pose_y_world"], dtype=np.float64)[..., 2, 3]  # (T, n_obj) world z, metres
    qa = read_qa(ep.path)
    qa_error = qa.get("per_frame_error_px") if qa else None
    if not (isinstance(qa_error, list) and len(qa_error) == meta.num_frames
            and all(v is None or isinstance(v, (int, float)) for v in qa_error)):
        qa_error = None
    payload = {
        "fps": float(meta.fps), "width": int(meta.width), "height": int(meta.height),
        "joint_2d": joint_2d.tolist(), "visible": np.asarray(labels["joint_visible"]).astype(int).tolist(),
        "parents": list(KEYPOINT_PARENTS), "colors": _keypoint_colors(),
        "contacts": np.asarray(labels["contacts"]).astype(int).tolist(), "contact_names": list(CONTACT_NAMES),
        "contact_colors": list(_CONTACT_COLORS),
        "heights": [_series(heights[:, k], 4) for k in range(heights.shape[1])],
        "height_names": [f"{n} z" for n in meta.object_names][: heights.shape[1]]
        + [f"object {k} z" for k in range(len(meta.object_names), heights.shape[1])],
        "height_colors": list(_HEIGHT_COLORS),
        "qa_error": None if qa_error is None else [None if v is None else round(float(v), 2) for v in qa_error],
    }
    main_name = "video" if ep.has_video else "sim_rgb"
    panels = (("sim_rgb",) if main_name == "video" else ()) + PANELS + tuple(
        n for n in (*MAP_VIDEOS, *WORLD_MODEL_VIDEOS) if n not in PANELS and n != "sim_rgb"
        and ep.video_path(n).is_file())
    status = "success" if meta.success else f"failure: {meta.failure_reason}"
    objects = ", ".join(f"{i} {n}" for i, n in zip(meta.object_ids, meta.object_names))
    figures = [
        f'<figure><video class="main" muted loop playsinline preload="auto" '
        f'src="{_video_src(ep.video_path(main_name), page_dir, embed, root)}"></video>'
        f'<canvas class="keypoints"></canvas><figcaption>{_esc(main_name)} + keypoints</figcaption></figure>'
    ]
    for name in panels:
        figures.append(
            f'<figure><video muted loop playsinline preload="auto" data-name="{_esc(name)}" '
            f'src="{_video_src(ep.video_path(name), page_dir, embed, root)}"></video>'
            f"<figcaption>{_esc(name)}</figcaption></figure>")
    controls = ('<div class="controls"><button class="play" type="button">play</button>'
                f'<input class="scrubber" type="range" min="0" max="{meta.num_frames - 1}" step="1" value="0" '
                'aria-label="frame">'
                '<span class="frame">frame 0</span>'
                '<label><input class="overlay" type="checkbox" checked> keypoints</label></div>')
    return (
        f'<section class="episode" id="{_esc(ep.name)}" data-episode="{_esc(ep.name)}">'
        f"<h2>{_esc(ep.name)}</h2>"
        f'<p class="{"ok" if meta.success else "fail"}">{_esc(status)}</p>'
        f"<p>prompt: {_esc(meta.prompt)}</p><p>objects: {_esc(objects)}; policy: {_esc(meta.policy)} "
        f"{_esc(meta.policy_version)}; seed {_esc(meta.seed)}; {meta.num_frames} frames at {_esc(meta.fps)} fps</p>"
        f"{controls}"
        f'<div class="grid">{"".join(figures)}</div>'
        '<canvas class="plot" width="720" height="150"></canvas>'
        '<figcaption>contacts (thumb .. palm), object height (world z) and QA keypoint error per frame; '
        "the white line is the scrubber's frame</figcaption>"
        f"{_qa_block(qa)}"
        f'<script type="application/json" class="labels">{_json_for_script(payload)}</script>'
        "</section>"
    )


def _ranking_block(root: Path) -> str:
    """The candidate ranking of ``score_actions.json`` (``pam score-actions``), when the dataset has one."""
    path = root / SCORE_ACTIONS_FILE
    if not path.is_file():
        return ""
    try:
        data = json.loads(_inside(path, root).read_text(encoding="utf-8"))
        candidates = data["candidates"]
        if not isinstance(candidates, list) or not all(isinstance(c, dict) for c in candidates):
            raise ValueError("'candidates' is not a list of objects")
    except Exception as exc:  # noqa: BLE001 - a bad file is named, the page still shows the episodes
        return (f'<div class="ranking unreadable"><p class="fail">{SCORE_ACTIONS_FILE} not shown: '
                f"{_esc(type(exc).__name__)}: {_esc(exc)}</p></div>")
    goal = data.get("goal")
    goal_text = json.dumps(goal, sort_keys=True) if isinstance(goal, dict) else str(goal)

    def rank(c):
        r = c.get("rank")
        return (0, r) if isinstance(r, (int, float)) and not isinstance(r, bool) else (1, 0)

    keys = sorted({k for c in candidates if isinstance(c.get("metrics"), dict) for k in c["metrics"]})
    head = "".join(f"<th>{_esc(k)}</th>" for k in ("rank", "name", "score", *keys, "episode"))
    rows = []
    for c in sorted(candidates, key=rank):
        metrics = c.get("metrics") if isinstance(c.get("metrics"), dict) else {}
        cells = [_esc(c.get("rank", "-")), _esc(c.get("name", "")), _num(c.get("score"), 4)]
        cells += [_num(metrics.get(k), 4) if isinstance(metrics.get(k), (int, float)) else _esc(metrics.get(k, "-"))
                  for k in keys]
        episode = c.get("episode")
        cells.append(f'<a href="#{_esc(episode)}">{_esc(episode)}</a>' if isinstance(episode, str) and episode else "-")
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return (f'<div class="ranking"><h2>Candidate ranking ({SCORE_ACTIONS_FILE})</h2><p>goal: {_esc(goal_text)}</p>'
            f'<table class="ranking"><tr>{head}</tr>{"".join(rows)}</table></div>')


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
        f"{_ranking_block(root)}{sections}<script>{_SCRIPT}</script></body></html>"
    )
    tmp = out.with_name(f"{TMP_PREFIX}{out.name}")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return out, shown

