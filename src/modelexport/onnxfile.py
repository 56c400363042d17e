"""Read an ONNX file's structure without the onnx package and without its weights.

An ONNX file is one protobuf ``ModelProto``. Its weights sit in the data fields of the
initializers; walking the messages field by field, reading each field's header at its
offset, skips those payloads by their length, so the graph of a file of hundreds of MB is
read in milliseconds and its weights never leave the disk. Reads go by offset (``pread``),
not through a memory map: a file truncated while it is read (an export rewriting it) is
then an error, where touching a mapped page past the new end kills the process (SIGBUS).
Field numbers are those of ``onnx.proto`` (stable since IR version 3). ``htp/wire.py``
splices tags into serialized models with the same walker.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from modelexport import files
from modelexport.errors import UsageError

LEN = 2  # wire type of length-delimited fields
# ModelProto
_IR_VERSION, _OPSET_IMPORT, _GRAPH, _MODEL_PROPS = 1, 8, 7, 14
# GraphProto
_NODE, _GRAPH_NAME, _INITIALIZER, _INPUT, _OUTPUT = 1, 2, 5, 11, 12
# NodeProto
_NODE_INPUT, _NODE_OUTPUT, _NODE_NAME, _OP_TYPE, _DOMAIN, _NODE_PROPS = 1, 2, 3, 4, 7, 9
# TensorProto; the fields that hold no value (its header), the rest are data
_DIMS, _DATA_TYPE, _TENSOR_NAME = 1, 2, 8
_TENSOR_HEADER = frozenset({_DIMS, _DATA_TYPE, _TENSOR_NAME})
# TensorProto.DataType -> (name, bits per element)
DTYPES: dict[int, tuple[str, float]] = {
    1: ("float32", 32), 2: ("uint8", 8), 3: ("int8", 8), 4: ("uint16", 16), 5: ("int16", 16),
    6: ("int32", 32), 7: ("int64", 64), 8: ("string", 0), 9: ("bool", 8), 10: ("float16", 16),
    11: ("float64", 64), 12: ("uint32", 32), 13: ("uint64", 64), 14: ("complex64", 64),
    15: ("complex128", 128), 16: ("bfloat16", 16), 17: ("float8e4m3fn", 8),
    18: ("float8e4m3fnuz", 8), 19: ("float8e5m2", 8), 20: ("float8e5m2fnuz", 8),
    21: ("uint4", 4), 22: ("int4", 4), 23: ("float4e2m1", 4), 24: ("float8e8m0", 8),
    25: ("uint2", 2), 26: ("int2", 2), 27: ("float6e2m3", 6), 28: ("float6e3m2", 6),
}


def varint(data: memoryview, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def fields(data: memoryview) -> Iterator[tuple[int, int, memoryview, memoryview]]:
    """Yield (field number, wire type, whole field bytes, payload) for each top-level field;
    the payload of a varint field is its value's bytes."""
    pos, end = 0, len(data)
    while pos < end:
        start = pos
        key, pos = varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            begin = pos
            _, pos = varint(data, pos)
            payload = data[begin:pos]
        elif wire == 1:
            pos += 8
            payload = data[pos - 8 : pos]
        elif wire == LEN:
            length, pos = varint(data, pos)
            payload = data[pos : pos + length]
            pos += length
        elif wire == 5:
            pos += 4
            payload = data[pos - 4 : pos]
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if number == 0 or pos > end:
            raise ValueError("truncated or not a protobuf message")
        yield number, wire, data[start:pos], payload


def _int(payload: memoryview) -> int:
    return varint(payload, 0)[0]


def _text(payload: memoryview) -> str:
    return bytes(payload).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class TensorSig:
    """A graph input or output: name, element type, shape (ints, or names of free dims)."""

    name: str
    dtype: str
    shape: tuple[int | str, ...] | None  # None: rank unknown


