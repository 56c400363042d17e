"""The gate end to end: process isolation, results files, baseline, verdict, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelexport import gate, manifest, results, runner
from modelexport.errors import UsageError
from modelexport.runner import Progress

KILLER = '''
import os
import signal

# What the kernel's OOM killer does, as soon as this model's own code is imported.
os.kill(os.getpid(), signal.SIGKILL)
'''


def killer_dir(tmp_path: Path) -> Path:
    """A model whose own (remote) code gets the process killed, as an OOM would."""
    directory = tmp_path / "killer"
    directory.mkdir()
    (directory / "killer.py").write_text(KILLER)
    (directory / "config.json").write_text(json.dumps({
        "model_type": "killer",
        "auto_map": {"AutoConfig": "killer.KillerConfig", "AutoModel": "killer.KillerModel"},
    }))
    return directory


def test_one_model_failing_in_each_way_leaves_the_others_intact(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(textwrap.dedent(f"""\
        defaults: {{repeats: 2, timeout: 300}}
        models:
          - name: raises
            source: {{config: {{model_type: no-such-architecture}}}}
          - name: good
            source: {{config: {{model_type: bert, hidden_size: 32, num_hidden_layers: 1,
                                num_attention_heads: 2, intermediate_size: 64}}}}
          - name: hangs
            source: {{config: {{model_type: bert}}}}
            timeout: 0.5
          - name: killed
            source: {{path: {killer_dir(tmp_path)}}}
            trust_remote_code: true
        """))
    loaded = manifest.load(path)
    seen: list[Progress] = []
    results_path = tmp_path / "results.json"
    document = gate.measure(loaded, list(loaded.models), results_path, seen.append)
    models = document["models"]
    assert models["good"]["status"] == "ok"
    assert len(models["good"]["samples"]["total"]) == 2
    assert models["raises"]["status"] == "failed"
    assert "unknown model type 'no-such-architecture'" in models["raises"]["error"]
    assert models["hangs"]["error"] == "timed out after 0.5 s"
    assert models["killed"]["error"] == "killed by SIGKILL (out of memory?)"
    assert results.load(results_path) == document  # written, valid, complete
    assert any(p.line().startswith("[4/4] killed: FAILED") and p.done for p in seen)
    running = [p for p in seen if p.index == 2 and not p.done]
    assert running[0].stage == "starting"  # polled once before the first wait
    assert {p.stage for p in running} <= {"starting", "loading", "warm-up export (validated)",
                                          "export 1/2", "export 2/2"}
    assert [p.elapsed for p in running] == sorted(p.elapsed for p in running)


def test_worker_reports_its_stage_to_the_runner(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  - name: good\n    repeats: 3\n    source: {config: {model_type: "
                    "bert, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2}}\n")
    (spec,) = manifest.load(path).models
    stages: list[str] = []
    record = runner.run_one(spec, tmp_path, lambda stage, elapsed: stages.append(stage))
    assert record["status"] == "ok"
    assert (tmp_path / "good.stage").read_text() == "export 3/3"  # the last stage it reached
    assert stages[0] == "starting"


def test_worker_peak_rss_is_its_own_not_its_parents() -> None:
    # A parent holding 512 MB more than the child will ever use, as the runner may.
    ballast = bytearray(512 * 2**20)
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])  # touch every page: make it resident
    child = subprocess.run(
        [sys.executable, "-c", "from modelexport.worker import peak_rss_bytes; "
         "print(peak_rss_bytes())"], capture_output=True, text=True, check=True)
    peak = int(child.stdout)
    assert 1 * 2**20 < peak < 256 * 2**20, peak


def test_remote_code_does_not_run_unless_the_manifest_opts_in(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(f"models:\n  - name: killed\n    source: {{path: {killer_dir(tmp_path)}}}\n")
    loaded = manifest.load(path)
    document = gate.measure(loaded, list(loaded.models), tmp_path / "r.json", lambda _: None)
    record = document["models"]["killed"]
    assert record["status"] == "failed"
    assert "killed by" not in record["error"]  # refused before the code could run
    assert "trust_remote_code" in record["error"]


def test_results_writes_are_atomic_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    loaded = manifest.Manifest(tmp_path / "m.yaml", (), "0" * 64)
    document = results.new(loaded)
    results.write(path, document)
    with pytest.raises(ValueError, match="refusing to write"):
        results.write(path, {**document, "kind": "nonsense"})
    assert results.load(path) == document  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    (tmp_path / "foreign.json").write_text('{"benchmarks": []}')
    with pytest.raises(UsageError, match="not a modelexport results or baseline file"):
        results.load(tmp_path / "foreign.json")
    (tmp_path / "corrupt.json").write_text('{"$schema": "')
    with pytest.raises(UsageError, match="corrupt"):
        results.load(tmp_path / "corrupt.json")


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelexport.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})


def test_check_then_compare_from_stored_files(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text(textwrap.dedent("""\
        defaults: {repeats: 5, thresholds: {floor: 0.001}}
        models:
          - name: bert
            source: {config: {model_type: bert, hidden_size: 32, num_hidden_layers: 1,
                              num_attention_heads: 2, intermediate_size: 64}}
          - name: resnet
            source: {config: {model_type: resnet, embedding_size: 8, hidden_sizes: [8, 16],
                              depths: [1, 1]}}
            tags: [vision]
        """))
    proc = cli("check", "models.yaml", "--baseline", "baseline.json", "--results", "r.json",
               "--update-baseline", "--report-md", "report.md", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "modelexport: 2 new" in proc.stdout
    baseline = results.load(tmp_path / "baseline.json", kind="baseline")
    assert set(baseline["models"]) == {"bert", "resnet"}

    # The same results against a baseline 3x faster: a regression, exit 1.
    faster = json.loads((tmp_path / "baseline.json").read_text())
    for record in faster["models"].values():
        record["samples"]["total"] = [t / 3 for t in record["samples"]["total"]]
    (tmp_path / "fast.json").write_text(json.dumps(faster))
    proc = cli("compare", "r.json", "fast.json", "--manifest", "models.yaml", "--report-md",
               "report.md", "--report-json", "report.json", cwd=tmp_path)
    assert proc.returncode == 1
    verdicts = json.loads((tmp_path / "report.json").read_text())["models"]
    assert {v["verdict"] for v in verdicts} == {"regressed"}
    assert "🔴" in (tmp_path / "report.md").read_text()

    # Accepted in the manifest until a future date: reported, not failing.
    (tmp_path / "models.yaml").write_text(
        (tmp_path / "models.yaml").read_text().replace(
            "tags: [vision]", "tags: [vision]\n    allow_regression: {reason: slower on "
            "purpose, until: 2999-01-01}").replace(
            "  - name: bert\n", "  - name: bert\n    allow_regression: {reason: also, "
            "until: 2999-01-01}\n"))
    proc = cli("compare", "r.json", "fast.json", "--manifest", "models.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 accepted" in proc.stdout

    proc = cli("check", "models.yaml", "--select", "nothing-has-this", cwd=tmp_path)
    assert proc.returncode == 2

    # One shard of two: one model measured, and the other is not reported missing.
    proc = cli("check", "models.yaml", "--shard", "2/2", "--baseline", "baseline.json",
               "--results", "s2.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shard = results.load(tmp_path / "s2.json")
    assert len(shard["models"]) == 1 and shard["shard"]["selected"] == ["bert", "resnet"]
    assert "missing" not in proc.stdout


def test_sigterm_keeps_the_finished_models(tmp_path: Path) -> None:
    import signal
    import time

    (tmp_path / "models.yaml").write_text(textwrap.dedent("""\
        defaults: {repeats: 1}
        models:
          - name: quick
            source: {config: {model_type: bert, hidden_size: 32, num_hidden_layers: 1,
                              num_attention_heads: 2, intermediate_size: 64}}
          - name: slow
            source: {config: {model_type: bert, num_hidden_layers: 24}}
        """))
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelexport.cli", "check", "models.yaml", "--results", "r.json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    def finished() -> list[str]:
        path = tmp_path / "r.json"
        return list(json.loads(path.read_text())["models"]) if path.exists() else []

    deadline = time.monotonic() + 300
    while not finished() and time.monotonic() < deadline:  # atomic writes: never half a file
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted; finished models are in r.json" in stderr
    saved = results.load(tmp_path / "r.json")
    assert list(saved["models"]) == ["quick"] and saved["models"]["quick"]["status"] == "ok"
    leftovers = subprocess.run(["pgrep", "-f", "modelexport.worker"], capture_output=True)
    assert leftovers.stdout == b""  # the worker of the interrupted model is gone too
