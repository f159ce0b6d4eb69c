"""Ownership on a shared dataset folder: several ``pam generate`` runs (or Ray workers, or
machines on shared storage) make each episode exactly once and never delete each other's work.

- Each run registers an owner record ``.claims/owner-<token>.json`` (host, boot id, pid, the
  process's start time) and touches it every ``lease_s / 4`` seconds from a heartbeat thread.
- Before making episode ``i`` a run claims it by hard-linking a finished claim file to
  ``.claims/episode_NNNNNN.json``: the link fails when the name exists, so exactly one run wins
  (``link`` is atomic on local file systems and on NFS, unlike ``O_EXCL`` on old NFS).
- Its temporary folders are named ``.tmp-<token>-...``, so everyone can tell whose they are.
- An owner is provably dead when it ran on this host (same host name and boot id) and its pid is
  gone or now belongs to a process started at another time, or, on any host, when its record has
  not been touched for ``lease_s``. Only a dead owner's claims and temporary folders are
  removed; a live run's are never touched.

Exactly-once does not rest on claims alone: an episode folder appears by renaming a complete
temporary folder, and renaming onto an existing episode fails, so a duplicate can never replace
or merge into a finished episode.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import uuid
from pathlib import Path

from pam_engine.dataset.format import CLAIMS_DIR, TMP_PREFIX, episode_name

#: Seconds an owner record stays valid without a heartbeat (for owners on other hosts).
DEFAULT_LEASE_S = 600.0


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The kernel's start time of ``pid`` (clock ticks since boot), '' where /proc is missing:
    tells a live owner from a new process that reused its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_new(path: Path, data: dict) -> bool:
    """Create ``path`` holding ``data`` if it does not exist yet; False when someone else's is
    there. The content is complete before the name appears."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.new")
    for attempt in range(5):
        try:
            tmp.write_text(json.dumps(data))
            break
        except FileNotFoundError:  # another run removed the empty claims folder as it ended
            if attempt == 4:
                raise
            path.parent.mkdir(exist_ok=True)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class ClaimStore:
    """This process's ownership of episodes in one dataset folder (a context manager: the owner
    record, heartbeat and any claims still held end with it)."""

    def __init__(self, root: str | Path, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.root = Path(root)
        self.dir = self.root / CLAIMS_DIR
        self.lease_s = float(lease_s)
        self.token = uuid.uuid4().hex[:16]
        self.host = socket.gethostname()
        self.boot = _boot_id()
        self.pid = os.getpid()
        self.held: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._open = False

    # -- life cycle --------------------------------------------------------------------------
    def open(self) -> ClaimStore:
        if self._open:
            return self
        self.dir.mkdir(exist_ok=True)
        record = {"token": self.token, "host": self.host, "boot_id": self.boot, "pid": self.pid,
                  "start": _process_start(self.pid), "created": time.time(), "lease_s": self.lease_s}
        _write_new(self._owner_path(self.token), record)
        self._open = True
        self._thread = threading.Thread(target=self._heartbeat, name="pam-claims-heartbeat", daemon=True)
        self._thread.start()
        self.sweep()
        return self

    def close(self) -> None:
        """Release every claim still held, then the owner record; removes ``.claims`` when empty."""
        if not self._open:
            return
        self._stop.set()
        for index in sorted(self.held):
            self.release(index)
        self._owner_path(self.token).unlink(missing_ok=True)
        self._open = False
        try:
            self.dir.rmdir()
        except OSError:
            pass  # other owners' files remain

    def __enter__(self) -> ClaimStore:
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def _heartbeat(self) -> None:
        path = self._owner_path(self.token)
        while not self._stop.wait(self.lease_s / 4):
            try:
                os.utime(path)
            except OSError:
                pass

    # -- names -------------------------------------------------------------------------------
    def _owner_path(self, token: str) -> Path:
        return self.dir / f"owner-{token}.json"

    def _claim_path(self, index: int) -> Path:
        return self.dir / f"{episode_name(index)}.json"

    def tmp_name(self, label: str) -> str:
        """A temporary entry name that marks this process as its owner."""
        return f"{TMP_PREFIX}{self.token}-{label}"

    # -- claims ------------------------------------------------------------------------------
    def claim(self, index: int) -> bool:
        """Take episode ``index``; False when a live owner holds it. A dead owner's claim is
        broken (and its temporary folders removed) first."""
        path = self._claim_path(index)
        entry = {"token": self.token, "host": self.host, "pid": self.pid, "episode": episode_name(index),
                 "claimed": time.time()}
        for _ in range(3):
            if _write_new(path, entry):
                self.held.add(index)
                return True
            current = _read(path)
            if current is None:  # vanished meanwhile (released), or a foreign file: retry
                if path.exists() and time.time() - path.stat().st_mtime > self.lease_s:
                    self._discard(path)
                continue
            if not self.owner_dead(str(current.get("token", ""))):
                return False
            self._discard(path, current.get("token"))
        return False

    def release(self, index: int) -> None:
        path = self._claim_path(index)
        current = _read(path)
        if current is not None and current.get("token") == self.token:
            path.unlink(missing_ok=True)
        self.held.discard(index)

    def still_held(self, index: int) -> bool:
        """Whether this process still owns ``index`` (a claim broken because our lease lapsed is not)."""
        current = _read(self._claim_path(index))
        return current is not None and current.get("token") == self.token

    # -- liveness and clean-up ---------------------------------------------------------------
    def owner_dead(self, token: str) -> bool:
        """True only when the owner ``token`` provably no longer runs."""
        if token == self.token:
            return False
        path = self._owner_path(token)
        record = _read(path)
        if record is None:
            # claims and temporary folders are made after the owner record, and it is removed
            # last: without one, the owner has ended (or was swept as dead)
            return not path.exists()
        if record.get("host") == self.host and record.get("boot_id") == self.boot:
            pid = int(record.get("pid", -1))
            if pid <= 0 or not _pid_alive(pid):
                return True
            start = record.get("start") or ""
            return bool(start) and start != _process_start(pid)
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return True
        return age > float(record.get("lease_s", self.lease_s))

    def _discard(self, path: Path, token: str | None = None) -> None:
        """Remove a dead owner's claim: rename it to a unique name first (only one run can), and
        put it back when it turns out to be someone else's fresh claim."""
        moved = path.with_name(f".{path.name}.{uuid.uuid4().hex}.stale")
        try:
            os.rename(path, moved)
        except FileNotFoundError:
            return
        current = _read(moved)
        if token is not None and current is not None and current.get("token") != token:
            try:  # a live run claimed it between our check and the rename: give it back
                os.link(moved, path)
            except FileExistsError:
                pass
        moved.unlink(missing_ok=True)

    def sweep(self) -> list[str]:
        """Remove what dead owners left: claims, temporary folders and owner records. Returns the
        names removed."""
        removed = []
        for entry in sorted(self.root.glob(f"{TMP_PREFIX}*")):
            token = entry.name[len(TMP_PREFIX):].split("-", 1)[0]
            if entry.is_file() and entry.name.startswith(f"{TMP_PREFIX}dataset.json-"):
                # dataset.json is written in well under a second: an old copy is a crash's
                if time.time() - entry.stat().st_mtime > 600:
                    entry.unlink(missing_ok=True)
                    removed.append(entry.name)
                continue
            if len(token) == 16 and self.owner_dead(token):
                shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
                removed.append(entry.name)
        if not self.dir.is_dir():
            return removed
        for entry in sorted(self.dir.iterdir()):
            name = entry.name
            if name.startswith("episode_") and name.endswith(".json"):
                current = _read(entry)
                if current is not None and self.owner_dead(str(current.get("token", ""))):
                    self._discard(entry, current.get("token"))
                    removed.append(f"{CLAIMS_DIR}/{name}")
            elif name.startswith(".") and (name.endswith(".new") or name.endswith(".stale")):
                if time.time() - entry.stat().st_mtime > 60:  # a crash between write and link
                    entry.unlink(missing_ok=True)
                    removed.append(f"{CLAIMS_DIR}/{name}")
        for entry in sorted(self.dir.glob("owner-*.json")):
            token = entry.name[len("owner-"):-len(".json")]
            if self.owner_dead(token):
                entry.unlink(missing_ok=True)
                removed.append(f"{CLAIMS_DIR}/{entry.name}")
        return removed

    def busy(self) -> set[int]:
        """Episodes a live owner other than this process holds now."""
        out = set()
        if not self.dir.is_dir():
            return out
        for entry in self.dir.glob("episode_*.json"):
            current = _read(entry)
            if current and current.get("token") != self.token and not self.owner_dead(str(current.get("token", ""))):
                out.add(int(entry.name[len("episode_"):-len(".json")]))
        return out
