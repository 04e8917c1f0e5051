"""The command-line interface: ``procorefs <command>``.

Each command group lives in its own module with a ``register(subparsers)`` function that adds
its parsers and sets ``func`` (a callable taking the parsed namespace and returning an exit
code). Errors a user can act on are printed as one clear line, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, cast

from procorefs import __version__

_COMMAND_MODULES = (
    "procorefs.cli.emulator",
    "procorefs.cli.auth",
    "procorefs.cli.mount",
    "procorefs.cli.demo",
)


class UserError(Exception):
    """A failure whose message alone tells the user what to do (exit code 2)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="procorefs", description="Procore Documents as a true drive.")
    parser.add_argument("--version", action="version", version=f"procorefs {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        cast(Any, module).register(subparsers)
    return parser


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = cast(Callable[[argparse.Namespace], int] | None, getattr(args, "func", None))
    if func is None:
        parser.print_help()
        return 2
    configure_logging(args.verbose)
    try:
        return func(args)
    except UserError as exc:
        print(f"procorefs: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
