"""The install line that a missing export stack prints, for each way modelexport arrives."""

from __future__ import annotations

from typing import Any

import pytest

from modelexport.errors import export_requirement

# direct_url.json as pip writes it (PEP 610 examples).
CASES: list[tuple[dict[str, Any] | None, str]] = [
    (None, "modelexport[export]"),
    ({"url": "https://github.com/org/modelexport-action",
      "vcs_info": {"vcs": "git", "requested_revision": "v1", "commit_id": "0" * 40}},
     "modelexport[export] @ git+https://github.com/org/modelexport-action@v1"),
    ({"url": "https://github.com/org/modelexport-action",
      "vcs_info": {"vcs": "git", "commit_id": "0" * 40}},
     "modelexport[export] @ git+https://github.com/org/modelexport-action"),
    ({"url": "file:///src/modelexport-action", "dir_info": {"editable": True}},
     "modelexport[export] @ file:///src/modelexport-action"),
    ({"url": "https://example.com/modelexport-0.1.tar.gz", "archive_info": {}},
     "modelexport[export] @ https://example.com/modelexport-0.1.tar.gz"),
]


@pytest.mark.parametrize(("direct_url", "expected"), CASES)
def test_export_requirement_points_back_where_modelexport_came_from(
    direct_url: dict[str, Any] | None, expected: str,
) -> None:
    assert export_requirement(direct_url) == expected
