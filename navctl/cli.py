"""The `navctl` command line: `navctl run`, `navctl evaluate`, `navctl train`, `navctl scenarios`.

Each command lives in its own module with `configure_parser(parser)` and `main(args) -> int`.
Mistakes of the user (bad flags, unknown names, invalid scenario or gate files, a bad
checkpoint) print one line `navctl <cmd>: error: ...` on stderr and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import signal
import sys
import threading
from types import ModuleType
from typing import NoReturn, Optional, Sequence

from navctl.errors import UsageError

COMMANDS = {
    "run": ("navctl.run", "drive one scenario for a few episodes; print a table, write a run directory"),
    "evaluate": ("navctl.evaluate", "evaluate policies on scenarios; write CSV, JSON, Markdown and plots"),
    "train": ("navctl.train", "train a policy (imitation of the expert, then BPTT)"),
    "scenarios": ("navctl.scenarios_cli", "list the built-in scenarios, check scenario files, show one, write generated ones"),
}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, without the usage block."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _is_user_error(exc: BaseException) -> bool:
    """UsageError, ScenarioError, and the ValueError subclasses the policies package raises
    for a bad checkpoint; never a plain ValueError (that would be a bug, with a traceback)."""
    if isinstance(exc, UsageError):
        return True
    package = type(exc).__module__.split(".")[0]
    return isinstance(exc, ValueError) and type(exc) is not ValueError and package in ("envs", "policies", "navctl")


def _parser(command: Optional[str]) -> tuple[argparse.ArgumentParser, Optional[ModuleType]]:
    """The parser; only the chosen command's module is imported (train pulls in torch)."""
    parser = _Parser(prog="navctl", description="Robot navigation on changing terrain: run, evaluate, train, scenarios.")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    module = None
    for name, (_, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        if name == command:
            module = importlib.import_module(COMMANDS[name][0])
            module.configure_parser(p)
    return parser, module


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parses `argv` (default sys.argv[1:]) and runs the command; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else None
    parser, module = _parser(command)
    args, extra = parser.parse_known_args(argv)
    if extra:  # report them against the command, not the top-level parser
        prog = f"navctl {command}" if command else "navctl"
        print(f"{prog}: error: unrecognized arguments: {' '.join(extra)} (see {prog} --help)", file=sys.stderr)
        return 2
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    args.command_line = shlex.join(["navctl", *argv])
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if in_main_thread else None  # `kill` ends like Ctrl-C
    try:
        return int(module.main(args) or 0)
    except KeyboardInterrupt:
        print(f"navctl {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - sorted below: user errors get one line, bugs a traceback
        if _is_user_error(exc):
            print(f"navctl {command}: error: {exc}", file=sys.stderr)
            return 2
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
