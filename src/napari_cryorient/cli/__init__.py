"""The ``cryorient`` command line: one module per subcommand.

Each subcommand module has a docstring (its ``--help`` text), ``add_args(parser)`` and
``main(args) -> int``; it only reads files, calls the engine and writes files.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ._common import run_command

__all__ = ["main"]

#: subcommand name -> module (explicit registry)
COMMANDS = {
    "simulate": "simulate",
    "project": "project",
    "reconstruct": "reconstruct",
    "fsc": "fsc",
    "train": "train",
    "recover": "recover",
    "ab-initio": "ab_initio",
    "evaluate": "evaluate",
    "convert": "convert",
    "preprocess": "preprocess",
    "demo": "demo",
    "gui": "gui",
    "benchmark": "benchmark",
}


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (``cryorient: error: …``, exit 2), like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"cryorient: error: {self.prog.removeprefix('cryorient ')}: {message} "
                     f"(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``cryorient`` argument parser with every subcommand."""
    from .. import __version__

    parser = _Parser(
        prog="cryorient",
        description="Simulate, reconstruct and evaluate cryo-EM particle data sets "
        "(napari-cryorient).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        doc = (module.__doc__ or "").strip()
        summary, _, details = doc.partition("\n")
        p = sub.add_parser(
            name, help=summary, description=summary, epilog=details.strip() or None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_args(p)
        p.set_defaults(_main=module.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cryorient`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a usage error (already reported, one line)
        return int(stop.code or 0) if not isinstance(stop.code, str) else 2
    return run_command(args._main, args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
