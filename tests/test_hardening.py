"""Hostile input, faults and secrets: each attack reproduced with real processes and files,
and what the tool does about it instead."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from modelexport import jsonfile
from modelexport.gate import results

from fake_github import FakeGitHub, actions_env
from fake_hub import SHA, FakeHub
from harness import descendants, gate_documents, one_error_line, outside_actions, run_cli

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


UPDATES = """
import sys
from pathlib import Path
from modelexport.gate import results
current = results.load(Path(sys.argv[1]))
for _ in range(40):
    results.write_baseline(current, Path(sys.argv[2]))
"""


def test_eight_concurrent_baseline_updates_all_succeed(tmp_path: Path) -> None:
    """Eight processes updating one baseline 40 times each: with one temporary name per
    target, two of them collided on it at once."""
    current, _, _ = gate_documents(tmp_path, slower_by=1.0)
    target = tmp_path / "baseline.json"
    procs = [subprocess.Popen([sys.executable, "-c", UPDATES, str(current), str(target)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(8)]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
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
def test_workers_see_no_secrets(workspace: Path) -> None:
    (workspace / "spy.py").write_text(SPY)
    (workspace / "models.yaml").write_text(
        "models:\n  - name: spy\n    repeats: 1\n    source: {factory: \"spy:build\"}\n")
    secrets = {"GITHUB_TOKEN": "ghs_x", "HF_TOKEN": "hf_x", "INPUT_GITHUB-TOKEN": "ghs_y",
               "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "t", "MY_SERVICE_PASSWORD": "p"}
    proc = run_cli("check", "models.yaml", "--allow-no-baseline", cwd=workspace,
                   add_env=secrets)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = (workspace / "env.json").read_text()
    assert "PATH" in seen and not any(name in seen for name in secrets)


PROC_SPY = '''
import os
from pathlib import Path


def build(secrets):
    """Read every environment this process may read, and tell what it found of the
    runner's secrets, as a pull request's model code would: in its error, which lands in
    the results, the report and the PR comment."""
    read, found = [], []
    places = ["/proc/self/environ", f"/proc/{os.getppid()}/environ", "/proc/1/environ",
              *(str(p) for p in Path("/proc").glob("[0-9]*/environ"))]
    for place in places:
        try:
            text = Path(place).read_bytes().decode(errors="replace")
        except OSError:
            continue
        read.append(place)
        found += [f"{place}: {name}" for name, value in secrets.items() if value in text]
    raise RuntimeError(f"read {len(read)} environments; found {found}")
'''
SECRETS = {"GITHUB_TOKEN": "ghs_procSecret0001", "HF_TOKEN": "hf_procSecret0002",
           "INPUT_GITHUB-TOKEN": "ghs_procSecret0003"}


def _proc_spy_run(workspace: Path, as_user: list[str]) -> tuple[str, str]:
    """The gate run on a model that reads every readable /proc/*/environ, started by
    ``as_user`` (a command prefix) with the runner's secrets in its environment; the
    model's error and everything the run printed."""
    (workspace / "procspy.py").write_text(PROC_SPY)
    kwargs = json.dumps({"secrets": SECRETS})
    (workspace / "models.yaml").write_text(
        f"models:\n  - name: spy\n    source: {{factory: \"procspy:build\", kwargs: {kwargs}}}\n")
    proc = subprocess.run(
        [*as_user, sys.executable, "-m", "modelexport", "check", "models.yaml"],
        cwd=workspace, capture_output=True, text=True, timeout=300,
        env={**outside_actions(os.environ), "HF_HUB_OFFLINE": "1", **SECRETS})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = json.loads((workspace / "modelexport-out" / "results.json").read_text()
                       )["models"]["spy"]["error"]
    return error, proc.stdout + proc.stderr


@pytest.mark.export
@pytest.mark.skipif(os.geteuid() != 0, reason="the run as root: needs root")
def test_model_code_run_by_root_reads_no_secret_of_any_process(workspace: Path) -> None:
    error, printed = _proc_spy_run(workspace, [])
    # It read its own environment, and that holds none of them.
    assert error.endswith("found []") and "read 0 environments" not in error, error
    assert not any(value in printed for value in SECRETS.values())


@pytest.mark.export
@pytest.mark.skipif(os.geteuid() != 0, reason="becoming another user needs root")
def test_model_code_run_by_a_user_reads_no_secret_of_any_process(workspace: Path) -> None:
    # The whole run as an ordinary user: the runner and its worker are the same user, and
    # the runner holds the tokens.
    error, printed = _proc_spy_run(
        workspace, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
    assert error.endswith("found []") and "read 0 environments" not in error, error
    assert not any(value in printed for value in SECRETS.values())


LINKER = '''
import os
import signal
import sys
import time
from pathlib import Path


def build():
    """Point the worker's stage and result files, which the runner reads, at the runner's
    own environment, and die before the worker writes its result."""
    runner = f"/proc/{os.getppid()}/environ"
    for written in (Path(sys.argv[3]), Path(sys.argv[2])):  # stage, result
        written.unlink(missing_ok=True)
        written.symlink_to(runner)
    time.sleep(1.5)  # the runner reads the stage twice a second
    os.kill(os.getpid(), signal.SIGKILL)
'''


@pytest.mark.export
def test_files_the_worker_links_elsewhere_are_not_read(workspace: Path) -> None:
    (workspace / "linker.py").write_text(LINKER)
    (workspace / "models.yaml").write_text(
        "models:\n  - name: linker\n    source: {factory: \"linker:build\"}\n")
    proc = run_cli("check", "models.yaml", cwd=workspace, add_env=SECRETS)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert not any(value in proc.stdout + proc.stderr for value in SECRETS.values())
    error = json.loads((workspace / "modelexport-out" / "results.json").read_text()
                       )["models"]["linker"]["error"]
    assert error.startswith("its result is not a regular file"), error


@pytest.mark.export
def test_a_killed_runner_takes_its_workers_with_it(workspace: Path) -> None:
    (workspace / "spy.py").write_text(SPY)
    (workspace / "models.yaml").write_text(
        "models:\n  - name: slow\n    source: {factory: \"spy:build\", kwargs: {sleep: 600}}\n")
    runner = subprocess.Popen([sys.executable, "-m", "modelexport", "check",
                               "models.yaml"], cwd=workspace, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env={**outside_actions(os.environ),
                                                              "HF_HUB_OFFLINE": "1"})
    deadline = time.monotonic() + 120
    while not (workspace / "env.json").exists() and time.monotonic() < deadline:
        time.sleep(0.2)  # the worker has reached the model's own code
    assert (workspace / "env.json").exists()
    below = descendants(runner.pid)
    assert len(below) >= 2, below  # the fork server, and the worker it started
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in below) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in below if _alive(pid)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "\nState:\tZ" in status.read_text())


@pytest.mark.parametrize("in_actions", [False, True])
def test_strings_from_files_cannot_drive_the_terminal_or_the_runner(
        tmp_path: Path, fake: FakeGitHub, in_actions: bool) -> None:
    hostile = "::stop-commands::x\n::add-mask::\x1b[2Jgone\rback"
    current, baseline, _ = gate_documents(tmp_path, slower_by=1.0)
    document = json.loads(current.read_text())
    document["models"][hostile] = {"status": "failed", "error": hostile, "wall_s": 1.0}
    current.write_text(json.dumps(document))
    env = actions_env(tmp_path, fake, {}, "ghs_x") if in_actions else None
    proc = run_cli("compare", str(current), str(baseline), env=env)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert not any(ch in out for ch in "\x1b\r")
    ours = ("::error title=", "::warning title=", "::notice::") if in_actions else ()
    assert not any(line.lstrip().startswith("::") and not line.startswith(ours)
                   for line in out.splitlines())
    if in_actions:  # the annotation: its title and message escaped for a workflow command
        (annotation,) = [line for line in out.splitlines() if line.startswith("::error")]
        assert annotation.startswith("::error title=modelexport%3A %3A%3Astop-commands%3A%3Ax")
        assert "\\x1b[2Jgone%0Dback" in annotation
    else:
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
    ("models:\n  - name: a\n    source: {config: {model_type: bert}}\n    ~: x\n",
     "models.yaml:4: models[0].None: unknown key"),
    ("models:\n  - name: a\n    source: {config: {model_type: bert}}\n    yes: x\n",
     "models.yaml:4: models[0][True]: unknown key"),
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
    with (tmp_path / "big.yaml").open("wb") as file:  # sparse: read, it would be 2 MB of zeros
        file.truncate(2_000_000)
    proc = run_cli("validate", "big.yaml", cwd=tmp_path, timeout=60)
    assert "big.yaml: 2,000,000 bytes; at most 1,000,000" in one_error_line(proc)
    proc = run_cli("check", "/dev/urandom", cwd=tmp_path, timeout=60)
    assert "/dev/urandom: not a regular file" in one_error_line(proc)
    (tmp_path / "folder").mkdir()
    proc = run_cli("compare", "folder", "folder", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "folder: not a regular file" in one_error_line(proc)
    (tmp_path / "m.yaml").write_text("models:\n  - name: a\n    source: {config: "
                                     "{model_type: bert}}\n")
    proc = run_cli("check", "m.yaml", "--shard", "1/300000000", cwd=tmp_path, timeout=60)
    assert proc.returncode == 2 and "at most 256 shards" in one_error_line(proc)


@pytest.mark.parametrize("command", [
    ["compare", "results.json", "trap.json"], ["compare", "trap.json", "baseline.json"],
    ["merge", "trap.json", "-o", "merged.json"], ["baseline", "update", "--results",
                                                   "trap.json", "--baseline", "b.json"],
    ["comment", "--results", "trap.json"], ["diff", "trap.json", "results.json"],
    ["validate", "trap.json"], ["profile", "trap.json"],
])
@pytest.mark.parametrize("trap", ["fifo", "zeros", "huge", "deep", "latin-1"])
def test_every_file_read_is_bounded(tmp_path: Path, command: list[str], trap: str) -> None:
    """A FIFO blocked every reader of results and baselines; a baseline committed as a link
    to /dev/zero grew to 9.6 GB in 20 s; 100,000 levels of brackets raised RecursionError."""
    gate_documents(tmp_path, slower_by=1.0)
    path = tmp_path / "trap.json"
    if trap == "fifo":
        os.mkfifo(path)
    elif trap == "zeros":
        path.symlink_to("/dev/zero")
    elif trap == "huge":  # sparse: no disk used
        with path.open("wb") as file:
            file.truncate(jsonfile.READ_LIMIT + 1)
    elif trap == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    else:
        path.write_bytes('{"$schema": "caf\xe9"}'.encode("latin-1"))
    proc = run_cli(*command, cwd=tmp_path, timeout=60)
    assert proc.returncode in (1, 2), proc.stderr
    assert "trap.json" in one_error_line(proc)


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
    summary = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "a-folder")}
    proc = run_cli("check", "m.yaml", cwd=tmp_path, add_env=summary)
    assert proc.returncode == 2
    assert f"$GITHUB_STEP_SUMMARY {tmp_path / 'a-folder'}: not writable" in one_error_line(proc)
    assert not (tmp_path / "modelexport-out" / "results.json").exists()  # nothing ran


@pytest.mark.export
@pytest.mark.parametrize("in_actions", [False, True])
def test_a_full_disk_loses_no_measurement_and_does_not_pass(workspace: Path,
                                                            in_actions: bool) -> None:
    """The results and the report (in Actions also the step summary and outputs) go to a
    filesystem of one page (a tmpfs in a mount namespace): the empty results file fits,
    nothing after it does."""
    (workspace / "spy.py").write_text(SPY)
    (workspace / "models.yaml").write_text(textwrap.dedent("""\
        defaults: {repeats: 1}
        models:
          - {name: first, source: {factory: "spy:build", kwargs: {out: a.json}}}
          - {name: second, source: {factory: "spy:build", kwargs: {out: b.json}}}
        """))
    full = workspace / "full"
    full.mkdir()
    # After the run, still inside the namespace, copy out what the disk holds.
    mount = (f'mount -t tmpfs -o size=4k tmpfs {full} && {{ "$@"; rc=$?; '
             f'ls -A {full} > listing.txt; cp {full}/results.json kept.json; exit $rc; }}')
    # As root, no user namespace: one that maps root alone has no user for the workers.
    namespace = ["--mount"] if os.geteuid() == 0 else ["--map-root-user", "--mount"]
    proc = subprocess.run(
        ["unshare", *namespace, "sh", "-c", mount, "sh", sys.executable,
         "-m", "modelexport", "check", "models.yaml", "--results", f"{full}/results.json",
         "--report-md", f"{full}/report.md"],
        cwd=workspace, env={**outside_actions(os.environ), "HF_HUB_OFFLINE": "1", **(
            {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": f"{full}/summary.md",
             "GITHUB_OUTPUT": f"{full}/output"} if in_actions else {})},
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 1, proc.stderr
    # Every model was measured and reported although no save after the first succeeded.
    assert "first" in proc.stdout and "second" in proc.stdout
    assert proc.stderr.count("results not saved (No space left on device)") == 2
    if in_actions:  # each a warning annotation; the verdict still decides
        assert "::warning::" in proc.stdout and "report.md: not written: No space left on " \
            "device" in proc.stdout
        assert f"$GITHUB_STEP_SUMMARY {full}/summary.md: not written: No space left on " \
            "device" in proc.stdout
    else:
        assert "report.md: not written: No space left on device" in proc.stderr
    assert "results.json: not saved (No space left on device); the report above is this " \
           "run's only record" in one_error_line(proc)
    # What is on the disk is whole: the last results that fitted, no temporary file.
    left = (workspace / "listing.txt").read_text().split()
    assert "results.json" in left and not [name for name in left if name.endswith(".tmp")]
    assert results.load(workspace / "kept.json").models == {}


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
def test_a_killed_worker_leaves_no_temporary_folder(workspace: Path) -> None:
    (workspace / "kamikaze.py").write_text(KAMIKAZE)
    (workspace / "models.yaml").write_text(
        "models:\n  - name: k\n    source: {factory: \"kamikaze:build\"}\n")
    (workspace / "tmp").mkdir()
    proc = run_cli("check", "models.yaml", cwd=workspace,
                   add_env={"TMPDIR": str(workspace / "tmp")})
    assert proc.returncode == 1 and "killed by SIGKILL" in proc.stdout
    assert list((workspace / "tmp").iterdir()) == []


@pytest.mark.export
def test_two_runs_on_one_results_file_do_not_both_write_it(workspace: Path) -> None:
    (workspace / "spy.py").write_text(SPY)
    (workspace / "models.yaml").write_text(
        "models:\n  - name: slow\n    source: {factory: \"spy:build\", kwargs: {sleep: 600}}\n")
    first = subprocess.Popen([sys.executable, "-m", "modelexport", "check", "models.yaml"],
                             cwd=workspace, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**outside_actions(os.environ), "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (workspace / "env.json").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        second = run_cli("check", "models.yaml", cwd=workspace, timeout=120)
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


def test_a_checkout_that_keeps_its_token_is_named_before_any_model_runs(tmp_path: Path,
                                                                        fake: FakeGitHub
                                                                        ) -> None:
    # What actions/checkout writes by default: the token, where model code could read it.
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text(
        '[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic eC1hY2Nlc3M=\n')
    (tmp_path / "models.yaml").write_text(
        "models:\n  - name: a\n    source: {config: {model_type: bert}}\n")
    env = actions_env(tmp_path, fake, {}, "ghs_x") | {"GITHUB_WORKSPACE": str(tmp_path)}
    proc = run_cli("check", "models.yaml", "--select", "none", env=env, cwd=tmp_path)
    assert proc.returncode == 2  # no model has that tag: nothing ran
    assert ("::warning::actions/checkout left its token in .git/config, where the models' own "
            "code can read it: check out with persist-credentials: false") in proc.stdout


@pytest.mark.export
def test_an_onnx_file_cut_short_while_it_is_read_is_one_error_line(tmp_path: Path) -> None:
    """An export rewriting the file another process reads (``diff``, ``profile``) truncates
    it first: read through a memory map, the reader died of SIGBUS."""
    import numpy as np
    from onnx import helper, numpy_helper

    weights = [numpy_helper.from_array(np.zeros(25_000, np.float32), f"w{i}")
               for i in range(400)]  # 40 MB, each weight's header in another page
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"], name="n")], "g",
                              [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("y", 1, [1])], weights)
    data = helper.make_model(graph).SerializeToString()
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    stop = threading.Event()

    def rewrite() -> None:
        while not stop.is_set():
            path.write_bytes(data)  # truncated to nothing, then written again

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        runs = [run_cli("diff", "m.onnx", "m.onnx", cwd=tmp_path) for _ in range(6)]
    finally:
        stop.set()
        writer.join()
    for proc in runs:  # read whole (no tags: exit 2), or cut short: never killed
        assert proc.returncode == 2, (proc.returncode, proc.stderr)
        assert one_error_line(proc).startswith("modelexport: error: m.onnx: ")


@pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")
def test_a_report_path_that_is_a_device_or_a_pipe_is_written_to_never_replaced(
        tmp_path: Path) -> None:
    """As root, the atomic rename replaced ``--report-md /dev/null`` by a regular file."""
    current, baseline, _ = gate_documents(tmp_path, slower_by=1.0)
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    proc = subprocess.run(
        [sys.executable, "-m", "modelexport", "compare", str(current), str(baseline),
         "--report-md", str(null), "--report-json", "/dev/stdout"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60)  # stdout: a pipe
    assert proc.returncode == 0, proc.stderr
    assert stat.S_ISCHR(null.stat().st_mode)
    assert '"summary": "2 unchanged"' in proc.stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.export
@pytest.mark.parametrize("elsewhere", ["../outside.onnx", "/etc/hostname", ".."])
def test_a_sidecar_names_an_onnx_file_beside_it_only(exports, tmp_path: Path,
                                                     elsewhere: str) -> None:
    sidecar = json.loads(exports.get("bert", "torchscript").sidecar_path.read_text())
    sidecar["export"]["onnx_file"] = elsewhere
    (tmp_path / "m.hierarchy.json").write_text(json.dumps(sidecar))
    for command in (["validate", "m.hierarchy.json"],
                    ["diff", "m.hierarchy.json", "m.hierarchy.json"]):
        proc = run_cli(*command, cwd=tmp_path)
        assert proc.returncode in (1, 2) and "Traceback" not in proc.stderr
        assert "m.hierarchy.json: 1 problem(s)\n  export.onnx_file: " in proc.stderr


def _endless_loop(path: Path) -> None:
    """A tagged ONNX model whose one node loops 10**12 times."""
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond"], ["cond_out"]),
         helper.make_node("Identity", ["x"], ["x_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [1])])
    loop = helper.make_node("Loop", ["trips", "", "x"], ["y"], body=body, name="loop")
    loop.metadata_props.add(key="modelexport.module", value="looper")
    graph = helper.make_graph(
        [loop], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [helper.make_tensor("trips", TensorProto.INT64, [], [10**12])])
    path.write_bytes(helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())


@pytest.mark.export
def test_a_profile_of_a_loop_that_never_ends_stops_at_its_timeout(tmp_path: Path) -> None:
    _endless_loop(tmp_path / "loop.onnx")
    started = time.monotonic()
    proc = run_cli("profile", "loop.onnx", "--runs", "1", "--warmup", "0", "--timeout", "3",
                   cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    assert "loop.onnx: stopped after 3 s (--timeout)" in one_error_line(proc)
    assert time.monotonic() - started < 60


@pytest.mark.export
def test_a_profile_told_to_stop_stops_and_leaves_no_temporary_folder(tmp_path: Path) -> None:
    _endless_loop(tmp_path / "loop.onnx")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "modelexport", "profile", "loop.onnx",
                             "--runs", "1", "--warmup", "0"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**outside_actions(os.environ), "TMPDIR": str(scratch)})
    deadline = time.monotonic() + 60
    while not list(scratch.glob("modelexport-*")) and time.monotonic() < deadline:
        time.sleep(0.1)  # the profile's folder is there
    time.sleep(2)  # its runs have begun
    proc.send_signal(signal.SIGTERM)  # what a CI sends a job it cancels
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    # onnxruntime's own session file (.ses) aside, nothing is left.
    assert list(scratch.glob("modelexport-*")) == []



@pytest.mark.export
def test_a_full_temporary_folder_is_named_as_such(exports, tmp_path: Path) -> None:
    """onnxruntime says only "Protobuf serialization failed" when the optimized graph does
    not fit: that read "onnxruntime refuses the model"."""
    path = exports.get("bert", "torchscript").onnx_path
    full = tmp_path / "full"
    full.mkdir()
    mount = f'mount -t tmpfs -o size=8k tmpfs {full} && TMPDIR={full} "$@"'
    namespace = ["--mount"] if os.geteuid() == 0 else ["--map-root-user", "--mount"]
    proc = subprocess.run(["unshare", *namespace, "sh", "-c", mount, "sh", sys.executable,
                           "-m", "modelexport", "profile", str(path), "--runs", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "no room left in the temporary folder" in one_error_line(proc)


def test_an_error_that_quotes_a_file_cannot_drive_the_terminal(tmp_path: Path) -> None:
    (tmp_path / "models.yaml").write_text(
        'models:\n  - name: a\n    source: {config: {model_type: bert}}\n'
        '    "\\r::error::forged\\u001b[2J": 1\n')
    for command in ("validate", "check"):
        proc = run_cli(command, "models.yaml", cwd=tmp_path)
        assert proc.returncode in (1, 2)
        assert "\r" not in proc.stderr and "\x1b" not in proc.stderr
        assert not any(line.startswith("::") for line in proc.stderr.splitlines())
        assert "\\r::error::forged\\x1b[2J" in proc.stderr


@pytest.mark.export
@pytest.mark.skipif(os.geteuid() != 0, reason="the run as root: needs root")
def test_a_model_folder_the_worker_cannot_read_is_named_before_any_model_runs(
        tmp_path: Path) -> None:
    (tmp_path / "own").mkdir()  # tmp_path: root's alone
    (tmp_path / "own" / "spy.py").write_text(SPY)
    (tmp_path / "models.yaml").write_text(
        "models:\n  - name: spy\n    source: {factory: \"spy:build\", python_path: [own]}\n")
    proc = run_cli("check", "models.yaml", cwd=tmp_path)
    assert proc.returncode == 2
    assert (f"'nobody' cannot read {tmp_path / 'own'}, where a model's code or files are"
            in one_error_line(proc))
    assert not (tmp_path / "env.json").exists()


@pytest.mark.export
def test_a_hub_model_is_fetched_with_the_token_by_the_runner_and_loaded_offline(
        workspace: Path) -> None:
    from transformers import BertConfig, BertModel

    saved = workspace / "saved"
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(saved)
    hub = FakeHub({path.name: path.read_bytes() for path in saved.iterdir()})
    (workspace / "models.yaml").write_text(f'models:\n  - name: tiny\n    repeats: 1\n'
                                           f'    source: {{id: org/tiny, revision: "{SHA}"}}\n')
    with hub.serve() as url:
        env = {k: v for k, v in outside_actions(os.environ).items() if k != "HF_HUB_OFFLINE"}
        proc = run_cli("check", "models.yaml", "--allow-no-baseline", cwd=workspace, env={
            **env, "HF_ENDPOINT": url, "HF_HOME": str(workspace / "hf"), "HF_TOKEN": "hf_x"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((workspace / "modelexport-out" / "results.json").read_text()
                      )["models"]["tiny"]["status"] == "ok"
    # Every request for the model carried the token: the runner made them all (a worker has
    # no token, and none was asked of the hub without one).
    model_requests = [auth for _, path, auth in hub.seen if "org/tiny" in path]
    assert model_requests and set(model_requests) == {"Bearer hf_x"}


def test_onnxruntime_sends_nothing_home_from_the_tools_processes(tmp_path: Path) -> None:
    """ONNX Runtime starts a thread when imported that sends usage events to Microsoft
    (seen under strace looking up mobile.events.data.microsoft.com) unless
    ORT_DISABLE_TELEMETRY is set, or it sees a CI service (CI, GITHUB_ACTIONS). The command
    line sets it unless the user did; the gate's workers, and the server they are forked
    from, always run with it."""
    count = "import os, onnxruntime; print(len(os.listdir('/proc/self/task')))"
    plain = {"PATH": os.environ.get("PATH", "")}  # as on a developer's machine: no CI

    def threads(env: dict[str, str]) -> int:
        return int(subprocess.run([sys.executable, "-c", count], env=env, check=True,
                                  capture_output=True, text=True).stdout)

    assert threads(plain) == threads({**plain, "ORT_DISABLE_TELEMETRY": "1"}) + 1
    left = ("import os; from modelexport import cli; cli.main(['validate', 'missing.onnx']); "
            "print(os.environ.get('ORT_DISABLE_TELEMETRY'))")
    for given, expected in ((None, "1"), ("0", "0")):
        env = {**plain, **({"ORT_DISABLE_TELEMETRY": given} if given else {})}
        proc = subprocess.run([sys.executable, "-c", left], env=env, cwd=tmp_path,
                              capture_output=True, text=True, check=True)
        assert proc.stdout.splitlines()[-1] == expected, proc.stderr
