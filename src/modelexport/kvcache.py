"""A decoder LLM called as it is deployed: its key/value cache passed in and out as plain
tensors, ``past_key_values.{i}.key/value`` in and ``present.{i}.key/value`` out (the names
optimum and onnxruntime-genai use).

The exporters cannot take transformers' cache objects as inputs (TorchScript not at all;
dynamo only with pytree registrations whose rebuilt cache concatenates onto lifted empty
constants, which its own decomposition step then rejects: measured with torch 2.13 and
transformers 5.25). So the loaded model's ``forward`` is replaced on the instance by
``CacheForward``, which builds the cache from the tensors inside the traced call: module
paths, parameter names and scopes stay the model's own, and the cache update ops fall in
the attention modules that make them.

Every cache layer is rebuilt as a full (growing) layer, sliding-window ones included: the
sliding mask still applies the window, so the outputs are the same; ``present`` keeps every
position, as a deployed full cache does.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelexport.errors import UsageError, describe

if TYPE_CHECKING:
    from collections.abc import Sequence

    import torch

    from modelexport.inputs import Axes, InputSpec
    from modelexport.onnxfile import TensorSig

TASK = "text-generation-with-past"
TASKS = (TASK,)
PAST, PRESENT = "past_key_values", "present"
KINDS = ("key", "value")
# The inputs a decoder takes beside its cache, in the order the graph lists them.
TOKENS = ("input_ids", "attention_mask", "position_ids")
# What a profile of a decoder times by default: a prompt, then new tokens one at a time.
PROMPT_TOKENS, NEW_TOKENS = 32, 16
PREFILL, DECODE = "prefill", "decode"
# Dimension names as onnxruntime-genai and optimum name them.
BATCH, SEQUENCE, PAST_LENGTH, TOTAL = ("batch_size", "sequence_length",
                                       "past_sequence_length", "total_sequence_length")


@dataclass(frozen=True)
class Layout:
    """What a decoder's cache looks like: per layer the key's and the value's
    (heads, head size), their dtype, and the names the model's forward takes."""

    layers: tuple[tuple[tuple[int, int], tuple[int, int]], ...]
    dtype: str
    takes: tuple[str, ...]  # of TOKENS
    argument: str  # the forward's cache argument: "cache" (transformers 5) or PAST


