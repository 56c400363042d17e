"""The GitHub Action and the pre-commit hooks, run the way their hosts run them.

No Docker engine here: entrypoint.sh runs directly with INPUT_* set as the runner sets
them (hyphens kept), against the fake GitHub on 127.0.0.1. The Dockerfile is linted with
hadolint, the shell with shellcheck, action.yml and the workflows with check-jsonschema's
vendored SchemaStore schemas, the hooks with a real ``pre-commit try-repo``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from fake_github import FakeGitHub, assert_not_leaked, parse_outputs
from harness import gate_documents, outside_actions

ROOT = Path(__file__).parent.parent
BIN = Path(sys.executable).parent
TOKEN = "ghs_entrypointT0kenNeverPrinted42"
HF_TOKEN = "hf_gatedModelT0kenNeverPrinted"
TINY_BERT = textwrap.dedent("""\
    version: 1
    defaults: {repeats: 2, timeout: 300, thresholds: {floor: 3600}}  # no verdict from timing
    models:
      - name: bert-tiny
        source:
          config: {model_type: bert, hidden_size: 32, num_hidden_layers: 1,
                   num_attention_heads: 2, intermediate_size: 64}
    """)


def tool(name: str) -> str:
    return str(BIN / name) if (BIN / name).exists() else name


def test_action_and_workflows_match_the_schemastore_schemas() -> None:
    workflows = sorted(ROOT.glob(".github/workflows/*.yml")) + sorted(
        ROOT.glob("examples/workflows/*.yml"))
    assert len(workflows) >= 3
    for schema, files in (("vendor.github-actions", [ROOT / "action.yml"]),
                          ("vendor.github-workflows", workflows)):
        proc = subprocess.run([tool("check-jsonschema"), "--builtin-schema", schema,
                               *map(str, files)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hooks_file_matches_pre_commits_own_manifest_schema() -> None:
    # check-jsonschema vendors no schema for it; pre-commit's own validator is the reference.
    proc = subprocess.run([tool("pre-commit"), "validate-manifest",
                           str(ROOT / ".pre-commit-hooks.yaml")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hooks = {hook["id"]: hook for hook in
             yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["modelexport-check"]["stages"] == ["manual", "pre-push"]
    assert hooks["modelexport-check"]["additional_dependencies"] == [".[export]"]
    assert "additional_dependencies" not in hooks["modelexport-manifest"]


def test_every_input_of_action_yml_is_read_by_the_entrypoint_and_no_other() -> None:
    inputs = set(yaml.safe_load((ROOT / "action.yml").read_text())["inputs"])
    read = set(re.findall(r"\binput ([A-Z-]+)\b", (ROOT / "entrypoint.sh").read_text()))
    assert {name.upper() for name in inputs} == read


def test_dockerfile_and_entrypoint_lint_clean() -> None:
    hadolint = subprocess.run([tool("hadolint"), str(ROOT / "Dockerfile")],
                              capture_output=True, text=True)
    assert hadolint.returncode == 0, hadolint.stdout
    scripts = [ROOT / "entrypoint.sh", ROOT / ".ci" / "run", ROOT / ".ci" / "lock"]
    shellcheck = subprocess.run([tool("shellcheck"), *map(str, scripts)],
                                capture_output=True, text=True)
    assert shellcheck.returncode == 0, shellcheck.stdout


def image_lines() -> list[str]:
    return (ROOT / "Dockerfile").read_text().splitlines()


def test_dockerfile_installs_cpu_torch_and_the_locked_stack_before_the_code() -> None:
    lines = image_lines()
    # A floating tag would move the Python patch release the fingerprint records.
    assert re.fullmatch(r"FROM python:3\.\d+\.\d+-slim-\w+", lines[[
        line.startswith("FROM ") for line in lines].index(True)])
    torch = next(i for i, line in enumerate(lines) if "torch==" in line)
    assert "--index-url https://download.pytorch.org/whl/cpu --no-deps" in lines[torch]
    locked = lines.index("RUN pip install --require-hashes -r requirements-action.txt")
    code = lines.index("COPY src/ src/")
    assert torch < locked < code
    assert not any("torch" in line for line in lines[code:])
    assert any("pip check" in line for line in lines[code:])


def locked_versions() -> dict[str, str]:
    """requirements-action.txt as {name: version}; every pin must carry its files' hashes."""
    from packaging.utils import canonicalize_name

    text = (ROOT / "requirements-action.txt").read_text()
    pins: dict[str, str] = {}
    for entry in re.split(r"\n(?=[a-z0-9])", text.split("\n", 3)[3].strip()):
        name, version = re.match(r"([A-Za-z0-9._-]+)==(\S+)", entry).groups()
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"{name}: no hash"
        pins[canonicalize_name(name)] = version
    return pins


