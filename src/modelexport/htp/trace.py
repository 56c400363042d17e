"""Trace: record the module call tree of one forward pass with forward hooks.

The tree is what the model actually did, not what its attribute names suggest: a ModuleList
that is only iterated never appears, a shared module called twice appears as two calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

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
    outputs: Any = None  # what the traced forward returned: the parity reference
    _chains: dict[str, str] = field(default_factory=dict, repr=False)

    @cached_property
    def called(self) -> frozenset[str]:
        return frozenset(call.path for call in self.calls)

    def call_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for call in self.calls:
            counts[call.path] = counts.get(call.path, 0) + 1
        return counts

    def parent_of(self, path: str) -> str | None:
        """The caller of the module's first call."""
        for call in self.calls:
            if call.path == path:
                return None if call.parent is None else self.calls[call.parent].path
        return None

    def class_chain(self, path: str) -> str:
        """Classes of the called modules from the root down to ``path``, joined by '/'."""
        chain = self._chains.get(path)
        if chain is None:
            called = self.called
            parts = path.split(".") if path else []
            prefixes = [".".join(parts[:i]) for i in range(len(parts) + 1)]
            chain = "/".join(
                self.classes[p] for p in prefixes if p in called or p == path
            )
            self._chains[path] = chain
        return chain

    def nearest_model_module(self, path: str) -> str:
        """``path`` or its nearest ancestor that is not a torch.nn building block."""
        while path in self.builtin and path:
            path = path.rpartition(".")[0]
        return path


def trace(model: torch.nn.Module, inputs: dict[str, Any]) -> CallTree:
    """Run ``model(**inputs)`` once under no_grad with hooks on every module."""
    import torch

    names = {id(module): name for name, module in model.named_modules()}
    calls: list[Call] = []
    stack: list[int] = []

    def enter(module: torch.nn.Module, args: Any) -> None:
        path = names.get(id(module))
        if path is not None:
            calls.append(Call(path, stack[-1] if stack else None))
            stack.append(len(calls) - 1)

    def leave(module: torch.nn.Module, args: Any, output: Any) -> None:
        if id(module) in names:
            stack.pop()

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave, always_call=True))
    try:
        with torch.no_grad():
            outputs = model(**inputs)
    finally:
        for handle in handles:
            handle.remove()

    classes = {name: type(m).__name__ for name, m in model.named_modules()}
    builtin = frozenset(
        name for name, m in model.named_modules()
        if name and type(m).__module__.startswith("torch.nn.")
    )
    return CallTree(calls, classes, builtin, outputs)