class CacheForward:
    """The decoder's forward over plain tensors: ``past_key_values`` is a list with one
    ``{"key": ..., "value": ...}`` per layer (``inputs.nested`` builds it from the flat
    names); returns ``logits`` and ``present`` in the same form."""

    def __init__(self, forward: Any, layout: Layout) -> None:
        self.original = forward
        self.layout = layout

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                 position_ids: torch.Tensor | None = None,
                 past_key_values: list[dict[str, torch.Tensor]] | None = None) -> Any:
        result = self._call(input_ids, attention_mask, position_ids,
                            _cache(past_key_values or []))
        return {"logits": result.logits,
                PRESENT: [{"key": layer.keys, "value": layer.values}
                          for layer in _cache_of(result).layers]}

    def reference(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  position_ids: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        """The model's own forward with its own cache (None: an empty one): the logits and
        the grown cache, to pass to the next call."""
        result = self._call(input_ids, attention_mask, position_ids, cache)
        return result.logits, _cache_of(result)

    def _call(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
              position_ids: torch.Tensor | None, cache: Any) -> Any:
        given = {"attention_mask": attention_mask, "position_ids": position_ids}
        return self.original(
            input_ids=input_ids, use_cache=True,
            **{name: value for name, value in given.items() if name in self.layout.takes},
            **({self.layout.argument: cache} if cache is not None else {}),
        )


def attach(model: torch.nn.Module, label: str) -> Layout:
    """Make ``model`` take and give its cache as tensors (``CacheForward``); its layout,
    learnt from one two-token forward. One line where it has no cache to give."""
    params = inspect.signature(model.forward).parameters
    argument = next((name for name in ("cache", PAST) if name in params), None)
    if argument is None or "use_cache" not in params:
        raise UsageError(f"{label}: {type(model).__name__} takes no KV cache, so it cannot "
                           f"be exported for {TASK} (a decoder-only language model can)")
    import torch

    try:
        with torch.no_grad():
            result = model(input_ids=torch.zeros(1, 2, dtype=torch.long), use_cache=True)
    except Exception as exc:  # the model's own code
        raise UsageError(f"{label}: {type(model).__name__} fails on two tokens with its "
                         f"cache: {describe(exc)}") from exc
    layers = getattr(_cache_of(result), "layers", None)
    if not layers or any(getattr(layer, "keys", None) is None for layer in layers):
        raise UsageError(f"{label}: {type(model).__name__} returns no key/value cache per "
                         f"layer ({type(result).__name__}), so it cannot be exported for "
                         f"{TASK} (a decoder-only language model can)")
    first = layers[0].keys
    layout = Layout(
        layers=tuple(((layer.keys.shape[1], layer.keys.shape[3]),
                      (layer.values.shape[1], layer.values.shape[3])) for layer in layers),
        dtype=str(first.dtype).removeprefix("torch."),
        takes=tuple(name for name in TOKENS if name in params),
        argument=argument,
    )
    # A bound method, not the object: torch.export reads the forward's ``__code__``.
    model.forward = CacheForward(model.forward, layout).__call__
    return layout


def cache_forward(model: torch.nn.Module) -> CacheForward | None:
    """The ``CacheForward`` that ``attach`` gave the model, else None."""
    owner = getattr(getattr(model, "forward", None), "__self__", None)
    return owner if isinstance(owner, CacheForward) else None


def layout_of(model: torch.nn.Module) -> Layout | None:
    """The cache layout of a model ``attach`` prepared, else None."""
    forward = cache_forward(model)
    return forward.layout if forward is not None else None


def vocabulary(model: torch.nn.Module) -> int:
    """How many token ids the model's input embedding takes."""
    embeddings = getattr(model, "get_input_embeddings", lambda: None)()
    return int(getattr(embeddings, "num_embeddings", 0) or 2)


def past_name(layer: int, kind: str) -> str:
    return f"{PAST}.{layer}.{kind}"


def specs(layout: Layout, vocab: int, batch: int = 2, sequence: int = 3, past: int = 4
          ) -> list[InputSpec]:
    """The inputs of one call with ``past`` positions cached and ``sequence`` new ones:
    every size at least 2, which torch.export needs to keep a dimension dynamic."""
    from modelexport.inputs import InputSpec

    shapes = {"input_ids": (batch, sequence), "attention_mask": (batch, past + sequence),
              "position_ids": (batch, sequence)}
    ranges = {"input_ids": (0.0, float(vocab)), "attention_mask": (1.0, 1.0),
              "position_ids": (float(past), float(past + sequence))}
    found = [InputSpec(name, shapes[name], "int64", *ranges[name]) for name in layout.takes]
    for index, sizes in enumerate(layout.layers):
        for kind, (heads, size) in zip(KINDS, sizes, strict=True):
            found.append(InputSpec(past_name(index, kind), (batch, heads, past, size),
                                   layout.dtype, -1.0, 1.0))
    return found


def axes(layout: Layout) -> Axes:
    """Batch, new and past length dynamic; the mask spans both (its own name: torch.export
    cannot take a dimension declared as the sum of two others)."""
    found: Axes = {"input_ids": {0: BATCH, 1: SEQUENCE}, "attention_mask": {0: BATCH, 1: TOTAL},
                   "position_ids": {0: BATCH, 1: SEQUENCE}}
    found = {name: dims for name, dims in found.items() if name in layout.takes}
    for index in range(len(layout.layers)):
        for kind in KINDS:
            found[past_name(index, kind)] = {0: BATCH, 2: PAST_LENGTH}
    return found


def phases(graph_inputs: Sequence[TensorSig], prompt: int = PROMPT_TOKENS,
           new: int = NEW_TOKENS) -> dict[str, list[InputSpec]]:
    """The inputs of a decoder export's two phases at batch 1, empty for an export without
    cache inputs: ``prefill``, ``prompt`` tokens on an empty cache (time to first token);
    ``decode``, one token after ``prompt + new // 2`` cached. A decode step's attention
    grows linearly with the cache, so the middle step of ``new`` costs their mean: time per
    output token."""
    from modelexport.inputs import InputSpec

    if not any(sig.name.startswith(PAST + ".") for sig in graph_inputs):
        return {}
    found: dict[str, list[InputSpec]] = {}
    for phase, tokens, cached in ((PREFILL, prompt, 0), (DECODE, 1, prompt + new // 2)):
        specs = []
        for sig in graph_inputs:
            if sig.name.startswith(PAST + "."):
                shape = sig.shape or ()
                if len(shape) != 4 or not isinstance(shape[1], int) \
                        or not isinstance(shape[3], int):
                    return {}
                heads, size = shape[1], shape[3]
                specs.append(InputSpec(sig.name, (1, heads, cached, size), sig.dtype, -1, 1))
            elif sig.name == "attention_mask":
                specs.append(InputSpec(sig.name, (1, cached + tokens), "int64", 1, 1))
            elif sig.name == "position_ids":
                specs.append(InputSpec(sig.name, (1, tokens), "int64", cached, cached + tokens))
            elif sig.name == "input_ids":
                specs.append(InputSpec(sig.name, (1, tokens), "int64"))
            else:
                return {}  # an input these phases know nothing of
        found[phase] = specs
    return found


def _cache(past: list[dict[str, torch.Tensor]]) -> Any:
    """A transformers ``DynamicCache`` holding ``past``, one full layer per entry, set
    directly rather than through ``update`` (which concatenates onto a new empty tensor, a
    constant torch.export lifts and then cannot decompose)."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    cache = DynamicCache()
    cache.layers = []
    for entry in past:
        layer = DynamicLayer()
        layer.keys, layer.values = entry["key"], entry["value"]
        layer.device, layer.is_initialized = layer.keys.device, True
        cache.layers.append(layer)
    return cache


def _cache_of(result: Any) -> Any:
    """The cache in a model's output (transformers 5 names it ``cache``), or None."""
    return getattr(result, "cache", None) or getattr(result, PAST, None)