def test_the_lock_pins_every_library_the_fingerprint_records() -> None:
    """The lock is what .ci/lock makes of pyproject.toml: every requirement of the export
    stack and of torch pinned within its range, torch itself pinned in the Dockerfile."""
    from importlib import metadata

    import tomllib
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    from modelexport.environment import LIBRARIES

    pins = locked_versions()
    torch_pin = Version(re.search(r"torch==(\S+)", "\n".join(image_lines())).group(1))
    assert torch_pin.local == "cpu"
    # The development install runs the torch the image runs.
    assert Version(metadata.version("torch")).public == torch_pin.public
    image_python = re.search(r"FROM python:(\d+\.\d+)", "\n".join(image_lines())).group(1)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["export"],
              *(metadata.requires("torch") or [])]
    for requirement in map(Requirement, wanted):
        if requirement.marker and not requirement.marker.evaluate(
                {"python_version": image_python, "extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        version = torch_pin if name == "torch" else Version(pins[name])
        assert requirement.specifier.contains(version, prereleases=True), (requirement, version)
    assert {canonicalize_name(name) for name in LIBRARIES} <= {*pins, "torch"}


def action(workspace: Path, fake: FakeGitHub, inputs: dict[str, str], event_name: str,
           event: dict) -> subprocess.CompletedProcess[str]:
    """entrypoint.sh as the runner starts it, run to its end."""
    return subprocess.run(["bash", str(ROOT / "entrypoint.sh")], cwd=workspace,
                          env=action_env(workspace, fake, inputs, event_name, event),
                          capture_output=True, text=True, timeout=600)


def action_env(workspace: Path, fake: FakeGitHub, inputs: dict[str, str], event_name: str,
               event: dict) -> dict[str, str]:
    """The environment the runner gives entrypoint.sh: INPUT_<NAME> per input (upper case,
    hyphens kept, every declared input present with its default), GITHUB_* context."""
    declared = yaml.safe_load((ROOT / "action.yml").read_text())["inputs"]
    event_path = workspace / f"event-{event_name}.json"
    event_path.write_text(json.dumps(event))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GITHUB_", "INPUT_", "HF_HOME"))}
    env |= {f"INPUT_{name.upper()}": str(spec.get("default", "")) for name, spec in
            declared.items()}
    env |= {f"INPUT_{name.upper()}": value for name, value in inputs.items()}
    env |= {
        "PATH": f"{BIN}{os.pathsep}{env['PATH']}", "HF_HUB_OFFLINE": "1",
        "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event_path),
        "GITHUB_REPOSITORY": fake.repository, "GITHUB_API_URL": fake.url,
        "GITHUB_OUTPUT": str(workspace / "output"),
        "GITHUB_STEP_SUMMARY": str(workspace / "summary.md"),
        "MODELEXPORT_LOOPBACK_HTTP": "1",  # the fake serves plain http on 127.0.0.1
    }
    return env


def outputs(workspace: Path) -> dict[str, str]:
    """$GITHUB_OUTPUT as the runner reads it; then removed, as each step gets a fresh one."""
    path = workspace / "output"
    found = parse_outputs(path.read_text())
    path.unlink()
    return found


@pytest.mark.export
def test_entrypoint_baseline_collect_report_check(tmp_path: Path, fake: FakeGitHub) -> None:
    (tmp_path / "models.yaml").write_text(TINY_BERT)
    token = {"GITHUB-TOKEN": TOKEN, "HF-TOKEN": HF_TOKEN}
    pull = {"pull_request": {"number": 4}}
    runs = []

    runs.append(made := action(tmp_path, fake, {"MODE": "update-baseline"}, "push", {}))
    assert made.returncode == 0, made.stdout + made.stderr
    assert json.loads((tmp_path / "modelexport-baseline.json").read_text())["kind"] == "baseline"
    assert outputs(tmp_path)["verdict"] == "pass"

    # The fork-safe pair: collect (no comment, whatever the token) then report.
    runs.append(collect := action(tmp_path, fake, {"MODE": "collect", **token},
                                  "pull_request", pull))
    assert collect.returncode == 0, collect.stdout + collect.stderr
    assert fake.requests == []
    assert outputs(tmp_path) == {
        "verdict": "pass", "regressions": "0", "compared": "1",
        "results-path": "modelexport-out/results.json",
        "report-path": "modelexport-out/report.md",
        "report-json-path": "modelexport-out/report.json",
        "bmf-path": "modelexport-out/bmf.json",
        "benchmark-action-path": "modelexport-out/benchmark-action.json",
        "svg-path": "modelexport-out/moved.svg"}
    measured = json.loads((tmp_path / "modelexport-out" / "results.json").read_text())
    assert measured["pull_request"] == {"repository": "octo/models", "number": 4}
    assert "| ⚪ | `bert-tiny` |" in (tmp_path / "summary.md").read_text()

    fake.heads[4] = "c" * 40
    runs.append(report := action(tmp_path, fake, {"MODE": "report", **token}, "workflow_run",
                                 {"workflow_run": {"head_sha": "c" * 40}}))
    assert report.returncode == 0, report.stdout + report.stderr
    (posted,) = fake.comments[4]
    # Rendered by the report job from the results, judged against its own baseline.
    assert posted["body"].startswith("<!-- modelexport-comment: models.yaml -->\n"
                                     "### modelexport: 1 unchanged\n")
    assert "judged by the report job" in posted["body"]
    assert "| ⚪ | `bert-tiny` |" in posted["body"]

    # Same-repository PR: check comments itself (comment: auto), on the same comment.
    runs.append(check := action(tmp_path, fake, {"MODE": "check", **token}, "pull_request",
                                pull))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "::notice::PR comment updated" in check.stdout
    assert len(fake.comments[4]) == 1
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in fake.requests)
    for secret in (TOKEN, HF_TOKEN):
        assert_not_leaked(secret, tmp_path, runs)


@pytest.mark.export
def test_entrypoint_failure_decides_the_exit_code_unless_told_not_to(
        tmp_path: Path, fake: FakeGitHub) -> None:
    # hidden_size 30 is no multiple of 4 heads: the model cannot be built, a failure.
    (tmp_path / "models.yaml").write_text(TINY_BERT.replace(
        "num_attention_heads: 2", "num_attention_heads: 4").replace("hidden_size: 32",
                                                                    "hidden_size: 30"))
    failing = action(tmp_path, fake, {}, "push", {})
    assert failing.returncode == 1
    assert "line=4,title=modelexport%3A bert-tiny failed::" in failing.stdout
    assert outputs(tmp_path)["regressions"] == "1"

    tolerated = action(tmp_path, fake, {"FAIL-ON-REGRESSION": "false"}, "push", {})
    assert tolerated.returncode == 0
    assert "::warning title=modelexport::regressions found; not failing" in tolerated.stdout


def test_entrypoint_passes_select_as_one_option_per_tag(tmp_path: Path, fake: FakeGitHub
                                                       ) -> None:
    (tmp_path / "models.yaml").write_text(TINY_BERT)
    proc = action(tmp_path, fake, {"SELECT": "vision, audio", "THRESHOLD": "0.2"}, "push", {})
    assert proc.returncode == 2
    # Two options, one per tag: one option "vision, audio" would be one tag.
    assert "no model has tag(s) 'vision', 'audio'" in proc.stderr


def test_entrypoint_refuses_an_unknown_mode_without_echoing_it(tmp_path: Path,
                                                               fake: FakeGitHub) -> None:
    proc = action(tmp_path, fake, {"MODE": "::add-mask::publish"}, "push", {})
    assert proc.returncode == 2
    assert proc.stdout == ("::error title=modelexport::mode must be check, update-baseline, "
                           "collect or report\n")


def test_entrypoint_takes_a_manifest_named_like_an_option_as_a_file(tmp_path: Path,
                                                                    fake: FakeGitHub) -> None:
    proc = action(tmp_path, fake, {"MANIFEST": "--help"}, "push", {})
    assert proc.returncode == 2
    assert "--help: no such file" in proc.stderr and "usage:" not in proc.stdout


def test_entrypoint_hands_back_only_what_lies_in_the_workspace(tmp_path: Path,
                                                               fake: FakeGitHub) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    os.chown(outside / "keep", 4321, 4321)
    proc = action(tmp_path, fake, {"MODE": "report", "OUTPUT-DIR": str(outside)}, "push", {})
    assert proc.returncode == 2  # nothing to report there; what matters is the owner
    assert (outside / "keep").stat().st_uid == 4321
    # What git noted as root of a base's checkout goes back to the workspace's owner.
    (tmp_path / ".git" / "worktrees").mkdir(parents=True)
    os.chown(tmp_path, 4321, 4321)
    action(tmp_path, fake, {"MODE": "report", "OUTPUT-DIR": str(outside)}, "push", {})
    assert (tmp_path / ".git" / "worktrees").stat().st_uid == 4321


@pytest.mark.skipif(shutil.which("git") is None, reason="pre-commit needs git")
def test_pre_commit_hook_passes_a_good_manifest_and_points_at_a_typo(tmp_path: Path) -> None:
    repo = tmp_path / "user-repo"
    repo.mkdir()
    env = {**outside_actions(os.environ), "PRE_COMMIT_HOME": str(tmp_path / "cache"),
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com"}
    env = {k: v for k, v in env.items() if not k.startswith("GITHUB_")}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)

    def hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("pre-commit"), "try-repo", str(ROOT), "modelexport-manifest",
             "--files", "models.yaml", "other.yaml"],
            cwd=repo, env=env, capture_output=True, text=True, timeout=600)

    git("init", "-q")
    (repo / "models.yaml").write_text(TINY_BERT)
    (repo / "other.yaml").write_text("not: [a manifest\n")  # not matched by files:
    git("add", ".")
    good = hook()
    assert good.returncode == 0, good.stdout + good.stderr
    assert re.search(r"modelexport manifest\.+Passed", good.stdout)

    (repo / "models.yaml").write_text(TINY_BERT.replace("timeout: 300", "timeuot: 300"))
    git("add", ".")
    bad = hook()
    assert bad.returncode == 1
    assert re.search(r"modelexport manifest\.+Failed", bad.stdout)
    assert ("models.yaml:2: defaults.timeuot: unknown key (did you mean 'timeout'?)"
            in bad.stdout)


