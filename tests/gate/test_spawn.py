"""Workers forked from one server (``forkserver``, ``spawn``): each still gets what a
process of its own gave it, and what a model's code does to the server ends as that
model's failure, never the run's."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from modelexport.gate import manifest, runner
from modelexport.gate.records import Failed, Measured

pytestmark = pytest.mark.export

PROBE = '''
import json
import os
import sys
import tempfile

import torch


def build(out):
    """Say what this worker was given, before any of the export stack reads it."""
    found = {
        "transformers_imported": "transformers" in sys.modules,
        "onnxruntime_imported": "onnxruntime" in sys.modules,
        "env": {k: os.environ.get(k) for k in ("HOME", "TMPDIR", "HF_MODULES_CACHE",
                                               "ORT_DISABLE_TELEMETRY")},
        "tempdir": tempfile.gettempdir(),
        "cwd": os.getcwd(),
        "own_session": os.getsid(0) == os.getpid(),
        "fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")),
    }
    from transformers.utils import hub  # as a model's code would, once it runs
    found["transformers_modules"] = hub.HF_MODULES_CACHE
    with open(out, "w") as file:
        json.dump(found, file)
    return torch.nn.Linear(4, 4), {"input": torch.ones(2, 4)}
'''

SABOTEUR = '''
import os
import signal

import torch


def build(how):
    """Kill or stop the process this worker was started from, then go on."""
    os.kill(os.getppid(), getattr(signal, how))
    return torch.nn.Linear(4, 4), {"input": torch.ones(2, 4)}
'''

GOOD = "{factory: \"probe:build\", kwargs: {out: OUT}}"


def run(workspace: Path, entries: str) -> dict[str, Failed | Measured]:
    (workspace / "probe.py").write_text(PROBE)
    (workspace / "saboteur.py").write_text(SABOTEUR)
    path = workspace / "models.yaml"
    path.write_text("defaults: {repeats: 1}\nmodels:\n" + textwrap.dedent(entries))
    loaded = manifest.load(path)
    document = runner.run_manifest(loaded, list(loaded.models), workspace / "results.json",
                                   lambda progress: None).results
    return document.models  # type: ignore[return-value]


def test_each_worker_has_its_own_environment_folder_session_and_descriptors(
        workspace: Path) -> None:
    found = run(workspace, f"""\
        - {{name: one, source: {GOOD.replace("OUT", str(workspace / "one.json"))}}}
        - {{name: two, source: {GOOD.replace("OUT", str(workspace / "two.json"))}}}
        """)
    assert all(isinstance(record, Measured) for record in found.values()), found
    one, two = (json.loads((workspace / f"{n}.json").read_text()) for n in ("one", "two"))
    for said in (one, two):
        home = Path(said["env"]["HOME"])
        # Its own folder is its home, its temporary folder and its remote code's cache;
        # transformers, imported first by the model, read that cache from it. ONNX
        # Runtime, imported by the server, with its telemetry off.
        assert said["env"] == {"HOME": str(home), "TMPDIR": str(home),
                               "HF_MODULES_CACHE": str(home / "hf-modules"),
                               "ORT_DISABLE_TELEMETRY": "1"}
        assert said["tempdir"] == str(home)
        assert said["transformers_modules"] == str(home / "hf-modules")
        assert not said["transformers_imported"]
        assert said["onnxruntime_imported"]
        assert said["cwd"] == str(Path.cwd())
        assert said["own_session"]
        # stdin, the log twice, the reply pipe, and the listing itself: nothing of the
        # server's, nor of another worker's.
        assert said["fds"] == [0, 1, 2, 3, 4]
    assert one["env"]["HOME"] != two["env"]["HOME"]


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_a_model_that_kills_or_stops_the_server_fails_alone(workspace: Path, how: str
                                                            ) -> None:
    found = run(workspace, f"""\
        - {{name: first, source: {GOOD.replace("OUT", str(workspace / "first.json"))}}}
        - {{name: saboteur, source: {{factory: "saboteur:build", kwargs: {{how: {how}}}}},
           timeout: 5}}
        - {{name: after, source: {GOOD.replace("OUT", str(workspace / "after.json"))}}}
        """)
    first, saboteur, after = found["first"], found["saboteur"], found["after"]
    assert isinstance(first, Measured) and isinstance(after, Measured)
    assert isinstance(saboteur, Failed)
    # Killed, the server takes the worker with it; stopped, it no longer says when the
    # worker ends, and the worker's deadline ends the wait.
    assert saboteur.error == {
        "SIGKILL": "its process ended with the one it was started from (the fork server; "
                   "a model's code may have killed it)",
        "SIGSTOP": "timed out after 5 s"}[how]
