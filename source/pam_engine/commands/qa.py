"""``pam qa DIR``: check each episode's video against its labels with a 2D hand detector
(docs/qa.md); exit 1 when any episode fails."""

from __future__ import annotations

import argparse

from pam_engine.qa.config import QA_VIDEOS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "qa", help="check that each episode's video shows the hand where the labels say (2D hand detector)",
        description="Run mediapipe's hand landmarker (its own environment: tools/make_qa_env.sh) on every frame "
        "of each episode's video and compare it with joint_2d: detection rate, keypoint error, PCK, worst frames, "
        "temporal shift, mirroring, hand flicker. Writes qa.json per episode and qa_summary.json; exits 1 when "
        "any episode fails (an episode with qa.json 'passed': false counts as rejected).")
    parser.add_argument("dataset", metavar="DIR", help="dataset folder (holding episode_NNNNNN folders)")
    parser.add_argument("--video", default="video", choices=QA_VIDEOS,
                        help="which video to check (default: video = video.mp4; sim_rgb = the simulation preview)")
    parser.add_argument("--max-keypoint-error", type=float, default=None, metavar="PX",
                        help="fail episodes whose mean keypoint error exceeds PX pixels (default: not judged)")
    parser.add_argument("--min-detection-rate", type=float, default=0.25, metavar="FRACTION",
                        help="fail episodes where the hand is found in fewer of the frames showing it (default 0.25)")
    parser.add_argument("--detector-python", default=None, metavar="PYTHON",
                        help="Python of the detector environment (default: $PAM_QA_PYTHON, else .venv-qa)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pam_engine.qa.check import check_dataset, format_summary
    from pam_engine.qa.config import QaConfig

    cfg = QaConfig(max_keypoint_error=args.max_keypoint_error, min_detection_rate=args.min_detection_rate,
                   video=args.video, detector_python=args.detector_python)
    cfg.check("--{}")
    result = check_dataset(args.dataset, cfg, progress=not args.no_progress)
    print(format_summary(result))
    if not result.results:
        hint = "" if args.video != "video" else " (use --video sim_rgb to check the simulation preview)"
        print(f"pam qa: no episode has the requested video; nothing was checked{hint}")
        return 1
    return 1 if result.failed else 0
