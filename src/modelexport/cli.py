"""Command line: the parser, dispatch to ``commands/<name>.py``, and the error edge.
Exit codes: 0 ok, 1 failed (a regression, a failed export), 2 usage error, 3 a bug of ours:
never 1, which a workflow may accept (``fail-on-regression: false``).

Each command module declares its own options (``add_parser``) and its typed arguments
(``Args``), and imports the library only inside its ``run``: ``--help`` loads nothing but
the command line, and the commands that do not export work without torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any

from modelexport import __version__
from modelexport.errors import ModelExportError

INTERNAL_ERROR = 3
COMMANDS = ("export", "check", "compare", "comment", "baseline", "merge", "diff", "profile",
            "verify", "validate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelexport",
        description="Export PyTorch / Hugging Face models to ONNX with every node tagged "
        "with the nn.Module that produced it (HTP: Hierarchical Trace-and-Project).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and library logs")
    # Also accepted after the command; SUPPRESS keeps the subcommand from resetting it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and library logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"modelexport.commands.{name}").add_parser(commands, common)
    return parser


def typed(namespace: argparse.Namespace) -> Any:
    """The parsed options as the command's own ``Args`` record."""
    fields = dataclasses.fields(namespace.arguments)
    return namespace.arguments(**{f.name: getattr(namespace, f.name) for f in fields})


def _annotate(exc: ModelExportError) -> None:
    """In Actions, put a file's problems (a manifest's) on their lines of the file."""
    from modelexport.commands import console
    from modelexport.github import actions
    from modelexport.publish import report
    from modelexport.yamlfile import ProblemsFound

    if isinstance(exc, ProblemsFound) and actions.in_actions(os.environ):
        console.announce(report.located("error", exc.problems, "modelexport: manifest"))


def main(argv: Sequence[str] | None = None) -> int:
    namespace = build_parser().parse_args(argv)
    from modelexport import logs
    from modelexport.escape import printable_message
    from modelexport.gate.sandbox import TELEMETRY_OFF

    for name, value in TELEMETRY_OFF.items():  # unless the user set them
        os.environ.setdefault(name, value)
    logs.setup(namespace.debug)
    try:
        return int(namespace.run(typed(namespace)))
    except ModelExportError as exc:
        if namespace.debug:
            traceback.print_exc()
        print(f"modelexport: error: {printable_message(str(exc))}", file=sys.stderr)
        _annotate(exc)
        return exc.exit_code
    except OSError as exc:  # the machine's, not the input's: a full disk, a vanished folder
        if namespace.debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"modelexport: error: {printable_message(where)}{exc.strerror or exc}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("modelexport: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug of ours: one line, and no exit code that reads as a verdict
        if namespace.debug:
            traceback.print_exc()
        from modelexport.errors import describe

        print(f"modelexport: internal error: {printable_message(describe(exc))} (a bug in "
              "modelexport: --debug shows where)", file=sys.stderr)
        return INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