@pytest.mark.export  # to make the exports it diffs
def test_light_install_checks_manifests_diffs_exports_and_names_the_missing_extra(
        tmp_path: Path) -> None:
    """What pre-commit installs for the hooks (``pip install .``): no torch, no onnx; it
    validates manifests and diffs exports, and the gate there says exactly what to install."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr
    (tmp_path / "models.yaml").write_text(TINY_BERT)
    light = str(venv / "bin" / "modelexport")
    check = subprocess.run([light, "validate", "models.yaml"], cwd=tmp_path,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    gate = subprocess.run([light, "check", "models.yaml"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert gate.returncode == 2
    # Installed from a folder: the extra comes from the same folder, not from PyPI.
    assert ("needs the export stack (torch is not installed): pip install torch==2.13.0 && "
            f"pip install 'modelexport[export] @ {ROOT.as_uri()}'") in gate.stderr
    for layers in (1, 2):
        export = subprocess.run(
            [sys.executable, "-m", "modelexport", "export", "--model-type", "bert",
             "--config", f"hidden_size=32,num_hidden_layers={layers},num_attention_heads=2",
             "-o", f"bert-{layers}.onnx"], cwd=tmp_path, capture_output=True, text=True)
        assert export.returncode == 0, export.stderr
    diff = subprocess.run([light, "diff", "bert-1.hierarchy.json", "bert-2.hierarchy.json"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert diff.returncode == 1, diff.stderr
    assert diff.stdout.startswith("encoder.layer.1  new module: ")
    freeze = subprocess.run([str(venv / "bin" / "pip"), "freeze"], capture_output=True,
                            text=True).stdout.lower()
    assert not any(name in freeze for name in ("torch", "onnx", "transformers"))


SLOW = """\
import time

