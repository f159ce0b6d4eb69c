"""The hand detector of ``pam qa``, run as a script by the Python of the QA environment
(``tools/make_qa_env.sh``): mediapipe 0.10.14's hand landmarker, whose palm-detection and landmark
models ship inside its wheel (nothing is downloaded). Standalone on purpose: it imports only
mediapipe, numpy and PyAV (never ``pam_engine``), since mediapipe pins numpy<2 and protobuf<5.

    python detector_worker.py VIDEO OUT.npz [--max-hands 2] [--min-confidence 0.5]

Every frame is judged on its own (``static_image_mode=True``: no tracking that would carry a hand
over frames where it is not seen). ``OUT.npz`` holds, for T frames and up to ``H = max_hands``
hands per frame (slots without a hand are NaN / 0):

- ``keypoints`` float32 (T, H, 21, 2): landmark pixels (x right, y down) in mediapipe's order,
  which is DexYCB's (wrist; thumb, index, middle, ring, little, four each);
- ``score`` float32 (T, H): handedness classifier score (0 where no hand);
- ``handedness`` int8 (T, H): 0 no hand, 1 mediapipe says "Right", 2 "Left" (mediapipe assumes a
  mirrored selfie image, so on an unmirrored camera a right hand reads "Left");
- ``size`` int32 (2,): width, height of the frames.

Exit status 3 with a message on stderr when mediapipe or its bundled models are missing, 4 when
the video cannot be decoded.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_NO_DETECTOR = 3
EXIT_BAD_VIDEO = 4
NUM_LANDMARKS = 21


def _load_hands(max_hands: int, min_confidence: float):
    try:
        from mediapipe.python.solutions import hands as mp_hands
    except Exception as exc:  # noqa: BLE001 - ImportError, or protobuf/numpy clashes surfacing at import
        print(f"detector_worker: cannot import mediapipe's hand solution ({type(exc).__name__}: {exc})",
              file=sys.stderr)
        raise SystemExit(EXIT_NO_DETECTOR) from None
    try:
        return mp_hands.Hands(static_image_mode=True, max_num_hands=max_hands, model_complexity=1,
                              min_detection_confidence=min_confidence)
    except Exception as exc:  # noqa: BLE001 - a missing .tflite raises RuntimeError from the graph
        print(f"detector_worker: mediapipe's bundled hand models do not load ({type(exc).__name__}: {exc}); "
              "mediapipe 0.10.14 ships palm_detection_full.tflite and hand_landmark_full.tflite",
              file=sys.stderr)
        raise SystemExit(EXIT_NO_DETECTOR) from None


def detect(video: str, max_hands: int = 2, min_confidence: float = 0.5) -> dict:
    import av
    import numpy as np

    hands = _load_hands(max_hands, min_confidence)
    keypoints, score, handedness = [], [], []
    width = height = 0
    try:
        container = av.open(video)
    except Exception as exc:  # noqa: BLE001 - PyAV's error types vary by version
        print(f"detector_worker: cannot open video {video} ({type(exc).__name__}: {exc})", file=sys.stderr)
        raise SystemExit(EXIT_BAD_VIDEO) from None
    with container, hands:
        for frame in container.decode(video=0):
            rgb = np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
            height, width = rgb.shape[:2]
            kp = np.full((max_hands, NUM_LANDMARKS, 2), np.nan, np.float32)
            sc = np.zeros(max_hands, np.float32)
            hd = np.zeros(max_hands, np.int8)
            result = hands.process(rgb)
            for h, (marks, label) in enumerate(zip(result.multi_hand_landmarks or [],
                                                   result.multi_handedness or [])):
                if h >= max_hands:
                    break
                kp[h] = [(m.x * width, m.y * height) for m in marks.landmark]
                cls = label.classification[0]
                sc[h] = cls.score
                hd[h] = 1 if cls.label == "Right" else 2
            keypoints.append(kp)
            score.append(sc)
            handedness.append(hd)
    if not keypoints:
        print(f"detector_worker: video {video} has no frames", file=sys.stderr)
        raise SystemExit(EXIT_BAD_VIDEO)
    return {"keypoints": np.stack(keypoints), "score": np.stack(score), "handedness": np.stack(handedness),
            "size": np.array([width, height], np.int32)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("video")
    parser.add_argument("out", help="npz file to write (written whole, then renamed)")
    parser.add_argument("--max-hands", type=int, default=2)
    parser.add_argument("--min-confidence", type=float, default=0.5)
    args = parser.parse_args(argv)
    import numpy as np

    result = detect(args.video, args.max_hands, args.min_confidence)
    tmp = f"{args.out}.tmp-{os.getpid()}.npz"
    np.savez(tmp, **result)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
