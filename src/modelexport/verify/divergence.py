"""Where two runs of one tagged graph part: per module, how far its results are from the
reference's, how much of that its inputs already carried, and the first module that adds
more than the tolerance by itself. Pure: arrays in, records out (numpy, imported only where
arrays are compared: the records are read where it is not installed; no onnxruntime).

What a module added is measured where it was run alone on the reference's values (the
caller does that for the modules whose estimate crosses the tolerance), else estimated: its
outputs' largest absolute error beyond its inputs' (0 where the inputs carried more). The
first module that adds more than the tolerance is the first divergence; where none does and
the outputs still differ by more, the gap grew module by module.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelexport import modulepath
from modelexport.errors import ExportFailed
from modelexport.escape import code
from modelexport.verify.boundaries import Boundary

SCHEMA = "modelexport/verify/1"


@dataclass(frozen=True)
class Gap:
    """How far one tensor, or the worst of several, is from its reference."""

    max_abs: float
    max_rel: float  # max_abs over the reference's largest magnitude: fair across scales
    cosine: float  # of the two as vectors: 1.0 where they point the same way

    @classmethod
    def of(cls, reference: Any, candidate: Any) -> Gap:
        import numpy as np  # here: the records above are read where numpy is not installed

        want = np.asarray(reference, dtype=np.float64)
        got = np.asarray(candidate, dtype=np.float64)
        if want.shape != got.shape:
            return cls(math.inf, math.inf, 0.0)
        if want.size == 0:
            return NONE
        diff = np.abs(want - got)
        both_nan = np.isnan(want) & np.isnan(got)
        diff = np.where(both_nan, 0.0, diff)  # a NaN where the reference has one is no error
        if np.isnan(diff).any():
            return cls(math.inf, math.inf, 0.0)
        largest = float(np.abs(np.where(both_nan, 0.0, want)).max())
        max_abs = float(diff.max())
        norms = float(np.linalg.norm(want) * np.linalg.norm(got))
        cosine = min(max(float(np.dot(want.ravel(), got.ravel()) / norms), -1.0), 1.0) \
            if norms else (1.0 if max_abs == 0 else 0.0)  # clamped: rounding passes 1
        return cls(max_abs, max_abs / largest if largest else (0.0 if max_abs == 0 else
                                                                   math.inf), cosine)

    @classmethod
    def worst(cls, gaps: Iterable[Gap]) -> Gap:
        found = list(gaps)
        if not found:
            return NONE
        return cls(max(g.max_abs for g in found), max(g.max_rel for g in found),
                   min(g.cosine for g in found))

    def to_json(self) -> dict[str, float | None]:
        # JSON has no infinity: a shape mismatch or a NaN is null.
        return {k: (v if math.isfinite(v) else None) for k, v in vars(self).items()}


NONE = Gap(0.0, 0.0, 1.0)


def number(value: float) -> str:
    """A gap as the reports write it: a shape mismatch or a NaN the reference lacks is
    ``mismatch``."""
    return "mismatch" if math.isinf(value) else f"{value:.1e}"


class Diverged(ExportFailed):
    """A parity check that failed, with its module-by-module comparison."""

    def __init__(self, message: str, verification: Verification) -> None:
        super().__init__(message)
        self.verification = verification


@dataclass(frozen=True)
class ModuleGap:
    """One module: its outputs' gap, its inputs', and what it added."""

    module: str
    cls: str
    outputs: Gap
    inputs: Gap
    compared: int  # of its outputs
    missing: tuple[str, ...]  # its outputs one of the runs does not have
    blind: int = 0  # its inputs one of the runs does not have, taken as exact
    measured: float | None = None  # what it added run alone on the reference's values

    @property
    def added(self) -> float:
        """Measured where it was run alone, else estimated: its outputs' max abs beyond its
        compared inputs'."""
        if self.measured is not None:
            return self.measured
        if math.isinf(self.outputs.max_abs):
            return math.inf
        return max(self.outputs.max_abs - self.inputs.max_abs, 0.0)

    def said_first(self) -> str:
        """The clause that names it as the first divergence, as ``verify`` and a failed
        parity check both say it: ``first divergence: `M` (adds ...; its inputs carried
        ...`` (the caller closes the parenthesis)."""
        how = "run alone on the reference's values" if self.measured is not None else \
            "estimated"
        return (f"first divergence: {code(self.module)} (adds {number(self.added)} max abs, "
                f"{how}; its inputs carried {number(self.inputs.max_abs)}")

    def to_json(self) -> dict[str, Any]:
        added = self.added
        return {"module": self.module, "class": self.cls, "outputs": self.outputs.to_json(),
                "inputs": self.inputs.to_json(),
                "added_max_abs": added if math.isfinite(added) else None,
                "added_measured": self.measured is not None,
                "compared": self.compared, "missing": list(self.missing),
                "inputs_not_compared": self.blind}


