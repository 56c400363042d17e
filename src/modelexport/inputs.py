"""Dummy inputs for an export, from the model's config and forward signature.

Rules are keyed by *input name* (``input_ids``, ``pixel_values``, ...), never by model name: a
model whose forward takes ``pixel_values`` gets an image whatever it is called. An explicit
``InputSpec`` overrides the rule for its name.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from modelexport.errors import UsageError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

DTYPES = ("int64", "int32", "float32", "float16", "bfloat16", "bool")
_SPEC = re.compile(
    r"^(?P<name>[A-Za-z_]\w*)=(?P<shape>\d+(?:x\d+)*)(?::(?P<dtype>\w+))?"
    r"(?::(?P<low>-?[\d.e+-]+)\.\.(?P<high>-?[\d.e+-]+))?$"
)


@dataclass(frozen=True)
class InputSpec:
    """One model input: shape, dtype and the value range [low, high) it is drawn from."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    low: float | None = None  # None: the rule's range for this name, else [0, 1)
    high: float | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InputSpec:
        low, high = data.get("range", (None, None))
        return cls(data["name"], tuple(data["shape"]), data.get("dtype", "float32"), low, high)

    def to_json(self) -> dict[str, Any]:
        """As a manifest writes it: with ``range`` when one was given."""
        data = self.signature_json()
        return data if self.low is None else {**data, "range": [self.low, self.high]}

    def signature_json(self) -> dict[str, Any]:
        """What the export was fed, as the sidecar records it: name, shape, dtype."""
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


def parse_spec(text: str) -> InputSpec:
    """``input_ids=1x16:int64:0..1000`` -> InputSpec (dtype and range optional)."""
    match = _SPEC.match(text.strip())
    if not match:
        raise UsageError(
            f"--input {text!r}: expected NAME=DIMxDIM[:DTYPE][:LOW..HIGH], "
            "e.g. input_ids=1x16:int64:0..1000"
        )
    dtype = match["dtype"] or "float32"
    if dtype not in DTYPES:
        raise UsageError(f"--input {text!r}: dtype must be one of {', '.join(DTYPES)}")
    low = float(match["low"]) if match["low"] is not None else None
    high = float(match["high"]) if match["high"] is not None else None
    if low is not None and high is not None and high < low:
        raise UsageError(f"--input {text!r}: empty range {low}..{high}")
    shape = tuple(int(d) for d in match["shape"].split("x"))
    return InputSpec(match["name"], shape, dtype, low, high)


def _text(config: Any, batch: int) -> tuple[int, ...]:
    limit = getattr(config, "max_position_embeddings", None) or 16
    return (batch, min(16, int(limit)))


def _image(config: Any, batch: int) -> tuple[int, ...]:
    size = getattr(config, "image_size", 224)
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return (batch, getattr(config, "num_channels", 3), height, width)


def _vocab(config: Any) -> float:
    return float(getattr(config, "vocab_size", None) or 2)


# name -> (shape, dtype, low, high) from the config. Only names a forward commonly takes.
_RULES: dict[str, Callable[[Any, int], tuple[tuple[int, ...], str, float, float]]] = {
    "input_ids": lambda c, b: (_text(c, b), "int64", 0, _vocab(c)),
    "decoder_input_ids": lambda c, b: (_text(c, b), "int64", 0, _vocab(c)),
    "attention_mask": lambda c, b: (_text(c, b), "int64", 1, 1),
    "token_type_ids": lambda c, b: (_text(c, b), "int64", 0, 0),
    "pixel_values": lambda c, b: (_image(c, b), "float32", -1, 1),
    "input_values": lambda c, b: ((b, 16000), "float32", -1, 1),
    "input_features": lambda c, b: (
        (b, getattr(c, "num_mel_bins", 80), 2 * getattr(c, "max_source_positions", 1500)),
        "float32", -1, 1,
    ),
}


