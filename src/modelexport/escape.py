"""Text that did not come from the tool (names, paths, error messages, module paths), made
safe where it is shown: a terminal or CI log, markdown (a PR comment), HTML. Pure."""

from __future__ import annotations

import html
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` safe for a terminal and a CI log: control characters (ANSI escapes, carriage
    returns, newlines) shown as escapes, so no text can start a line of its own, and a
    leading '::', which the Actions runner reads as a workflow command, broken."""
    shown = visible(text)
    return "\\" + shown if shown.startswith("::") else shown


def printable_message(text: str) -> str:
    """An error message of ours, which may quote files over several lines: each line made
    ``printable``, no newline after the last."""
    return printable_lines(text).rstrip("\n")


def visible(text: str, keep: str = "") -> str:
    """Control characters as their escapes (``\\x1b``, ``\\r``), but those in ``keep``."""
    return _CONTROL.sub(lambda found: found.group() if found.group() in keep
                        else found.group().encode("unicode_escape").decode(), text)


def printable_lines(text: str) -> str:
    """A multi-line text of ours holding names from files, each line made ``printable``.
    Lines end at a newline only: a carriage return from a file is shown, not obeyed."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return "".join(printable(line) + "\n" for line in lines)


def code(text: str) -> str:
    """``text`` as a markdown code span, also inside a table cell: in a code span GitHub
    renders no link, image, mention, HTML or emphasis, so the text can only be read. A
    backtick cannot end the span, a '|' the cell, a line ending (or any control character,
    shown as an escape) the row."""
    return "`" + (visible(text).replace("`", "'").replace("|", "\\|") or " ") + "`"


def block(text: str) -> str:
    """``text`` inside a fenced code block: no backtick can close the fence, no control
    character reaches the reader."""
    return printable_lines(text).replace("`", "'")


def in_html(text: str) -> str:
    """``text`` inside HTML (a ``<summary>``): markup shown as text."""
    return html.escape(printable(text))


_MERMAID_UNSAFE = re.compile(r"[^A-Za-z0-9_.,:{}()+\- ]")


def in_mermaid(text: str) -> str:
    """``text`` as a quoted label of a Mermaid chart: only letters, digits, spaces and
    ``_.,:{}()+-`` kept (the others as ``_``), so no quote can end the label, no ``%%``
    start a comment, no line end a statement and no markup reach the rendered SVG."""
    return _MERMAID_UNSAFE.sub("_", text)

