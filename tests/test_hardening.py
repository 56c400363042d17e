"""Hostile input, faults and secrets: each attack reproduced with real processes and files,
and what the tool does about it instead."""

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

from modelexport.gate import results

from harness import gate_documents, one_error_line, run_cli

# 363 bytes of YAML that stand for 9**9 values: each level lists the one before 9 times.
ALIAS_BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{level}: &{level} [{', '.join([f'*{below}'] * 9)}]\n"
    for below, level in zip("abcdefgh", "bcdefghi", strict=True)) + "models: [*i]\n"


def test_a_yaml_alias_bomb_is_refused_before_it_is_expanded(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text(ALIAS_BOMB)  # 9**9 values once expanded
    proc = run_cli("validate", "models.yaml", cwd=tmp_path, timeout=60)
    assert proc.returncode == 1
    assert "aliases expand to more than 100,000 values" in proc.stderr
    assert len(proc.stdout + proc.stderr) < 1000
    (tmp_path / "deep.yaml").write_text("models: " + "[" * 100_000)
    proc = run_cli("validate", "deep.yaml", cwd=tmp_path, timeout=60)
    assert "deep.yaml:1: nested too deeply" in proc.stderr and "Traceback" not in proc.stderr


def test_nan_and_infinity_are_refused_wherever_they_would_disable_a_gate(tmp_path: Path
                                                                        ) -> None:
    (tmp_path / "models.yaml").write_text(textwrap.dedent("""\
        models:
          - name: a
            source: {config: {model_type: bert}}
            timeout: .nan
            thresholds: {time: .inf, floor: .nan}
        """))
    proc = run_cli("validate", "models.yaml", cwd=tmp_path)
    assert [line.split(": ", 2)[1:] for line in proc.stderr.splitlines()[1:]] == [
        ["models[0].timeout", "nan is not a finite number"],
        ["models[0].thresholds.floor", "nan is not a finite number"],
        ["models[0].thresholds.time", "inf is not a finite number"]]
    proc = run_cli("check", "models.yaml", "--threshold", "nan", cwd=tmp_path)
    assert proc.returncode == 2 and "--threshold nan" in one_error_line(proc)

    current, baseline, _ = gate_documents(tmp_path, slower_by=1.0)
    baseline.write_text(baseline.read_text().replace("1.02,", "NaN,", 1))
    proc = run_cli("compare", str(current), str(baseline))
    assert proc.returncode == 2
    assert "baseline.json: corrupt: not JSON (NaN is not a number)" in one_error_line(proc)


def test_results_equal_to_the_baseline_are_refused(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text("models:\n  - name: a\n    source: {config: "
                                          "{model_type: bert}}\n")
    proc = run_cli("check", "models.yaml", "--baseline", "b.json", "--results", "./b.json",
                   cwd=tmp_path)
    assert proc.returncode == 2
    assert "--results b.json is the baseline too" in one_error_line(proc)


def test_eight_concurrent_baseline_updates_all_succeed(tmp_path: Path) -> None:
    current, _, _ = gate_documents(tmp_path, slower_by=1.0)
    target = tmp_path / "baseline.json"
    procs = [subprocess.Popen([sys.executable, "-m", "modelexport", "baseline", "update",
                               "--results", str(current), "--baseline", str(target)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    outcomes = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert [code for code, _ in outcomes] == [0] * 8, outcomes
    assert json.loads(target.read_text())["kind"] == "baseline"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


SPY = '''
import os
import time

import torch


def build(out="env.json", sleep=0):
    with open(out, "w") as file:
        file.write(repr(sorted(os.environ)))
    time.sleep(sleep)
    return torch.nn.Linear(4, 4), {"input": torch.ones(2, 4)}
'''


@pytest.mark.export
def test_workers_see_no_secrets(tmp_path: Path) -> None:
    (tmp_path / "spy.py").write_text(SPY)
    (tmp_path / "models.yaml").write_text(
        "models:\n  - name: spy\n    repeats: 1\n    source: {factory: \"spy:build\"}\n")
    secrets = {"GITHUB_TOKEN": "ghs_x", "HF_TOKEN": "hf_x", "INPUT_GITHUB-TOKEN": "ghs_y",
               "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t", "MY_SERVICE_PASSWORD": "p"}
    proc = run_cli("check", "models.yaml", cwd=tmp_path, add_env=secrets)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = (tmp_path / "env.json").read_text()
    assert "PATH" in seen and not any(name in seen for name in secrets)


@pytest.mark.export
def test_a_killed_runner_takes_its_worker_with_it(tmp_path: Path) -> None:
    (tmp_path / "spy.py").write_text(SPY)
    (tmp_path / "models.yaml").write_text(
        "models:\n  - name: slow\n    source: {factory: \"spy:build\", kwargs: {sleep: 600}}\n")
    runner = subprocess.Popen([sys.executable, "-m", "modelexport", "check",
                               "models.yaml"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**os.environ,
                                                              "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 120
    while not (tmp_path / "env.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # the worker has reached the model's own code
    assert (tmp_path / "env.json").exists()
    worker = _worker_of(runner.pid)
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    deadline = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(worker)


def _worker_of(parent: int) -> int:
    found = subprocess.run(["pgrep", "-P", str(parent), "-f", "modelexport.gate.worker"],
                           capture_output=True, text=True).stdout.split()
    assert len(found) == 1, found
    return int(found[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


def test_strings_from_files_cannot_drive_the_terminal_or_the_runner(tmp_path: Path) -> None:
    hostile = "::stop-commands::x\n::add-mask::\x1b[2Jgone\rback"
    current, baseline, _ = gate_documents(tmp_path, slower_by=1.0)
    document = json.loads(current.read_text())
    document["models"][hostile] = {"status": "failed", "error": hostile, "wall_s": 1.0}
    current.write_text(json.dumps(document))
    proc = run_cli("compare", str(current), str(baseline))
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert not any(ch in out for ch in "\x1b\r")
    assert not any(line.lstrip().startswith("::") for line in out.splitlines())
    assert "\\::stop-commands::x\\n::add-mask::\\x1b[2Jgone\\rback" in proc.stdout


def test_a_baseline_that_is_a_folder_or_empty_is_no_first_run(tmp_path: Path) -> None:
    current, _, _ = gate_documents(tmp_path, slower_by=1.0)
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.json").write_text("")
    for baseline, expected in (("folder", "folder: not a file"),
                               ("empty.json", "empty.json: corrupt: not JSON")):
        proc = run_cli("compare", str(current), str(tmp_path / baseline))
        assert proc.returncode == 2
        assert expected in one_error_line(proc)


@pytest.mark.parametrize(("text", "expected"), [
    ("models:\n  - name: a\n    source: {config: {model_type: bert}}\n    1: x\n",
     "models[0][1]: unknown key"),
    ('models:\n  - name: "a\\n"\n    source: {config: {model_type: bert}}\n',
     "models[0].name: 'a\\n': letters, digits"),
    (f"models:\n  - name: {'a' * 300}\n    source: {{config: {{model_type: bert}}}}\n",
     "is too long"),
    ("defaults: {repeats: 1.0}\nmodels:\n  - name: a\n    source: {config: {model_type: bert}}\n",
     "models[0].repeats: 1.0 is not an integer"),
    ("models:\n  - name: a\n    source: {config: {model_type: bert}, seed: 99999999999999999999}\n",
     "models[0].source.seed: 99999999999999999999 is greater than the maximum"),
])
def test_what_the_schema_lets_through_is_still_refused(tmp_path: Path, text: str,
                                                       expected: str) -> None:
    (tmp_path / "models.yaml").write_text(text)
    proc = run_cli("validate", "models.yaml", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert expected in proc.stderr


def test_a_fifo_a_device_or_a_huge_shard_count_is_refused_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "models.yaml")
    proc = run_cli("check", "models.yaml", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "models.yaml: not a regular file" in one_error_line(proc)
    proc = run_cli("check", "/dev/urandom", cwd=tmp_path, timeout=60)
    assert "/dev/urandom: not a regular file" in one_error_line(proc)
    (tmp_path / "m.yaml").write_text("models:\n  - name: a\n    source: {config: "
                                     "{model_type: bert}}\n")
    proc = run_cli("check", "m.yaml", "--shard", "1/300000000", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "at most 256 shards" in one_error_line(proc)


def test_paths_that_cannot_be_written_are_refused_before_any_export(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text("models:\n  - name: a\n    source: {config: "
                                     "{model_type: bert}}\n")
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder").mkdir()
    for option, path, expected in (
            ("--results", "a-file/r.json", "--results a-file/r.json: cannot make its folder"),
            ("--report-md", "a-folder", "--report-md a-folder: not writable")):
        proc = run_cli("check", "m.yaml", option, path, cwd=tmp_path)
        assert proc.returncode == 2 and expected in one_error_line(proc)
    assert not (tmp_path / "modelexport-out" / "results.json").exists()  # nothing ran


@pytest.mark.export
def test_a_full_disk_loses_no_measurement_and_does_not_pass(tmp_path: Path) -> None:
    """The results and the report go to a filesystem of one page (a tmpfs in a user and
    mount namespace): the empty results file fits, nothing after it does."""
    (tmp_path / "spy.py").write_text(SPY)
    (tmp_path / "models.yaml").write_text(textwrap.dedent("""\
        defaults: {repeats: 1}
        models:
          - {name: first, source: {factory: "spy:build", kwargs: {out: a.json}}}
          - {name: second, source: {factory: "spy:build", kwargs: {out: b.json}}}
        """))
    full = tmp_path / "full"
    full.mkdir()
    # After the run, still inside the namespace, copy out what the disk holds.
    mount = (f'mount -t tmpfs -o size=4k tmpfs {full} && {{ "$@"; rc=$?; '
             f'ls -A {full} > listing.txt; cp {full}/results.json kept.json; exit $rc; }}')
    proc = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", mount, "sh", sys.executable,
         "-m", "modelexport", "check", "models.yaml", "--results", f"{full}/results.json",
         "--report-md", f"{full}/report.md"],
        cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True,
        text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    # Every model was measured and reported although no save after the first succeeded.
    assert "first" in proc.stdout and "second" in proc.stdout
    assert proc.stderr.count("results not saved (No space left on device)") == 2
    assert "report.md: not written: No space left on device" in proc.stderr
    assert "results.json: not saved (No space left on device); the report above is this " \
           "run's only record" in one_error_line(proc)
    # What is on the disk is whole: the last results that fitted, no temporary file.
    left = (tmp_path / "listing.txt").read_text().split()
    assert "results.json" in left and not [name for name in left if name.endswith(".tmp")]
    assert results.load(tmp_path / "kept.json").models == {}


KAMIKAZE = '''
import os
import signal

import torch


class Kamikaze(torch.nn.Module):
    def forward(self, x):
        os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does, mid-export
        return x


def build():
    return Kamikaze(), {"x": torch.ones(2, 2)}
'''


@pytest.mark.export
def test_a_killed_worker_leaves_no_temporary_folder(tmp_path: Path) -> None:
    (tmp_path / "kamikaze.py").write_text(KAMIKAZE)
    (tmp_path / "models.yaml").write_text(
        "models:\n  - name: k\n    source: {factory: \"kamikaze:build\"}\n")
    (tmp_path / "tmp").mkdir()
    proc = run_cli("check", "models.yaml", cwd=tmp_path, add_env={"TMPDIR": str(tmp_path / "tmp")})
    assert proc.returncode == 1 and "killed by SIGKILL" in proc.stdout
    assert list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.export
def test_two_runs_on_one_results_file_do_not_both_write_it(tmp_path: Path) -> None:
    (tmp_path / "spy.py").write_text(SPY)
    (tmp_path / "models.yaml").write_text(
        "models:\n  - name: slow\n    source: {factory: \"spy:build\", kwargs: {sleep: 600}}\n")
    first = subprocess.Popen([sys.executable, "-m", "modelexport", "check", "models.yaml"],
                             cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "env.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        second = run_cli("check", "models.yaml", cwd=tmp_path, timeout=120)
        assert second.returncode == 2
        assert "modelexport-out/results.json: another modelexport run is writing it" in \
            one_error_line(second)
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(timeout=60)


@pytest.mark.export
def test_an_export_says_its_own_lines_only(tmp_path: Path) -> None:
    from harness import config_args, minilm_dir

    for args in (["--exporter", "dynamo", *config_args("bert")], [minilm_dir()]):
        proc = run_cli("export", *args, "-o", str(tmp_path / "m.onnx"))
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""  # no torchvision notes, no "Loading weights" bar
