"""The runner: a process per model (raise, timeout, SIGKILL), stages, remote code, and
the results written as each model finishes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from modelexport.gate import child, manifest, results, runner, sandbox
from modelexport.gate.records import Failed, Measured
from modelexport.gate.runner import Progress
from modelexport.gate.spawn import ForkServer

from harness import TRACED_OTHERWISE, outside_actions

pytestmark = pytest.mark.export

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


FLOODER = '''
import os
import sys


def build():
    """64 MB of output, the reason last, and an exit without a result, as a native library
    that gives up would."""
    sys.stdout.write(("x" * 1023 + "\\n") * 64 * 1024 + "the last words\\n")
    sys.stdout.flush()
    os._exit(3)
'''


def test_a_worker_that_exits_without_a_result_fails_with_its_last_line(workspace: Path
                                                                       ) -> None:
    (workspace / "flooder.py").write_text(FLOODER)
    path = workspace / "models.yaml"
    path.write_text("models:\n  - name: flood\n    source: {factory: \"flooder:build\"}\n")
    loaded = manifest.load(path)
    document = runner.run_manifest(loaded, list(loaded.models), workspace / "results.json",
                                  lambda progress: None).results
    flood = document.models["flood"]
    assert isinstance(flood, Failed)
    assert flood.error == "exited with code 3: the last words"


def test_one_model_failing_in_each_way_leaves_the_others_intact(workspace: Path) -> None:
    path = workspace / "models.yaml"
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
            source: {{path: {killer_dir(workspace)}}}
            trust_remote_code: true
        """))
    loaded = manifest.load(path)
    seen: list[Progress] = []
    results_path = workspace / "results.json"
    document = runner.run_manifest(loaded, list(loaded.models), results_path,
                                  seen.append).results
    good, raises, hangs, killed = (document.models[n] for n in ("good", "raises", "hangs",
                                                                "killed"))
    assert isinstance(good, Measured)
    assert len(good.samples["total"]) == 2
    assert isinstance(raises, Failed) and isinstance(hangs, Failed) and isinstance(killed, Failed)
    assert "unknown model type 'no-such-architecture'" in raises.error
    assert hangs.error == "timed out after 0.5 s"
    assert killed.error == "killed by SIGKILL (out of memory?)"
    assert results.load(results_path) == document  # written, valid, complete
    assert any(p.line().startswith("[4/4] killed: FAILED") and p.done for p in seen)
    running = [p for p in seen if p.index == 2 and not p.done]
    assert running[0].stage == "starting"  # polled once before the first wait
    assert {p.stage for p in running} <= {"starting", "loading", "warm-up export (validated)",
                                          "export 1/2", "export 2/2"}
    assert [p.elapsed for p in running] == sorted(p.elapsed for p in running)
    # Said when the stage changes, and every HEARTBEAT_S while it does not: not every poll.
    heartbeats = int(running[-1].elapsed // child.HEARTBEAT_S)
    assert len(running) <= len({p.stage for p in running}) + heartbeats

def test_worker_reports_its_stage_to_the_runner(workspace: Path) -> None:
    path = workspace / "models.yaml"
    path.write_text("models:\n  - name: good\n    repeats: 3\n    source: {config: {model_type: "
                    "bert, hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2}}\n")
    (spec,) = manifest.load(path).models
    stages: list[str] = []
    with ForkServer(workspace / "server", sandbox.account()) as server:
        record = runner.run_one(spec, workspace, server,
                                lambda stage, elapsed: stages.append(stage))
    assert record.status == "ok"
    # The worker's own folder, with the last stage it reached.
    assert (workspace / "good" / "stage").read_text() == "export 3/3"
    assert stages[0] == "starting"


def test_remote_code_does_not_run_unless_the_manifest_opts_in(workspace: Path) -> None:
    path = workspace / "models.yaml"
    path.write_text(f"models:\n  - name: killed\n    source: {{path: {killer_dir(workspace)}}}\n")
    loaded = manifest.load(path)
    document = runner.run_manifest(loaded, list(loaded.models), workspace / "r.json",
                                   lambda _: None).results
    record = document.models["killed"]
    assert isinstance(record, Failed)
    assert "killed by" not in record.error  # refused before the code could run
    assert "trust_remote_code" in record.error


VANISH = '''
import shutil
import sys
from pathlib import Path

import torch


def build():
    """Remove the runner's folder for this run, as a temporary-folder cleaner might."""
    shutil.rmtree(Path(sys.argv[1]).parent.parent)
    return torch.nn.Linear(4, 4), {"input": torch.ones(2, 4)}
'''


def test_a_model_whose_folder_vanishes_fails_alone_and_the_next_is_measured(
        workspace: Path) -> None:
    """It once ended the whole run: "error: .../vanish.log: No such file or directory"."""
    (workspace / "vanish.py").write_text(VANISH)
    (workspace / "models.yaml").write_text(textwrap.dedent("""\
        defaults: {repeats: 1}
        models:
          - {name: vanish, source: {factory: "vanish:build"}}
          - name: next
            source: {config: {model_type: bert, hidden_size: 32, num_hidden_layers: 1,
                              num_attention_heads: 2, intermediate_size: 64}}
        """))
    # As this user, whose worker may remove the runner's folder (as nobody it may not).
    as_user = (["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
               if os.geteuid() == 0 else [])
    proc = subprocess.run([*as_user, sys.executable, "-m", "modelexport", "check",
                           "models.yaml"], cwd=workspace, capture_output=True, text=True,
                          env={**outside_actions(os.environ), "HF_HUB_OFFLINE": "1"},
                          timeout=600)
    document = json.loads((workspace / "modelexport-out" / "results.json").read_text())
    assert document["models"]["next"]["status"] == "ok", proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr




def test_a_parity_failure_names_its_module_within_the_manifest_s_tolerance(workspace: Path
                                                                          ) -> None:
    (workspace / "traced.py").write_text(TRACED_OTHERWISE)
    path = workspace / "models.yaml"
    path.write_text(textwrap.dedent("""\
        defaults: {repeats: 1, exporter: torchscript}
        models:
          - {name: strict, source: {factory: "traced:build"}}
          - {name: loose, source: {factory: "traced:build"}, tolerance: 0.1}
        """))
    loaded = manifest.load(path)
    assert [spec.tolerance for spec in loaded.models] == [1e-4, 0.1]
    found = runner.run_manifest(loaded, list(loaded.models), workspace / "results.json",
                                lambda progress: None).results.models
    strict, loose = found["strict"], found["loose"]
    assert isinstance(strict, Failed) and isinstance(loose, Measured)
    assert "first divergence: `1` (adds" in strict.error
    # The results keep every module's gap, and read back.
    assert strict.divergence is not None and strict.divergence["first_divergence"] == "1"
    assert results.load(workspace / "results.json").models["strict"] == strict
    assert loose.validation is not None and loose.validation.parity.tolerance == 0.1
