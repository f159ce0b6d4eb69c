"""The ``pam`` command. Each sub-command lives in ``pam_engine.commands.<name>`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (returns an exit code)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pam_engine import __version__
from pam_engine.errors import PamError

#: Modules under pam_engine.commands, in the order ``pam --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = ("export", "export-usd", "generate", "simulate", "import-dexycb", "train-policy",
                                     "train-appearance", "train-motion", "validate", "view", "qa", "score-actions", "devi-contacts")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pam",
        description="PAM Engine: simulate hand-object grasps, capture condition maps and ground "
        "truth, and paint photoreal video with PAM's diffusion stages.",
    )
    parser.add_argument("--version", action="version", version=f"pam-engine {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"pam_engine.commands.{name.replace('-', '_')}").register(subparsers)
    return parser


def _log_to_stderr() -> None:
    """The engine's log lines (cache misses, MuJoCo warnings) on stderr, for the command only."""
    logger = logging.getLogger("pam_engine")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (it may be swapped after set-up)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def main(argv: list[str] | None = None) -> int:
    from pam_engine.capture.gl import configure_headless_gl

    configure_headless_gl()  # before any sub-command imports MuJoCo's GL bindings
    _log_to_stderr()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except (PamError, FileNotFoundError) as exc:
        print(f"pam {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
