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
from modelexport.tags import Tagged
from modelexport.verify.boundaries import Boundary


def load(model: Tagged) -> Any:
    """The PyTorch model the export came from, as its sidecar records it (random weights
    built from a config come back with the export's seed)."""
    beside = sidecar.sidecar_path(model.path)
    if not beside.is_file():
        raise UsageError(f"{model.path}: no {beside.name} beside it, which names the model "
                         "it came from: give --against OTHER.onnx to compare two files")
    return sources.load(sidecar.read(beside).source).model


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
            result = module(**{k: torch.from_numpy(np.ascontiguousarray(v))
                               for k, v in feed.items()}, **constants)
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
            found.update(_matched(caught[edge.module], edge.outputs, onnx))
    return found


def _array(tensor: Any) -> np.ndarray:
    """A tensor as numpy has it (bfloat16 has no numpy type: as float32)."""
    tensor = tensor.detach()
    return (tensor.float() if tensor.is_floating_point() else tensor).numpy()


def _matched(tensors: list[np.ndarray], names: Sequence[str], onnx: Mapping[str, np.ndarray]
             ) -> dict[str, np.ndarray]:
    """Each tensor to the value of ``names`` of its shape, the closest of several."""
    free = [name for name in names if name in onnx]
    found = {}
    for tensor in tensors:
        fits = [name for name in free if onnx[name].shape == tensor.shape]
        if not fits:
            continue
        best = min(fits, key=lambda name: float(np.abs(
            onnx[name].astype(np.float64) - tensor.astype(np.float64)).max(initial=0.0)))
        found[best] = tensor
        free.remove(best)
    return found
