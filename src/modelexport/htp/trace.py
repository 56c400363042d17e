"""Trace: record the module call tree of one forward pass with forward hooks.

The tree is what the model actually did, not what its attribute names suggest: a ModuleList
that is only iterated never appears, a shared module called twice appears as two calls.

The hooks ride along the exporter's own forward pass (both exporters run the model once,
TorchScript on real tensors, dynamo on fake ones), so tracing costs no extra forward, which
would be a large part of the export (docs/performance.md, "Measured choices").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from modelexport import modulepath, outputs

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Call:
    path: str  # "" is the root module
    parent: int | None  # index of the calling Call


@dataclass
class CallTree:
    calls: list[Call]
    classes: dict[str, str]  # every module path -> class name, called or not
    builtin: frozenset[str]  # paths of torch.nn building blocks (Linear, Conv2d, ...)
    _chains: dict[str, str] = field(default_factory=dict, repr=False)

    @cached_property
    def called(self) -> frozenset[str]:
        return frozenset(call.path for call in self.calls)

    def call_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for call in self.calls:
            counts[call.path] = counts.get(call.path, 0) + 1
        return counts

    @cached_property
    def _first_callers(self) -> dict[str, str | None]:
        callers: dict[str, str | None] = {}
        for call in self.calls:
            if call.path not in callers:
                callers[call.path] = None if call.parent is None else self.calls[call.parent].path
        return callers

    def parent_of(self, path: str) -> str | None:
        """The caller of the module's first call (None for the root or an uncalled module)."""
        return self._first_callers.get(path)

    def class_chain(self, path: str) -> str:
        """Classes of the called modules from the root down to ``path``, joined by '/'."""
        chain = self._chains.get(path)
        if chain is None:
            called = self.called
            chain = "/".join(self.classes[p] for p in modulepath.lineage(path)
                             if p in called or p == path)
            self._chains[path] = chain
        return chain


class Recorder:
    """Forward hooks on every module of ``model`` while the ``with`` block runs."""

    def __init__(self, model: torch.nn.Module) -> None:
        self._model = model
        self._names = {id(module): name for name, module in model.named_modules()}
        self._calls: list[Call] = []
        self._stack: list[int] = []
        self._handles: list[Any] = []
        # Of the root's last call: the outputs as ONNX will name them, their traced sizes.
        self.output_names: list[str] = []
        self.output_sizes: list[tuple[int, ...] | None] = []

    def __enter__(self) -> Recorder:
        for module in self._model.modules():
            self._handles.append(module.register_forward_pre_hook(self._enter))
            self._handles.append(module.register_forward_hook(self._leave, always_call=True))
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _enter(self, module: torch.nn.Module, args: Any) -> None:
        path = self._names.get(id(module))
        if path is not None:
            self._calls.append(Call(path, self._stack[-1] if self._stack else None))
            self._stack.append(len(self._calls) - 1)

    def _leave(self, module: torch.nn.Module, args: Any, output: Any) -> None:
        if id(module) in self._names and self._stack:
            self._stack.pop()
            if not self._stack:
                self.output_names = outputs.names(output)
                self.output_sizes = outputs.sizes(output)

    def tree(self) -> CallTree | None:
        """The call tree of the last forward pass seen, or None if there was none.

        An exporter that failed and was followed by another, or one that retried, ran the
        forward more than once: the last pass is the one behind the graph.
        """
        roots = [i for i, call in enumerate(self._calls) if call.path == "" and call.parent is None]
        if not roots:
            return None
        first = roots[-1]
        calls = [
            Call(call.path, None if call.parent is None else call.parent - first)
            for call in self._calls[first:]
        ]
        classes = {name: type(m).__name__ for name, m in self._model.named_modules()}
        builtin = frozenset(
            name for name, m in self._model.named_modules()
            if name and type(m).__module__.startswith("torch.nn.")
        )
        return CallTree(calls, classes, builtin)


def trace(model: torch.nn.Module, inputs: dict[str, Any]) -> CallTree:
    """Run ``model(**inputs)`` once under no_grad, only to record its call tree."""
    import torch

    with Recorder(model) as recorder, torch.no_grad():
        model(**inputs)
    tree = recorder.tree()
    assert tree is not None  # the root module's own hook always fires
    return tree