@dataclass(frozen=True)
class Verification:
    """Two runs compared module by module, in graph order."""

    reference: str
    candidate: str
    tolerance: float
    modules: tuple[ModuleGap, ...]
    outputs: Gap  # the graph's own outputs
    first: ModuleGap | None  # the first module that adds more than the tolerance

    @property
    def within(self) -> bool:
        return self.outputs.max_abs <= self.tolerance and \
            all(m.outputs.max_abs <= self.tolerance for m in self.modules)

    @property
    def ranked(self) -> list[ModuleGap]:
        """The modules by what they added, most first; tree order breaks ties."""
        return sorted(self.modules, key=lambda m: -m.added)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "reference": self.reference, "candidate": self.candidate,
                "tolerance": self.tolerance, "within": self.within,
                "outputs": self.outputs.to_json(),
                "first_divergence": self.first.module if self.first else None,
                "modules": [m.to_json() for m in self.modules]}


def compare(edges: Sequence[Boundary], classes: Mapping[str, str], fed: Iterable[str],
            outputs: Sequence[str], reference: Mapping[str, Any], candidate: Mapping[str, Any],
            tolerance: float, labels: tuple[str, str] = ("reference", "candidate"),
            measured: Mapping[str, float] | None = None) -> Verification:
    """Each module's gap between the ``reference`` and ``candidate`` values (by value
    name). The graph's inputs (``fed``) are the same on both sides; a value one side lacks
    is left out of its module's gap, and named. ``measured``: what modules added when run
    alone, by module, in place of the estimate."""
    same = set(fed)
    gaps: dict[str, Gap] = {}

    def gap(name: str) -> Gap | None:
        if name in same:
            return NONE
        if name not in reference or name not in candidate:
            return None
        if name not in gaps:
            gaps[name] = Gap.of(reference[name], candidate[name])
        return gaps[name]

    modules = []
    for edge in edges:
        found = {name: gap(name) for name in edge.outputs}
        taken = list(map(gap, edge.inputs))
        modules.append(ModuleGap(
            edge.module, classes.get(edge.module, ""),
            Gap.worst(g for g in found.values() if g is not None),
            Gap.worst(g for g in taken if g is not None),
            sum(g is not None for g in found.values()),
            tuple(name for name, g in found.items() if g is None),
            sum(g is None for g in taken), (measured or {}).get(edge.module)))
    model = Gap.worst(g for g in map(gap, outputs) if g is not None)
    return Verification(*labels, tolerance, tuple(modules), model,
                        first_divergence(modules, tolerance))


def matched(wanted: Mapping[str, Any], offered: Mapping[str, Any]) -> dict[str, str]:
    """Each wanted value to an offered one of its shape, the closest where several have it,
    each offered value used once: how values are paired across two runs that name them
    differently (PyTorch's module outputs, another exporter's graph)."""
    import numpy as np

    free = dict(offered)
    pairs = {}
    for name, value in wanted.items():
        want = np.asarray(value, dtype=np.float64)
        fits = [other for other, array in free.items() if np.shape(array) == want.shape]
        if fits:
            best = min(fits, key=lambda other: float(np.abs(
                np.asarray(free[other], dtype=np.float64) - want).max(initial=0.0)))
            pairs[name] = best
            del free[best]
    return pairs


def first_divergence(modules: Sequence[ModuleGap], tolerance: float) -> ModuleGap | None:
    """The first module, in ``modules``' order, that adds more than ``tolerance``; of such a
    module and one inside it, the inner one (its ancestors add the same error, made in it)."""
    crossing = [m for m in modules if m.added > tolerance]
    paths = {m.module for m in crossing}
    innermost = [m for m in crossing
                 if not any(other != m.module and m.module in modulepath.ancestors(other)
                            for other in paths)]
    return innermost[0] if innermost else None
