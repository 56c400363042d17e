"""Text that did not come from the tool (names, paths, error messages, module paths), made
safe where it is shown: a terminal or CI log, a markdown table. Pure."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` safe for a terminal and a CI log: control characters (ANSI escapes, carriage
    returns, newlines) shown as escapes, so no text can start a line of its own, and a
    leading '::', which the Actions runner reads as a workflow command, broken."""
    shown = _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode(), text)
    return "\\" + shown if shown.startswith("::") else shown


def printable_lines(text: str) -> str:
    """A multi-line text of ours holding names from files, each line made ``printable``."""
    return "".join(printable(line) + "\n" for line in text.splitlines())


def cell(text: str) -> str:
    """``text`` inside a markdown table cell or code span: a '|' cannot end the cell, a
    backtick the span, a newline the row."""
    return text.replace("|", "\\|").replace("`", "'").replace("\n", " ")
