"""JSON files that a reader never sees half-written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_atomic(path: Path, document: Any) -> None:
    """Write ``document`` as JSON: a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)