@dataclass(frozen=True)
class Node:
    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    props: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Skeleton:
    """Everything of an ONNX model but its weights' values."""

    ir_version: int
    opsets: dict[str, int]
    inputs: tuple[TensorSig, ...]
    outputs: tuple[TensorSig, ...]
    nodes: tuple[Node, ...]
    initializers: dict[str, int]  # name -> bytes of its value
    props: dict[str, str]  # the model's metadata_props
    name: str = ""  # the graph's


def read(path: Path) -> Skeleton:
    """The skeleton of the ONNX file at ``path``; UsageError if it is not one (or not a
    regular file, or it changed while it was read)."""
    with files.opened(path) as file:
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            raise UsageError(f"{path}: not an ONNX model (empty file)")
        try:
            return _model(_File(file.fileno(), size))
        except (ValueError, IndexError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: not an ONNX model ({exc})") from None
        except OSError as exc:
            raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None


class _File:
    """An open file read by offset."""

    def __init__(self, handle: int, size: int) -> None:
        self.handle = handle
        self.size = size

    def take(self, start: int, length: int) -> memoryview:
        data = os.pread(self.handle, length, start)
        if len(data) != length:
            raise ValueError("the file got shorter while it was read")
        return memoryview(data)

    def spans(self, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
        """(field number, wire type, field start, payload start, payload length) of each
        field between ``start`` and ``end``, reading the headers only."""
        pos = start
        while pos < end:
            head = self.take(pos, min(20, end - pos))
            key, at = varint(head, 0)
            number, wire = key >> 3, key & 7
            if wire == LEN:
                length, at = varint(head, at)
            elif wire == 0:
                length = varint(head, at)[1] - at
            elif wire in (1, 5):
                length = 8 if wire == 1 else 4
            else:
                raise ValueError(f"unsupported protobuf wire type {wire}")
            if number == 0 or pos + at + length > end:
                raise ValueError("truncated or not a protobuf message")
            yield number, wire, pos, pos + at, length
            pos += at + length


def _model(file: _File) -> Skeleton:
    ir_version, opsets, props = 0, {}, {}
    graph: tuple[int, int] | None = None
    for number, wire, _, start, length in file.spans(0, file.size):
        if number == _GRAPH and wire == LEN:
            graph = (start, length)
        elif number in (_IR_VERSION, _OPSET_IMPORT, _MODEL_PROPS):
            payload = file.take(start, length)
            if number == _IR_VERSION and wire == 0:
                ir_version = _int(payload)
            elif number == _OPSET_IMPORT and wire == LEN:
                domain, version = _opset(payload)
                opsets[domain] = version
            elif number == _MODEL_PROPS and wire == LEN:
                key, value = _entry(payload)
                props[key] = value
    if graph is None or not ir_version:
        raise ValueError("no graph")
    return _graph(file, *graph, ir_version, opsets, props)


def _graph(file: _File, begin: int, length: int, ir_version: int, opsets: dict[str, int],
           props: dict[str, str]) -> Skeleton:
    nodes, inputs, outputs = [], [], []
    initializers: dict[str, int] = {}
    graph_name = ""
    for number, wire, _, start, size in file.spans(begin, begin + length):
        if wire != LEN or number not in (_NODE, _GRAPH_NAME, _INITIALIZER, _INPUT, _OUTPUT):
            continue
        if number == _INITIALIZER:
            name, value_bytes = _tensor(_header(file, start, size))
            initializers[name] = value_bytes
            continue
        payload = file.take(start, size)
        if number == _NODE:
            nodes.append(_node(payload))
        elif number == _GRAPH_NAME:
            graph_name = _text(payload)
        elif number == _INPUT:
            inputs.append(_value_info(payload))
        elif number == _OUTPUT:
            outputs.append(_value_info(payload))
    # Older exporters list the initializers among the inputs too; a caller feeds neither.
    fed = tuple(sig for sig in inputs if sig.name not in initializers)
    return Skeleton(ir_version, opsets, fed, tuple(outputs), tuple(nodes), initializers, props,
                    graph_name)


def _header(file: _File, begin: int, length: int) -> memoryview:
    """A TensorProto without its data fields: what ``_tensor`` reads, without the value."""
    return memoryview(b"".join(
        file.take(field_start, start + size - field_start)
        for number, _, field_start, start, size in file.spans(begin, begin + length)
        if number in _TENSOR_HEADER))


def _opset(data: memoryview) -> tuple[str, int]:
    domain, version = "", 0
    for number, wire, _, payload in fields(data):
        if number == 1 and wire == LEN:
            domain = _text(payload)
        elif number == 2 and wire == 0:
            version = _int(payload)
    return domain, version


def _entry(data: memoryview) -> tuple[str, str]:
    key = value = ""
    for number, wire, _, payload in fields(data):
        if number == 1 and wire == LEN:
            key = _text(payload)
        elif number == 2 and wire == LEN:
            value = _text(payload)
    return key, value


def _node(data: memoryview) -> Node:
    inputs, outputs, props = [], [], {}
    name = op_type = domain = ""
    for number, wire, _, payload in fields(data):
        if wire != LEN:
            continue
        if number == _NODE_INPUT:
            inputs.append(_text(payload))
        elif number == _NODE_OUTPUT:
            outputs.append(_text(payload))
        elif number == _NODE_NAME:
            name = _text(payload)
        elif number == _OP_TYPE:
            op_type = _text(payload)
        elif number == _DOMAIN:
            domain = _text(payload)
        elif number == _NODE_PROPS:
            key, value = _entry(payload)
            props[key] = value
    qualified = f"{domain}.{op_type}" if domain not in ("", "ai.onnx") else op_type
    return Node(name, qualified, tuple(inputs), tuple(outputs), props)


def _tensor(data: memoryview) -> tuple[str, int]:
    """An initializer's name and the bytes of its value, from its dims and element type
    (the same whether the value is inline or external)."""
    dims: list[int] = []
    name, dtype = "", 1
    for number, wire, _, payload in fields(data):
        if number == _DIMS and wire == 0:
            dims.append(_int(payload))
        elif number == _DIMS and wire == LEN:  # packed
            pos = 0
            while pos < len(payload):
                value, pos = varint(payload, pos)
                dims.append(value)
        elif number == _DATA_TYPE and wire == 0:
            dtype = _int(payload)
        elif number == _TENSOR_NAME and wire == LEN:
            name = _text(payload)
    count = 1
    for dim in dims:
        count *= dim
    return name, int(count * DTYPES.get(dtype, ("", 0))[1] // 8)


def _value_info(data: memoryview) -> TensorSig:
    name, dtype, shape = "", "undefined", None
    for number, wire, _, payload in fields(data):
        if number == 1 and wire == LEN:
            name = _text(payload)
        elif number == 2 and wire == LEN:  # TypeProto
            for tnumber, twire, _, tensor in fields(payload):
                if tnumber == 1 and twire == LEN:  # TypeProto.Tensor
                    dtype, shape = _tensor_type(tensor)
    return TensorSig(name, dtype, shape)


def _tensor_type(data: memoryview) -> tuple[str, tuple[int | str, ...] | None]:
    dtype, shape = "undefined", None
    for number, wire, _, payload in fields(data):
        if number == 1 and wire == 0:
            dtype = DTYPES.get(_int(payload), (f"type{_int(payload)}", 0))[0]
        elif number == 2 and wire == LEN:
            shape = tuple(_dim(dim) for n, w, _, dim in fields(payload) if n == 1 and w == LEN)
    return dtype, shape


def _dim(data: memoryview) -> int | str:
    for number, wire, _, payload in fields(data):
        if number == 1 and wire == 0:
            return _int(payload)
        if number == 2 and wire == LEN:
            return _text(payload)
    return "?"