import torch


def build(sleep=0):
    time.sleep(sleep)
    return torch.nn.Linear(4, 4), {"input": torch.ones(2, 4)}
"""


@pytest.mark.export
def test_entrypoint_passes_sigterm_on_and_the_finished_models_are_kept(
        workspace: Path, fake: FakeGitHub) -> None:
    (workspace / "slow.py").write_text(SLOW)
    (workspace / "models.yaml").write_text(textwrap.dedent("""\
        defaults: {repeats: 1}
        models:
          - name: quick
            source: {factory: "slow:build"}
          - name: stuck
            source: {factory: "slow:build", kwargs: {sleep: 600}}
        """))
    entry = subprocess.Popen(["bash", str(ROOT / "entrypoint.sh")], cwd=workspace,
                             env=action_env(workspace, fake, {}, "push", {}),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = workspace / "modelexport-out" / "results.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and "quick" not in (
            json.loads(results.read_text())["models"] if results.exists() else {}):
        time.sleep(0.2)
    entry.send_signal(signal.SIGTERM)  # what the runner sends a step it cancels
    _, stderr = entry.communicate(timeout=60)
    assert entry.returncode == 130, stderr
    assert "interrupted; finished models are in modelexport-out/results.json" in stderr
    assert list(json.loads(results.read_text())["models"]) == ["quick"]


def test_entrypoint_report_mode_with_an_empty_baseline_input_passes(tmp_path: Path,
                                                                    fake: FakeGitHub) -> None:
    """With ``baseline: ""``, the step failed after its comment was posted."""
    out = tmp_path / "modelexport-out"
    out.mkdir()
    current, _, _ = gate_documents(out, slower_by=1.0, pull_request=4)
    current.rename(out / "results.json")
    fake.heads[4] = "c" * 40
    proc = action(tmp_path, fake, {"MODE": "report", "BASELINE": "", "MANIFEST": "",
                                   "GITHUB-TOKEN": TOKEN}, "workflow_run",
                  {"workflow_run": {"head_sha": "c" * 40}})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PR comment created" in proc.stdout
    assert "no baseline" in fake.comments[4][0]["body"]


@pytest.mark.parametrize(("code", "step"), [(1, 0), (3, 3), (2, 2)])
def test_only_a_regression_passes_under_fail_on_regression_false(
        tmp_path: Path, fake: FakeGitHub, code: int, step: int) -> None:
    """A crash exits 3, never 1: read as "regressions found, not failing" it went green.
    The modelexport the entrypoint calls is a stand-in that exits with ``code``."""
    stand_in = tmp_path / "bin" / "modelexport"
    stand_in.parent.mkdir()
    stand_in.write_text(f"#!/bin/sh\nexit {code}\n")
    stand_in.chmod(0o755)
    env = action_env(tmp_path, fake, {"FAIL-ON-REGRESSION": "false"}, "push", {})
    env["PATH"] = f"{stand_in.parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(["bash", str(ROOT / "entrypoint.sh")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == step
    assert ("not failing (fail-on-regression: false)" in proc.stdout) == (code == 1)


WIDENED = '''
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.up = torch.nn.Linear(16, WIDTH)
        self.down = torch.nn.Linear(WIDTH, 16)

    def forward(self, x):
        return self.down(torch.relu(self.up(x)))


def build():
    return Net(), {"x": torch.ones(4, 16)}
'''


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                           "user.email=t@t", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.mark.export
def test_entrypoint_measures_the_pull_requests_base_found_from_the_merge_commit(
        workspace: Path, fake: FakeGitHub) -> None:
    """As actions/checkout leaves a pull_request run (fetch-depth: 2): the merge of the
    head into the base branch, whose first parent is the base; with depth 1 it is not
    there, and the stored baseline is what remains."""
    repo = workspace / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "nets.py").write_text(WIDENED.replace("WIDTH", "32"))
    (repo / "models.yaml").write_text("defaults: {repeats: 3}\nmodels:\n"
                                      "  - {name: mlp, source: {factory: \"nets:build\"}}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-qb", "widen")
    (repo / "nets.py").write_text(WIDENED.replace("WIDTH", "64"))
    git(repo, "commit", "-qam", "widen")
    git(repo, "checkout", "-q", "--detach", "main")
    git(repo, "merge", "-q", "--no-ff", "widen", "-m", "merge")  # refs/pull/4/merge
    event = {"pull_request": {"number": 4, "base": {"sha": base}}}

    paired = action(repo, fake, {"MODE": "collect"}, "pull_request", event)
    assert paired.returncode == 1, paired.stdout + paired.stderr  # a bigger graph
    assert f"compared with the base ({base[:7]}), measured beside the head" in paired.stdout
    summary = (repo / "summary.md").read_text()
    assert f"compared with the base ({base[:7]})" in summary
    assert "| | model | metric | base | head |" in summary
    assert git(repo, "worktree", "list").count("\n") == 0

    shallow = workspace / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)],
                   check=True)
    alone = action(shallow, fake, {"MODE": "collect", "COMPARE-WITH": "base"},
                   "pull_request", event)
    assert f"no base to measure beside the head (the base commit {base[:7]} is not in this " \
           "checkout (check out with fetch-depth: 2)): compared with the stored baseline " \
           "alone" in alone.stdout
    assert not (shallow / "modelexport-out" / "results.json").read_text().count('"base"')
