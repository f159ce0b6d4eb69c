#!/usr/bin/env bash
# Build the hand-detector environment of `pam qa` (default: .venv-qa in the repo root, git-ignored):
# mediapipe 0.10.14, the last release whose wheel ships palm_detection_full.tflite and
# hand_landmark_full.tflite (later releases download models at run time, which the engine never does),
# with the numpy<2 / protobuf<5 it pins, and PyAV to decode the episode videos. The engine is NOT
# installed here: `pam qa` runs source/pam_engine/qa/detector_worker.py with this venv's python as a
# subprocess (docs/qa.md), so mediapipe's pins never meet the main environment's.
#
#   tools/make_qa_env.sh [VENV_DIR]        # then: PAM_QA_PYTHON=VENV_DIR/bin/python pam qa DIR
#
# A finished environment is reused while this script is unchanged (a stamp holds its hash).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-qa}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.pam-qa-env"
HASH="$(sha256sum "$0" | cut -d' ' -f1)"
CHECK='import mediapipe, av, numpy; from mediapipe.python.solutions import hands; hands.Hands(static_image_mode=True).close()'

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ] && "$VENV/bin/python" -c "$CHECK" 2>/dev/null; then
  echo "make_qa_env: $VENV is up to date"
  exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q)
"${PIP[@]}" --upgrade pip
"${PIP[@]}" "mediapipe==0.10.14" "numpy<2" "protobuf<5" "av>=12"
# the bundled models load offline (no download): building the legacy Hands graph reads them from the wheel
"$VENV/bin/python" -c "$CHECK"
"$VENV/bin/python" -c "import mediapipe, numpy, av; print(f'make_qa_env: mediapipe {mediapipe.__version__}, numpy {numpy.__version__}, av {av.__version__}')"
echo "$HASH" > "$STAMP"
