"""onnxruntime against PyTorch: the export run on the inputs the model is run on, every
output compared."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from modelexport import outputs
from modelexport.errors import ExportFailed, describe
from modelexport.inputs import nested
from modelexport.sidecar import Parity


def compare(path: Path, model: torch.nn.Module, feeds: Sequence[dict[str, torch.Tensor]],
            constants: dict[str, Any], tolerance: float) -> Parity:
    """The largest difference between onnxruntime running ``path`` and ``model`` over every
    output, on each set of inputs in ``feeds`` (``constants``: keyword arguments the model
    takes that are no graph inputs)."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types
        raise ExportFailed(f"{path.name}: invalid ONNX: {describe(exc)}") from exc
    diff, count = 0.0, 0
    for tensors in feeds:
        found, count = _largest(session, path, model, tensors, constants)
        diff = max(diff, found)
    return Parity(count, diff, tolerance, diff <= tolerance)


def _largest(session: Any, path: Path, model: torch.nn.Module, tensors: dict[str, torch.Tensor],
             constants: dict[str, Any]) -> tuple[float, int]:
    """The largest difference on ``tensors``, and how many outputs were compared."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    try:
        got = session.run(None, {i.name: tensors[i.name].numpy() for i in session.get_inputs()})
    except Exception as exc:  # onnxruntime raises its own types
        raise ExportFailed(f"{path.name}: onnxruntime fails at input shapes {shapes}: "
                           f"{describe(exc)}") from exc
    with torch.no_grad():
        produced = outputs.flatten(model(**nested(tensors), **constants))
    expected = [tensor.numpy() for _, tensor in produced]
    want_shapes, got_shapes = [w.shape for w in expected], [h.shape for h in got]
    if want_shapes != got_shapes:
        raise ExportFailed(f"{path.name}: onnxruntime outputs {got_shapes} do not match "
                           f"PyTorch's {want_shapes} (inputs {shapes})")
    diff = max(
        (float(abs(w.astype("float64") - h.astype("float64")).max())
         for w, h in zip(expected, got, strict=True) if w.size),
        default=0.0,
    )
    return diff, len(got)
