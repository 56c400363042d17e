"""The PyTorch side of a verification: the model an export came from (its sidecar's source),
run on the export's inputs, each module's outputs caught by a forward hook and matched to
the ONNX values that leave that module.

A module's outputs and the values leaving it in the graph are matched by shape: each output
tensor to the value of its shape, the closest where several have it. A module that ran more
than once (a shared layer) is left out: the graph's values are its last call's, or any.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from modelexport import outputs, sidecar, sources
from modelexport.errors import ExportFailed, UsageError, describe
from modelexport.inputs import nested
from modelexport.tags import Tagged
from modelexport.verify.boundaries import Boundary
from modelexport.verify.divergence import matched


def source_of(model: Tagged) -> sources.Source:
    """Where the export came from, as its sidecar records it."""
    beside = sidecar.sidecar_path(model.path)
    if not beside.is_file():
        raise UsageError(f"{model.path}: no {beside.name} beside it, which names the model "
                         "it came from: give --against OTHER.onnx to compare two files")
    return sidecar.read(beside).source


def values(module: Any, edges: Sequence[Boundary], graph_outputs: Sequence[str],
           feed: Mapping[str, np.ndarray], onnx: Mapping[str, np.ndarray]
           ) -> dict[str, np.ndarray]:
    """PyTorch's value for each ONNX value it has one for: the graph's outputs, and the
    values that leave each module of ``edges``, from one forward pass on ``feed``."""
    import inspect

    import torch

    wanted = {edge.module for edge in edges}
    caught: dict[str, list[np.ndarray]] = {}
    calls: Counter[str] = Counter()

    def catch(name: str) -> Any:
        def hook(_: Any, __: Any, result: Any) -> None:
            calls[name] += 1
            caught[name] = [_array(t) for _, t in outputs.flatten(result)]
        return hook

    handles = [sub.register_forward_hook(catch(name))
               for name, sub in module.named_modules() if name in wanted]
    accepts = inspect.signature(module.forward).parameters
    constants = {"use_cache": False} if "use_cache" in accepts else {}  # as the export ran
    try:
        with torch.no_grad():
            result = module(**nested({k: torch.from_numpy(np.ascontiguousarray(v))
                                      for k, v in feed.items()}), **constants)
    except Exception as exc:  # the model's own code
        raise ExportFailed(f"PyTorch: the model fails on the export's inputs: "
                           f"{describe(exc)}") from exc
    finally:
        for handle in handles:
            handle.remove()
    found = dict(zip(graph_outputs, (_array(t) for _, t in outputs.flatten(result)),
                     strict=False))
    for edge in edges:
        if calls[edge.module] == 1:
            tensors = {str(i): tensor for i, tensor in enumerate(caught[edge.module])}
            offered = {name: onnx[name] for name in edge.outputs if name in onnx}
            for index, name in matched(tensors, offered).items():
                found[name] = tensors[index]
    return found


def _array(tensor: Any) -> np.ndarray:
    """A tensor as numpy has it (bfloat16 has no numpy type: as float32)."""
    tensor = tensor.detach()
    return (tensor.float() if tensor.is_floating_point() else tensor).numpy()
