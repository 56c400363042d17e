"""One module per subcommand: ``add_parser`` declares its options, ``Args`` holds them
typed, ``run`` calls the library and prints. A command imports the library inside ``run``,
so that building the parser loads none of it."""

from __future__ import annotations

import argparse
import signal

# What add_subparsers returns; argparse types it nowhere public.
Subcommands = argparse._SubParsersAction


def stop_on_sigterm() -> None:
    """From here on, SIGTERM (a CI cancelling the job) stops this command as Ctrl-C does:
    through its ``finally`` blocks, which save what finished and remove temporary files."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def subcommand(commands: Subcommands, common: argparse.ArgumentParser, name: str,
               description: str | None, summary: str) -> argparse.ArgumentParser:
    """The parser of one subcommand: ``description`` (its module's docstring) in its own
    --help, ``summary`` in the list of commands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, parents=[common], help=summary, description=description)
    return parser