# Dynamic axes by input name, as optimum exports them: what a deployed model is fed in other
# sizes than it was traced with. Image height and width stay fixed (optimum marks them
# dynamic, but ViT-style position embeddings are built for one image size), and so does the
# length of Whisper-style features (the encoder is built for 3,000 frames).
DEFAULT_AXES: dict[str, dict[int, str]] = {
    "input_ids": {0: "batch_size", 1: "sequence_length"},
    "attention_mask": {0: "batch_size", 1: "sequence_length"},
    "token_type_ids": {0: "batch_size", 1: "sequence_length"},
    "decoder_input_ids": {0: "batch_size", 1: "decoder_sequence_length"},
    "pixel_values": {0: "batch_size"},
    "input_values": {0: "batch_size", 1: "sequence_length"},
    "input_features": {0: "batch_size"},
}
Axes = dict[str, dict[int, str]]  # input name -> axis -> the dimension's name
_AXES = re.compile(r"^(?P<name>[A-Za-z_]\w*):(?P<axes>\d+=[A-Za-z_]\w*(?:,\d+=[A-Za-z_]\w*)*)$")


def parse_axes(text: str) -> tuple[str, dict[int, str]]:
    """``input_ids:0=batch,1=sequence`` -> ``("input_ids", {0: "batch", 1: "sequence"})``."""
    match = _AXES.match(text.strip())
    if not match:
        raise UsageError(f"--dynamic {text!r}: expected NAME:AXIS=DIM[,AXIS=DIM...], "
                         "e.g. input_ids:0=batch,1=sequence")
    pairs = [pair.split("=") for pair in match["axes"].split(",")]
    return match["name"], {int(axis): dim for axis, dim in pairs}


def axes_for(specs: list[InputSpec], given: Axes | None) -> Axes:
    """The dynamic axes of these inputs: ``given`` (checked against them), or the defaults
    for the inputs that have one when ``given`` is None."""
    shapes = {spec.name: spec.shape for spec in specs}
    if given is None:
        return {name: {a: d for a, d in axes.items() if a < len(shapes[name])}
                for name, axes in DEFAULT_AXES.items() if name in shapes}
    for name, axes in given.items():
        if name not in shapes:
            raise UsageError(f"--dynamic {name}: not an input of this model "
                             f"({', '.join(shapes)})")
        beyond = [a for a in axes if a >= len(shapes[name])]
        if beyond:
            raise UsageError(f"--dynamic {name}: axis {beyond[0]} of a {len(shapes[name])}-d "
                             "input")
    return given


def traceable(specs: list[InputSpec], axes: Axes) -> Axes:
    """``axes`` without those traced at size 0 or 1, which torch.export fixes (an explicit
    ``--input input_ids=1x32`` under the default axes): those stay fixed, said once."""
    shapes = {spec.name: spec.shape for spec in specs}
    kept: Axes = {}
    for name, dims in axes.items():
        small = [axis for axis in dims if shapes[name][axis] < 2]
        if small:
            log.warning("%s: axis %s is traced at size %d and stays fixed; give it a size of "
                        "2 or more to make it dynamic", name, small[0], shapes[name][small[0]])
        left = {axis: dim for axis, dim in dims.items() if axis not in small}
        if left:
            kept[name] = left
    return kept


def resized(specs: list[InputSpec], axes: Axes) -> list[InputSpec]:
    """The specs at other sizes along their dynamic axes, the same size for the same
    dimension name: a batch one larger, other dimensions 3 shorter (or one longer when
    that would leave fewer than 2): what a dynamic export is checked at a second time."""
    sizes: dict[str, int] = {}
    out = []
    for spec in specs:
        shape = list(spec.shape)
        for axis, dim in axes.get(spec.name, {}).items():
            if dim not in sizes:
                size = shape[axis]
                sizes[dim] = size + 1 if axis == 0 else (size - 3 if size > 4 else size + 1)
            shape[axis] = sizes[dim]
        out.append(replace(spec, shape=tuple(shape)))
    return out


# Masks and segment ids only go beside token ids, and take their shape (ViT's forward
# accepts an attention_mask too, but it means nothing there).
_COMPANIONS = ("attention_mask", "token_type_ids")


def _rule(name: str, config: Any, batch: int) -> InputSpec | None:
    if name not in _RULES:
        return None
    shape, dtype, low, high = _RULES[name](config, batch)
    return InputSpec(name, shape, dtype, low, high)


