"""A model's outputs as the exporters flatten them, each with the name it gets in ONNX.

The exporters name graph outputs after internal values (``onnx::Gather_736``,
``layer_norm_12``), which change whenever the graph does. The names here come from the
model's own output structure, as optimum names them: a ``ModelOutput`` or dict by its keys
(``last_hidden_state``, ``pooler_output``, ``logits``), sequences by position
(``hidden_states.0``), a lone tensor ``output``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def flatten(value: Any, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) for every tensor of a model output, in the exporters' order
    (``None`` entries dropped, as ``ModelOutput.to_tuple`` and the exporters drop them)."""
    import torch

    if isinstance(value, torch.Tensor):
        return [(prefix or "output", value)]
    if hasattr(value, "to_tuple") and hasattr(value, "items"):  # transformers ModelOutput
        value = dict(value.items())
    if isinstance(value, dict):
        items = [(str(key), item) for key, item in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(str(index), item) for index, item in enumerate(value)]
    else:
        return []
    return [pair for key, item in items
            for pair in flatten(item, f"{prefix}.{key}" if prefix else _top(key, value))]


def _top(key: str, container: Any) -> str:
    """A top-level tuple's items are output.0, output.1; a mapping's keep their keys."""
    return key if isinstance(container, dict) else f"output.{key}"


def names(value: Any) -> list[str]:
    return [name for name, _ in flatten(value)]


def sizes(value: Any) -> list[tuple[int, ...] | None]:
    """Each output tensor's traced size (None where it is symbolic, as under dynamo).

    Never ``int()`` of a symbolic size: under torch.export that is a guard that fixes the
    dimension to its traced value (a BERT exported with a dynamic sequence then failed in
    onnxruntime at any other length). The TorchScript tracer hands dynamic sizes
    over as 0-d tensors; reading one records nothing in the graph.
    """
    import torch

    found: list[tuple[int, ...] | None] = []
    for _, tensor in flatten(value):
        shape = tuple(tensor.shape)
        if all(type(d) is int or isinstance(d, torch.Tensor) for d in shape):
            found.append(tuple(int(d) for d in shape))
        else:
            found.append(None)
    return found
