"""One module per subcommand: ``add_parser`` declares its options, ``Args`` holds them
typed, ``run`` calls the library and prints. A command imports the library inside ``run``,
so that building the parser loads none of it."""

from __future__ import annotations

import argparse

# What add_subparsers returns; argparse types it nowhere public.
Subcommands = argparse._SubParsersAction
