"""The environment a measurement was taken in: what must match for timings to compare.

No torch: library versions come from the installed packages' metadata. ``platform`` and
``importlib.metadata`` are imported where used: ``modelexport diff`` reads records that
name this module and never asks for a version (their imports cost it about 10 ms).
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelexport import __version__

# The export stack, as recorded in every sidecar.
LIBRARIES = ("torch", "transformers", "onnx", "onnxruntime", "onnxscript", "huggingface_hub")
# The part of it whose version changes export times.
TIMED_LIBRARIES = ("torch", "transformers", "onnx", "onnxruntime", "onnxscript")
# What must match for timings to be comparable; calibration_s is reported, not matched.
FINGERPRINT = ("tool", "python", "libraries", "os", "cpu", "cores")


@functools.cache  # reading package metadata is slow; versions do not change in a run
def library_versions() -> dict[str, str | None]:
    from importlib import metadata as importlib_metadata

    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def calibrate() -> float:
    """Seconds for a fixed pure-Python workload (best of 3): how fast this machine is now."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(300_000):
            total += i * i % 7
        best = min(best, time.perf_counter() - started)
    return best


@dataclass(frozen=True)
class Environment:
    tool: str
    python: str
    os: str
    cpu: str
    cores: int
    calibration_s: float
    libraries: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def here(cls) -> Environment:
        """This machine now, with a fresh calibration."""
        import platform

        versions = library_versions()
        return cls(
            tool=__version__, python=platform.python_version(),
            os=f"{platform.system()} {platform.release()}", cpu=cpu_model(),
            cores=os.cpu_count() or 1, calibration_s=round(calibrate(), 6),
            libraries={name: versions[name] for name in TIMED_LIBRARIES},
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Environment:
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        # The order people read in reports: who measured, then where.
        data = asdict(self)
        return {key: data[key] for key in ("tool", "python", "libraries", "os", "cpu", "cores",
                                           "calibration_s")}

    def drift(self, baseline: Environment) -> list[str]:
        """The fingerprint fields that differ, as 'field: baseline -> current'."""
        return [
            f"{key}: {getattr(baseline, key)} -> {getattr(self, key)}"
            for key in FINGERPRINT if getattr(self, key) != getattr(baseline, key)
        ]
