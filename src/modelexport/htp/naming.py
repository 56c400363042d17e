"""The names an export's inputs and outputs carry: outputs as the model names them, free
dimensions named after the input axes they follow. Pure over the exported graph.
"""

from __future__ import annotations

import logging
import re

from modelexport.htp.graph import ExportedGraph
from modelexport.htp.wire import Shape
from modelexport.inputs import Axes

log = logging.getLogger(__name__)


def input_renames(graph: ExportedGraph, wanted: list[str]) -> dict[str, str]:
    """Graph input -> the input's own name, where the exporter spelled a nested input's
    name with underscores (dynamo: ``past_key_values_0_key`` for ``past_key_values.0.key``)."""
    spelled = {re.sub(r"\W", "_", name): name for name in wanted}
    return {name: spelled[name] for name in graph.inputs
            if name in spelled and name not in wanted and spelled[name] not in graph.inputs}


def output_renames(graph: ExportedGraph, wanted: list[str]) -> dict[str, str]:
    """Graph output value -> the name the model's output structure gives it.

    Only when it is unambiguous: one wanted name per output, no output listed twice, and no
    wanted name already naming another value of the graph (the exporter's names stay then).
    """
    current = graph.outputs
    if len(wanted) != len(current) or len(set(wanted)) != len(wanted) \
            or len(set(current)) != len(current):
        log.debug("outputs keep the exporter's names: %s vs %s", current, wanted)
        return {}
    taken = {*graph.inputs, *(name for node in graph.nodes
                              for name in (*node.inputs, *node.outputs))} - set(current)
    if taken & set(wanted):
        log.debug("outputs keep the exporter's names: %s already taken", taken & set(wanted))
        return {}
    return {old: new for old, new in zip(current, wanted, strict=True) if old != new}


def named_dims(graph: ExportedGraph, axes: Axes, inputs: dict[str, tuple[int, ...]],
               traced: list[tuple[int, ...] | None], renames: dict[str, str]
               ) -> dict[str, Shape]:
    """New shapes for the graph's inputs and outputs whose free dimensions need a name.

    An input's dynamic axes take their names. An output's free dimension takes the name
    of the input dimension it shares a symbol with (dynamo), or whose traced size it has
    where no other dimension has that size (TorchScript invents ``<Op><value>_dim_0``
    names), else ``<output>_dim_<i>``: names that do not change with the graph.
    """
    by_symbol: dict[str, str] = {}
    by_size: dict[int, str | None] = {}
    fixed: dict[str, Shape] = {}
    for name in graph.inputs:
        own, shape = axes.get(renames.get(name, name)), graph.shapes.get(name)
        if own is None or shape is None:
            continue
        for axis, dim in own.items():
            if isinstance(shape[axis], str):
                by_symbol[str(shape[axis])] = dim
            size = inputs[renames.get(name, name)][axis]
            by_size[size] = dim if by_size.get(size, dim) == dim else None
        fixed[name] = tuple(own.get(i, "?" if d is None else d) for i, d in enumerate(shape))
    for index, name in enumerate(graph.outputs):
        shape = graph.shapes.get(name)
        if shape is None or all(isinstance(d, int) for d in shape):
            continue
        sizes = traced[index] if index < len(traced) else None
        out = renames.get(name, name)
        fixed[name] = tuple(
            d if isinstance(d, int)
            else by_symbol.get(str(d)) or _expression(str(d), by_symbol)
            or (by_size.get(sizes[i]) if sizes and i < len(sizes) else None)
            or f"{out}_dim_{i}"
            for i, d in enumerate(shape)
        )
    return fixed


def _expression(symbol: str, names: dict[str, str]) -> str | None:
    """A dimension dynamo gives as arithmetic over input dimensions (a KV cache's
    ``s1 + s2``) in their names, where every symbol in it has one."""
    symbols = re.findall(r"[A-Za-z_]\w*", symbol)
    if not symbols or any(name not in names for name in symbols):
        return None
    return re.sub(r"[A-Za-z_]\w*", lambda match: names[match[0]], symbol)
