"""onnx.checker's full check of an exported file: types and shapes inferred through the
whole graph, not only its structure."""

from __future__ import annotations

from pathlib import Path

from modelexport.errors import ExportFailed, describe


def check(path: Path) -> None:
    """ExportFailed, in one line, where the checker refuses ``path``."""
    import onnx

    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as exc:  # the checker raises its own types
        raise ExportFailed(f"{path.name}: invalid ONNX: {describe(exc)}") from exc