def default_specs(
    model: torch.nn.Module, config: Any, overrides: Sequence[InputSpec] = (), batch: int = 1
) -> list[InputSpec]:
    """Specs for every forward parameter we know how to fill, plus the explicit ones.

    A required parameter with neither a rule nor an override is an error that names it.
    """
    given = {spec.name: spec for spec in overrides}
    params = inspect.signature(model.forward).parameters
    # Strict even when forward takes **kwargs: there a stray name is silently ignored.
    unknown = sorted(set(given) - set(params))
    if unknown:
        raise UsageError(f"--input {', '.join(unknown)}: not a parameter of forward()")
    tokens = given.get("input_ids")
    specs: list[InputSpec] = []
    for name, param in params.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        rule = _rule(name, config, batch)
        if name in _COMPANIONS and rule is not None:
            if "input_ids" not in params:
                rule = None
            elif tokens is not None:
                rule = replace(rule, shape=tokens.shape)
        if name in given:
            spec = given.pop(name)
            if spec.low is None and rule is not None:
                spec = replace(spec, low=rule.low, high=rule.high)
            specs.append(spec)
        elif rule is not None:
            specs.append(rule)
        elif param.default is inspect.Parameter.empty:
            raise UsageError(
                f"forward() needs {name!r} and no default input is known for it: "
                f"pass --input {name}=SHAPE:DTYPE"
            )
    specs.extend(given.values())
    if not specs:
        raise UsageError("no inputs: pass --input NAME=SHAPE:DTYPE")
    return specs


_ENTRY = re.compile(r"^(?P<argument>[A-Za-z_]\w*)\.(?P<index>\d+)\.(?P<field>\w+)$")


def nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flat input names as a forward takes its arguments: ``past_key_values.0.key`` is the
    ``key`` of entry 0 of the list ``past_key_values``; other names stay as they are. The
    graph, the sidecar and onnxruntime use the flat names."""
    found: dict[str, Any] = {}
    for name, value in values.items():
        match = _ENTRY.match(name)
        if match is None:
            found[name] = value
            continue
        entries = found.setdefault(match["argument"], [])
        index = int(match["index"])
        entries.extend({} for _ in range(index + 1 - len(entries)))
        entries[index][match["field"]] = value
    return found


def specs_of(tensors: dict[str, torch.Tensor]) -> list[InputSpec]:
    """Specs describing given tensors, each drawn from its own value range, so that inputs
    at a second shape look like them."""
    return [InputSpec(name, tuple(t.shape), str(t.dtype).removeprefix("torch."),
                      float(t.min()) if t.numel() else None,
                      float(t.max()) + (1 if not t.dtype.is_floating_point else 0)
                      if t.numel() else None)
            for name, t in tensors.items()]


def make(specs: list[InputSpec], seed: int = 0) -> dict[str, torch.Tensor]:
    """Tensors for the specs, reproducible for a seed."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for spec in specs:
        dtype = getattr(torch, spec.dtype)
        low = 0.0 if spec.low is None else spec.low
        high = 1.0 if spec.high is None else spec.high
        if dtype.is_floating_point:
            values = torch.rand(spec.shape, generator=generator)
            tensors[spec.name] = (low + values * (high - low)).to(dtype)
        elif high <= low + 1:
            tensors[spec.name] = torch.full(spec.shape, int(low)).to(dtype)
        else:
            values = torch.randint(int(low), int(high), spec.shape, generator=generator)
            tensors[spec.name] = values.to(dtype)
    return tensors


def arrays(specs: list[InputSpec], seed: int = 0) -> dict[str, Any]:
    """NumPy arrays for the specs, for ONNX Runtime without torch: each drawn from its own
    range, else from the rule for its name (ids 0 and 1, which every vocabulary has), else
    [0, 1)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in specs:
        low, high = _bounds(spec)
        if spec.dtype in ("float32", "float16"):
            values = low + rng.random(spec.shape) * (high - low)
            feeds[spec.name] = values.astype(spec.dtype)
        elif spec.dtype == "bool":
            feeds[spec.name] = rng.random(spec.shape) < 0.5
        else:
            top = max(int(high), int(low) + 1)
            feeds[spec.name] = rng.integers(int(low), top, spec.shape).astype(spec.dtype)
    return feeds


def _bounds(spec: InputSpec) -> tuple[float, float]:
    """The range values are drawn from: the spec's, else its name's rule's, else [0, 1)."""
    rule = _rule(spec.name, None, 1)
    low = next(v for v in (spec.low, rule.low if rule else None, 0.0) if v is not None)
    high = next(v for v in (spec.high, rule.high if rule else None, 1.0) if v is not None)
    return low, high
