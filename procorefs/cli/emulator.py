"""``procorefs emulator serve``: run the local Procore-compatible server.

Parses the command line into ``procorefs.emulator.server.ServeOptions`` and runs it; a bad
option (a non-loopback host, a malformed rate limit, an unknown seed) is one clear line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from procorefs.cli import UserError


def register(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "emulator", help="the local Procore-compatible server (demo and tests)",
        description="A local server that behaves like Procore's documented REST API.")
    commands = group.add_subparsers(dest="emulator_command", metavar="SUBCOMMAND")
    serve = commands.add_parser(
        "serve", help="run the emulator until Ctrl+C",
        description="Serve the Procore API, OAuth and a storage origin on loopback.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="loopback address to bind (default 127.0.0.1; nothing else is "
                            "accepted)")
    serve.add_argument("--port", type=int, default=8630,
                       help="API and OAuth port (default 8630; 0 = any free port)")
    serve.add_argument("--storage-port", type=int, default=8631,
                       help="storage (S3-like) port (default 8631; 0 = any free port)")
    serve.add_argument("--data", type=Path, metavar="DIR",
                       help="keep state in DIR across restarts (default: a temporary "
                            "directory removed at exit)")
    serve.add_argument("--seed", choices=("demo", "empty", "large"),
                       help="what a new data directory starts with (default demo)")
    serve.add_argument("--reset", action="store_true",
                       help="reseed even if the data directory already holds state")
    serve.add_argument("--large-folders", type=int, metavar="N",
                       help="large seed: number of folders")
    serve.add_argument("--large-files", type=int, metavar="N",
                       help="large seed: number of files")
    serve.add_argument("--large-file-size", type=int, metavar="BYTES",
                       help="large seed: size of each file")
    serve.add_argument("--large-big-files", type=int, metavar="N",
                       help="large seed: number of big files (for read benchmarks)")
    serve.add_argument("--large-big-file-size", type=int, metavar="BYTES",
                       help="large seed: size of each big file")
    serve.add_argument("--large-folder-files", type=int, metavar="N",
                       help="large seed: files in one flat listing folder")
    serve.add_argument("--token-ttl", type=int, default=5400, metavar="SECONDS",
                       help="access token lifetime (default 5400, as Procore)")
    serve.add_argument("--rate-limit", default="3600/100", metavar="HOURLY/SPIKE",
                       help="requests per hour and per 10 seconds (default 3600/100)")
    serve.add_argument("--control", action="store_true",
                       help="enable the control API under /_emulator/ (tests, benchmarks)")
    serve.add_argument("--ready-file", type=Path, metavar="PATH",
                       help="write {api_url, storage_url, pid} as JSON here once listening")
    serve.set_defaults(func=run_serve)
    group.set_defaults(func=lambda args: _help(group))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_serve(args: argparse.Namespace) -> int:
    from procorefs.emulator.context import EmulatorSettings
    from procorefs.emulator.control import parse_rate_limit
    from procorefs.emulator.server import NotLoopback, ServeOptions, check_loopback, serve

    try:
        check_loopback(args.host)
        hourly, spike = parse_rate_limit(args.rate_limit)
    except (NotLoopback, ValueError) as exc:
        raise UserError(str(exc)) from None
    for name in ("port", "storage_port"):
        value = getattr(args, name)
        if not 0 <= value <= 65535:
            raise UserError(f"--{name.replace('_', '-')} must be between 0 and 65535")
    if args.token_ttl < 1:
        raise UserError("--token-ttl must be at least 1 second")
    knobs: dict[str, Any] = {}
    for knob in ("folders", "files", "file_size", "big_files", "big_file_size",
                 "folder_files"):
        value = getattr(args, f"large_{knob}")
        if value is not None:
            knobs[knob] = value
    seed = args.seed
    if knobs and seed not in (None, "large"):
        raise UserError("the --large-* options only apply to --seed large")
    if knobs and seed is None:
        seed = "large"
    settings = EmulatorSettings(host=args.host, port=args.port, storage_port=args.storage_port,
                                token_ttl=args.token_ttl, rate_hourly=hourly, rate_spike=spike,
                                control=args.control)
    options = ServeOptions(settings=settings, data_dir=args.data, seed=seed, knobs=knobs,
                           reset=args.reset or (args.data is None), ready_file=args.ready_file)
    try:
        return serve(options)
    except OSError as exc:
        raise UserError(f"cannot start the emulator: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m procorefs.cli.emulator serve ...``: the emulator alone, without loading the
    other command groups (the test suite starts it this way)."""
    import sys

    from procorefs.cli import configure_logging

    parser = argparse.ArgumentParser(prog="procorefs-emulator")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    register(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(["emulator", *(sys.argv[1:] if argv is None else argv)])
    configure_logging(args.verbose)
    try:
        return int(args.func(args))
    except UserError as exc:
        print(f"procorefs: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
