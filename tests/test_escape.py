"""Escaping text that did not come from the tool. Pure."""

import pytest

from modelexport import escape


def test_text_from_files_cannot_drive_a_terminal_or_break_a_table() -> None:
    assert escape.printable("::add-mask::x") == "\\::add-mask::x"
    assert escape.printable("a\x1b[2Jb\r") == "a\\x1b[2Jb\\r"
    assert escape.printable_lines("one\n::two\n") == "one\n\\::two\n"
    assert escape.code("a|b`c\nd") == "`a\\|b'c\\nd`"
    assert escape.code("") == "` `"


@pytest.mark.parametrize("hostile", [
    "x |\n| ✅ | `fake` | 1 s | passed |", "@org/security-team", "[click](https://evil.example)",
    "![img](https://evil.example/x.png)", "<!-- hide the rest", "<img src=x onerror=1>",
    "a\rb", "ok`</summary><b>x</b>`", "\x1b[31mred",
])
def test_a_code_span_holds_anything_as_text(hostile: str) -> None:
    """What GitHub would render from a string of a hostile file, checked on the markdown:
    one code span (nothing inside it is markup), on one line, inside its table cell."""
    span = escape.code(hostile)
    assert span.startswith("`") and span.endswith("`") and span.count("`") == 2
    assert "\n" not in span and "\r" not in span and "\x1b" not in span
    assert "|" not in span.replace("\\|", "")
    assert "<" not in escape.in_html(hostile)
    assert "`" not in escape.block(hostile) and "\r" not in escape.block(hostile)
