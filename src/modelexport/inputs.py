"""Dummy inputs for an export, from the model's config and forward signature.

Rules are keyed by *input name* (``input_ids``, ``pixel_values``, ...), never by model name: a
model whose forward takes ``pixel_values`` gets an image whatever it is called. An explicit
``InputSpec`` overrides the rule for its name.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from modelexport.errors import UsageError

if TYPE_CHECKING:
    import torch

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


# Masks and segment ids only go beside token ids, and take their shape (ViT's forward
# accepts an attention_mask too, but it means nothing there).
_COMPANIONS = ("attention_mask", "token_type_ids")


def _rule(name: str, config: Any, batch: int) -> InputSpec | None:
    if name not in _RULES:
        return None
    shape, dtype, low, high = _RULES[name](config, batch)
    return InputSpec(name, shape, dtype, low, high)


def default_specs(
    model: torch.nn.Module, config: Any, overrides: list[InputSpec] = (), batch: int = 1
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
