"""``modelexport check`` (and ``compare`` on what it stored), run as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelexport import schemas
from modelexport.gate import results

from harness import descendants, one_error_line, outside_actions, run_cli

pytestmark = pytest.mark.export


def test_check_then_compare_from_stored_files(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text(textwrap.dedent("""\
        defaults: {repeats: 5, thresholds: {floor: 0}}  # verdicts from the samples alone
        models:
          - name: bert
            source: {config: {model_type: bert, hidden_size: 32, num_hidden_layers: 1,
                              num_attention_heads: 2, intermediate_size: 64}}
          - name: resnet
            source: {config: {model_type: resnet, embedding_size: 8, hidden_sizes: [8, 16],
                              depths: [1, 1]}}
            tags: [vision]
        """))
    proc = run_cli("check", "models.yaml", "--baseline", "baseline.json", "--results", "r.json",
               "--update-baseline", "--report-md", "report.md", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "modelexport: 2 new" in proc.stdout
    baseline = results.load(tmp_path / "baseline.json", kind="baseline")
    assert set(baseline.models) == {"bert", "resnet"}

    # The same results against a baseline 3x faster than their fastest run (every sample
    # below every measured one, whatever the machine did meanwhile): a regression, exit 1.
    faster = json.loads((tmp_path / "baseline.json").read_text())
    for record in faster["models"].values():
        fastest = min(record["samples"]["total"])
        record["samples"]["total"] = [fastest / (3 + i) for i in range(5)]
    (tmp_path / "fast.json").write_text(json.dumps(faster))
    proc = run_cli("compare", "r.json", "fast.json", "--manifest", "models.yaml", "--report-md",
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
    proc = run_cli("compare", "r.json", "fast.json", "--manifest", "models.yaml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 accepted" in proc.stdout

    proc = run_cli("check", "models.yaml", "--select", "nothing-has-this", cwd=tmp_path)
    assert proc.returncode == 2

    # One shard of two: one model measured, and the other is not reported missing.
    proc = run_cli("check", "models.yaml", "--shard", "2/2", "--baseline", "baseline.json",
               "--results", "s2.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shard = results.load(tmp_path / "s2.json")
    assert len(shard.models) == 1 and shard.shard and shard.shard.selected == ("bert", "resnet")
    assert "missing" not in proc.stdout


def test_sigterm_keeps_the_finished_models(tmp_path: Path) -> None:
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
        [sys.executable, "-m", "modelexport", "check", "models.yaml", "--results", "r.json"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**outside_actions(os.environ), "HF_HUB_OFFLINE": "1"},
    )
    def finished() -> list[str]:
        path = tmp_path / "r.json"
        return list(json.loads(path.read_text())["models"]) if path.exists() else []

    deadline = time.monotonic() + 300
    while not finished() and time.monotonic() < deadline:  # atomic writes: never half a file
        time.sleep(0.2)
    workers = _workers_of(proc.pid, deadline)  # the slow model's
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted; finished models are in r.json" in stderr
    saved = results.load(tmp_path / "r.json")
    assert list(saved.models) == ["quick"] and saved.models["quick"].status == "ok"
    # The interrupted model's worker is gone too, and the server it was forked from.
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


def _workers_of(runner: int, deadline: float) -> list[int]:
    """The processes below the runner ``runner`` (the fork server, the worker it started),
    once the worker has started."""
    while time.monotonic() < deadline:
        found = descendants(runner)
        if len(found) >= 2:
            return found
        time.sleep(0.1)
    raise AssertionError("no worker started")


@pytest.mark.parametrize(
    ("option", "expected"),
    [(["--repeats", "0"], "--repeats 0: needs at least 1"),
     (["--threshold", "-0.1"], "--threshold -0.1: a slowdown, e.g. 0.10 for +10 %")],
)
def test_check_refuses_meaningless_overrides(tmp_path: Path, option: list[str], expected: str
                                             ) -> None:
    manifest = tmp_path / "models.yaml"
    manifest.write_text("models:\n  - name: a\n    source: {config: {model_type: bert}}\n")
    proc = run_cli("check", str(manifest), *option)
    assert proc.returncode == 2
    assert expected in one_error_line(proc)


SIGNATURE = textwrap.dedent("""\
    defaults: {repeats: 1, exporter: dynamo}
    models:
      - name: bert
        source: {config: {model_type: bert, hidden_size: 32, num_hidden_layers: 1,
                          num_attention_heads: 2, intermediate_size: 64}}
    """)


def test_an_extra_output_fails_check_until_the_manifest_accepts_it(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text(SIGNATURE)
    first = run_cli("check", "models.yaml", "--baseline", "baseline.json", "--update-baseline",
                    cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "NOTHING WAS COMPARED" in first.stdout.splitlines()[-2]  # then "baseline written"

    (tmp_path / "models.yaml").write_text(SIGNATURE.replace(
        "intermediate_size: 64}", "intermediate_size: 64, output_hidden_states: true}"))
    changed = run_cli("check", "models.yaml", "--baseline", "baseline.json", "--results",
                      "r.json", "--report-md", "report.md", cwd=tmp_path)
    assert changed.returncode == 1, changed.stdout + changed.stderr
    assert ("signature: output 'hidden_states.0' added (float32 [batch_size, sequence_length, "
            "32])") in changed.stdout
    assert "bert: graph changed" in changed.stdout
    assert "<summary>Graph changes: bert</summary>" in (tmp_path / "report.md").read_text()

    (tmp_path / "models.yaml").write_text((tmp_path / "models.yaml").read_text().replace(
        "  - name: bert\n", "  - name: bert\n    allow_regression: {reason: hidden states for "
        "the probe, until: 2999-01-01}\n"))
    accepted = run_cli("compare", "r.json", "baseline.json", "--manifest", "models.yaml",
                       cwd=tmp_path)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "modelexport: 1 accepted" in accepted.stdout


def test_check_finds_the_baseline_beside_the_manifest(tmp_path: Path) -> None:
    """Without --baseline, the one beside the manifest (where the action keeps it), also run
    from another folder: there, it compared nothing and passed."""
    (tmp_path / "models.yaml").write_text(textwrap.dedent("""\
        defaults: {repeats: 1, thresholds: {floor: 3600}}
        models:
          - name: bert
            source: {config: {model_type: bert, hidden_size: 32, num_hidden_layers: 1,
                              num_attention_heads: 2, intermediate_size: 64}}
        """))
    first = run_cli("check", "models.yaml", "--update-baseline", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tmp_path / "modelexport-baseline.json").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = run_cli("check", str(tmp_path / "models.yaml"), cwd=elsewhere)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == "modelexport: 1 unchanged"


PLANTER = '''
import os
import sys
from pathlib import Path

import torch


def build(secret):
    """A model whose code leaves a link to a file only the runner may read among its
    exports, for the runner to copy."""
    export = Path(sys.argv[2]).parent / "export"
    export.mkdir(exist_ok=True)
    (export / "leak.txt").symlink_to(secret)
    return torch.nn.Linear(4, 4), {"input": torch.ones(2, 4)}
'''


def test_keep_copies_each_model_s_files_and_follows_no_link(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)  # as root, the worker runs as nobody and reads the factory here
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    secret.chmod(0o600)
    (tmp_path / "planter.py").write_text(PLANTER)
    (tmp_path / "models.yaml").write_text(textwrap.dedent(f"""\
        defaults: {{repeats: 1, inference: {{runs: 3}}}}
        models:
          - {{name: planted, source: {{factory: "planter:build", kwargs: {{secret: {secret}}}}}}}
        """))
    proc = run_cli("check", "models.yaml", "--allow-no-baseline", "--keep", "kept",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    kept = tmp_path / "kept" / "planted"
    assert sorted(p.name for p in kept.iterdir()) == [
        "planted.hierarchy.json", "planted.onnx", "planted.overlay.json",
        "planted.profile.json"]
    assert "main_graph" in json.loads((kept / "planted.overlay.json").read_text())
    assert json.loads((kept / "planted.profile.json").read_text())["settings"]["runs"] == 3


def test_a_real_check_writes_bencher_and_benchmark_action_files_of_its_medians(
        tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text(textwrap.dedent("""\
        defaults: {repeats: 6}
        models:
          - name: bert
            source: {config: {model_type: bert, hidden_size: 32, num_hidden_layers: 1,
                              num_attention_heads: 2, intermediate_size: 64}}
            inference: {runs: 12}
          - name: resnet
            source: {config: {model_type: resnet, embedding_size: 8, hidden_sizes: [8, 16],
                              depths: [1, 1]}}
          - name: gpt2
            source: {config: {model_type: gpt2, n_embd: 32, n_layer: 1, n_head: 2}}
        """))
    proc = run_cli("check", "models.yaml", "--update-baseline", "--results", "r.json",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # Judged against itself, every model has each metric's medians in the JSON report.
    proc = run_cli("compare", "r.json", "modelexport-baseline.json", "--manifest",
                   "models.yaml", "--report-dir", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = tmp_path / "out"
    report = {m["name"]: {c["name"]: c for c in m["metrics"]}
              for m in json.loads((out / "report.json").read_text())["models"]}
    bmf = json.loads((out / "bmf.json").read_text())
    action = {e["name"]: e for e in json.loads((out / "benchmark-action.json").read_text())}
    assert schemas.schema_errors(bmf, schemas.BMF) == []
    assert schemas.schema_errors(list(action.values()), schemas.BENCHMARK_ACTION) == []
    assert set(bmf) == set(report) == {"bert", "resnet", "gpt2"}
    for name, metrics in report.items():
        for metric, change in metrics.items():
            scale = 1e9 if change["unit"] == "s" else 1e6
            slug = {"export time": "export-time", "export memory": "export-memory",
                    "inference": "latency"}[metric]
            assert bmf[name][slug]["value"] == pytest.approx(change["current"] * scale)
            assert action[f"{name} / {metric}"]["value"] == pytest.approx(change["current"])
        assert bmf[name]["export-memory"]["value"] > 100e6  # bytes: torch alone is more
    assert set(report["bert"]) == {"export time", "export memory", "inference"}
    assert "lower_value" in bmf["bert"]["export-time"]  # 6 exports: an interval
