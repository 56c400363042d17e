"""Escaping text that did not come from the tool. Pure."""

from modelexport import escape


def test_text_from_files_cannot_drive_a_terminal_or_break_a_table() -> None:
    assert escape.printable("::add-mask::x") == "\\::add-mask::x"
    assert escape.printable("a\x1b[2Jb\r") == "a\\x1b[2Jb\\r"
    assert escape.printable_lines("one\n::two\n") == "one\n\\::two\n"
    assert escape.cell("a|b`c\nd") == "a\\|b'c d"
