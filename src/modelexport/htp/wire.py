"""ONNX protobuf written without copying its weights: metadata added to a serialized model
(``add_metadata``), and an ``onnx_ir`` model saved with each weight streamed from memory
(``save_streamed``).

Parsing and re-serializing a large model costs a third of the export itself
(docs/performance.md, "Measured choices"). Protobuf merges repeated fields of concatenated
messages, so a NodeProto's bytes followed by the bytes of
``NodeProto(metadata_props=[...])`` *is* that node with the extra entries. We walk the two
outer messages (ModelProto, GraphProto) field by field, parse only the small NodeProtos, and
hand the initializer bytes through as zero-copy slices.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import onnx

from modelexport.onnxfile import LEN as _LEN
from modelexport.onnxfile import fields as _fields

_GRAPH = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number
_NODE = onnx.GraphProto.DESCRIPTOR.fields_by_name["node"].number
_INPUT = onnx.GraphProto.DESCRIPTOR.fields_by_name["input"].number
_OUTPUT = onnx.GraphProto.DESCRIPTOR.fields_by_name["output"].number
_VALUE_INFO = onnx.GraphProto.DESCRIPTOR.fields_by_name["value_info"].number
Shape = tuple[int | str, ...]


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_field(number: int, parts: list[bytes | memoryview]) -> list[bytes | memoryview]:
    size = sum(len(p) for p in parts)
    return [_encode_varint(number << 3 | _LEN), _encode_varint(size), *parts]


def read(model_bytes: bytes | memoryview) -> tuple[onnx.ModelProto, list[onnx.NodeProto]]:
    """The model without its graph (opsets, versions; its graph holds only the inputs and
    outputs) and the top-level graph's nodes. Neither touches the initializers.
    """
    header: list[memoryview] = []
    nodes = []
    ends: dict[int, list[onnx.ValueInfoProto]] = {_INPUT: [], _OUTPUT: []}
    for number, wire, whole, graph in _fields(memoryview(model_bytes)):
        if number != _GRAPH or wire != _LEN:
            header.append(whole)
            continue
        for field, fwire, _, payload in _fields(graph):
            if field == _NODE and fwire == _LEN:
                nodes.append(onnx.NodeProto.FromString(payload))
            elif field in ends and fwire == _LEN:
                ends[field].append(onnx.ValueInfoProto.FromString(payload))
    model = onnx.ModelProto.FromString(b"".join(header))
    model.graph.input.extend(ends[_INPUT])
    model.graph.output.extend(ends[_OUTPUT])
    return model, nodes


def add_metadata(
    model_bytes: bytes | memoryview, node_props: list[dict[str, str]], model_props: dict[str, str],
    renames: dict[str, str] | None = None, shapes: dict[str, Shape] | None = None,
) -> list[bytes | memoryview]:
    """The model with ``node_props[i]`` added to node i and ``model_props`` to the model,
    the values named in ``renames`` renamed wherever they appear (for graph outputs: their
    producer, consumers, output and value_info entries; weights are never renamed), and the
    graph inputs and outputs named in ``shapes`` given those shapes (by their old names).

    Returns the new serialization as a list of chunks to write in order (mostly views into
    ``model_bytes``), so the weights are never copied.
    """
    renames, shapes = renames or {}, shapes or {}
    out: list[bytes | memoryview] = []
    node_index = 0
    for number, wire, whole, graph in _fields(memoryview(model_bytes)):
        if number != _GRAPH or wire != _LEN:
            out.append(whole)
            continue
        graph_parts: list[bytes | memoryview] = []
        for field, fwire, gwhole, payload in _fields(graph):
            if field == _NODE and fwire == _LEN:
                if node_index == len(node_props):
                    raise ValueError(f"got tags for {len(node_props)} nodes, the graph has more")
                extra = _entries(onnx.NodeProto(), node_props[node_index])
                if renames:
                    graph_parts.extend(_length_field(_NODE, [_renamed_node(payload, renames),
                                                             extra]))
                else:
                    graph_parts.extend(_length_field(_NODE, [payload, extra]) if extra
                                       else [gwhole])
                node_index += 1
            elif (renames or shapes) and field in (_INPUT, _OUTPUT, _VALUE_INFO) \
                    and fwire == _LEN:
                info = onnx.ValueInfoProto.FromString(payload)
                retyped(info, renames, shapes)
                graph_parts.extend(_length_field(field, [info.SerializeToString()]))
            else:
                graph_parts.append(gwhole)
        out.extend(_length_field(_GRAPH, graph_parts))
    if node_index != len(node_props):
        raise ValueError(f"graph has {node_index} nodes, got tags for {len(node_props)}")
    out.append(_entries(onnx.ModelProto(), model_props))
    return out


def retyped(info: onnx.ValueInfoProto, renames: dict[str, str], shapes: dict[str, Shape]
            ) -> None:
    """``info`` with its new shape (looked up by its old name), then its new name."""
    if info.name in shapes and info.type.HasField("tensor_type"):
        dims = info.type.tensor_type.shape.dim
        for dim, value in zip(dims, shapes[info.name], strict=True):
            if isinstance(value, str):
                dim.dim_param = value
            else:
                dim.dim_value = value
    info.name = renames.get(info.name, info.name)


def _renamed_node(payload: memoryview, renames: dict[str, str]) -> bytes | memoryview:
    node = onnx.NodeProto.FromString(payload)
    names = [*node.input, *node.output]
    if not any(name in renames for name in names):
        return payload
    for field in (node.input, node.output):
        for i, name in enumerate(field):
            field[i] = renames.get(name, name)
    return node.SerializeToString()


def _entries(message: onnx.NodeProto | onnx.ModelProto, props: dict[str, str]) -> bytes:
    for key, value in props.items():
        message.metadata_props.add(key=key, value=value)
    return message.SerializeToString()


_INITIALIZER = onnx.GraphProto.DESCRIPTOR.fields_by_name["initializer"].number
_RAW_DATA = onnx.TensorProto.DESCRIPTOR.fields_by_name["raw_data"].number


def save_streamed(model: Any, path: Path) -> bool:
    """Write an ``onnx_ir`` model as one ONNX file, each weight written straight from its
    tensor's memory. ``onnx_ir.save`` builds a ModelProto holding a copy of every weight and
    then serializes it whole, a second copy: more peak memory and seconds more than
    ``torch.onnx.export``'s own default of streaming the weights to a separate data file
    (docs/performance.md, "Measured choices"). Here the graph without its weights is serialized (a
    few MB), and each initializer is spliced in as a TensorProto whose ``raw_data`` comes
    from the tensor. Returns False, writing nothing, for a weight it cannot stream (a
    string tensor, sub-byte types, one stored elsewhere): the caller saves it as before.
    """
    weights = dict(model.graph.initializers)
    tensors = [(name, value.const_value) for name, value in weights.items()]
    if not all(_streamable(tensor) for _, tensor in tensors):
        return False
    model.graph.initializers.clear()
    try:
        import onnx_ir

        skeleton = memoryview(onnx_ir.serde.serialize_model(model).SerializeToString())
    finally:
        model.graph.initializers.update(weights)
    heads = [_tensor_head(name, tensor) for name, tensor in tensors]
    with path.open("wb") as file:
        for number, wire, whole, graph in _fields(skeleton):
            if number != _GRAPH or wire != _LEN:
                file.write(whole)
                continue
            entries = [(_encode_varint(_RAW_DATA << 3 | _LEN) + _encode_varint(t.nbytes), t)
                       for _, t in tensors]
            sizes = [len(head) + len(raw) + tensor.nbytes
                     for head, (raw, tensor) in zip(heads, entries, strict=True)]
            total = len(graph) + sum(len(_initializer_key(size)) + size for size in sizes)
            file.write(_encode_varint(_GRAPH << 3 | _LEN) + _encode_varint(total))
            file.write(graph)
            for head, (raw, tensor), size in zip(heads, entries, sizes, strict=True):
                file.write(_initializer_key(size) + head + raw)
                _write_data(file, tensor)
    return True


def _write_data(file: Any, tensor: Any) -> None:
    """The tensor's bytes, little-endian. A NumPy-backed tensor (a weight the exporter's
    optimizer folded, e.g. a transposed MatMul weight) is written from a contiguous copy:
    its own ``tofile`` writes a transposed view element by element, several times slower
    (docs/performance.md, "Measured choices")."""
    import numpy as np

    array = getattr(tensor, "raw", None)
    if isinstance(array, np.ndarray) and sys.byteorder == "little" \
            and array.dtype.byteorder in "=|<":
        file.write(np.ascontiguousarray(array).view(np.uint8).data)
    else:
        tensor.tofile(file)


def _streamable(tensor: Any) -> bool:
    dtype = getattr(tensor, "dtype", None)
    if dtype is None or dtype.name == "STRING" or not hasattr(tensor, "tofile"):
        return False
    return dtype.bitwidth >= 8 and not getattr(tensor, "metadata_props", None)


def _tensor_head(name: str, tensor: Any) -> bytes:
    """The TensorProto's fields but its data: name, dims, type (and doc string)."""
    head = onnx.TensorProto(name=name, dims=list(tensor.shape.numpy()), data_type=tensor.dtype)
    if tensor.doc_string:
        head.doc_string = tensor.doc_string
    return head.SerializeToString()


def _initializer_key(size: int) -> bytes:
    return _encode_varint(_INITIALIZER << 3 | _LEN) + _encode_varint(size)
