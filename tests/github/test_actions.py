"""The Actions runner's files and workflow commands. No torch, no network."""

from __future__ import annotations

import re
from pathlib import Path

from modelexport.github import actions

from fake_github import parse_outputs


def test_escaping_follows_the_workflow_command_rules() -> None:
    assert actions.escape_data("50% done\r\nnext") == "50%25 done%0D%0Anext"
    assert actions.escape_property("models.yaml:3, x%") == "models.yaml%3A3%2C x%25"


def test_at_most_ten_annotations_per_kind_then_one_line_for_the_rest() -> None:
    notes = [actions.Annotation("error", f"model {i} regressed\nsee log", "models.yaml", i)
             for i in range(13)] + [actions.Annotation("warning", "expired")] * 2
    lines = actions.workflow_commands(notes)
    errors = [line for line in lines if line.startswith("::error file=")]
    assert len(errors) == 10
    assert errors[0] == "::error file=models.yaml,line=0::model 0 regressed%0Asee log"
    assert lines.count("::warning::expired") == 2
    assert lines[-1] == "::error::3 more errors; see the log and the step summary"


def test_outputs_survive_newlines_and_a_forged_delimiter(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_text("earlier<<X\nkept\nX\n")
    actions.write_outputs(path, {"verdict": "fail", "why": "line one\nEOF\nmodelexport_00"})
    assert parse_outputs(path.read_text()) == {
        "earlier": "kept", "verdict": "fail", "why": "line one\nEOF\nmodelexport_00"}
    # The delimiter cannot be guessed: a new random one for every value.
    actions.write_outputs(path, {"verdict": "pass"})
    delimiters = re.findall(r"^verdict<<(\S+)$", path.read_text(), re.M)
    assert len(delimiters) == 2 and delimiters[0] != delimiters[1]
    assert all(len(d) >= len("modelexport_") + 16 for d in delimiters)


def test_step_summary_stays_under_one_mebibyte(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text("x" * 1000)
    actions.append_summary(path, "é" * 700_000)  # 1.4 MB encoded
    size = path.stat().st_size
    assert actions.SUMMARY_LIMIT - 200 < size <= actions.SUMMARY_LIMIT
    assert path.read_text("utf-8").endswith("_(truncated: the full report is in the job's "
                                            "log and artifacts)_\n")


def test_a_workflow_command_carries_no_terminal_escape_and_starts_no_line() -> None:
    note = actions.Annotation("error", "model \x1b[2Jgone\r\n::add-mask::x", "m.yaml", 3,
                              title="modelexport: \x1b]8;;https://evil\x07x regressed")
    (line,) = actions.workflow_commands([note])
    assert "\x1b" not in line and "\x07" not in line and "\r" not in line and "\n" not in line
    assert line == ("::error file=m.yaml,line=3,title=modelexport%3A \\x1b]8;;https%3A//evil"
                    "\\x07x regressed::model \\x1b[2Jgone%0D%0A::add-mask::x")
