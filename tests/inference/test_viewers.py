"""A real profile of the real all-MiniLM-L6-v2 in the viewers people open profiles in:
speedscope's own app imports the trace and the collapsed stacks (in Debian's chromium), and
what it understood is read back from its own export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelexport.inference import session
from modelexport.inference.records import Settings
from modelexport.publish import flame

from browser import frame_totals, speedscope_import
from harness import run_cli

pytestmark = pytest.mark.export


@pytest.fixture(scope="module")
def minilm(exports, tmp_path_factory: pytest.TempPathFactory):
    path = exports.get("minilm", "torchscript").onnx_path
    found, _ = session.run(path, Settings(runs=6, warmup=1, threads=1, optimization="all"))
    return found


def test_speedscope_nests_the_trace_as_the_module_tree_with_the_profiles_times(
        minilm, tmp_path: Path) -> None:
    (tmp_path / "minilm.trace.json").write_text(json.dumps(flame.trace(minilm)))
    exported = speedscope_import(tmp_path, "minilm.trace.json")
    assert not [m for m in exported["console"] if "still open" in m or "error" in m.lower()]
    # speedscope names a slice by its name and args; ours say which module it is.
    totals = {json.loads(stack.rpartition(";")[2].partition(" ")[2])["module"]: us / 1000
              for stack, us in frame_totals(exported).items()
              if '"module"' in stack.rpartition(";")[2]}
    inclusive = {m.path or flame.ROOT: m.inclusive_ms for m in minilm.modules}
    shown = [path for path in totals if inclusive[path] > 0]
    assert {"(root)", "encoder", "encoder.layer.0", "encoder.layer.5.attention.self"} <= set(shown)
    for path in shown:
        assert totals[path] == pytest.approx(inclusive[path], rel=0.01), path
    # Nested: a layer's slice lies inside the encoder's, inside the root's.
    (events,) = [p["events"] for p in exported["profiles"]]
    names = [f["name"] for f in exported["shared"]["frames"]]
    stack: list[str] = []
    nested_in: dict[str, tuple[str, ...]] = {}
    for event in events:
        module = json.loads(names[event["frame"]].partition(" ")[2]).get("module")
        if event["type"] == "O":
            if module:
                nested_in[module] = tuple(stack)
            stack.append(module or "kernel")
        else:
            stack.pop()
    assert nested_in["encoder.layer.3"] == ("(root)", "encoder")


def test_speedscope_reads_the_collapsed_stacks_with_the_same_totals(minilm, tmp_path: Path
                                                                    ) -> None:
    (tmp_path / "minilm.collapsed.txt").write_text(flame.collapsed(minilm))
    totals = frame_totals(speedscope_import(tmp_path, "minilm.collapsed.txt"))
    by_path = {m.path: m.inclusive_ms for m in minilm.modules}
    assert totals["(root)"] / 1e6 == pytest.approx(by_path[""], rel=0.01)
    assert totals["(root);encoder;layer.2"] / 1e6 == pytest.approx(
        by_path["encoder.layer.2"], rel=0.01)
    assert totals["(root);encoder;layer.2;attention;self"] / 1e6 == pytest.approx(
        by_path["encoder.layer.2.attention.self"], rel=0.01)


def test_profile_writes_the_trace_and_the_stacks(exports, tmp_path: Path) -> None:
    path = exports.get("minilm", "torchscript").onnx_path
    proc = run_cli("profile", str(path), "--runs", "3", "--trace", "t.json", "--flame", "f.txt",
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "trace: t.json" in proc.stdout and "collapsed stacks: f.txt" in proc.stdout
    events = json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    assert {e["cat"] for e in events if e["ph"] == "X"} == {"module", "kernel"}
    kernels = [e["args"] for e in events if e.get("cat") == "kernel"]
    assert all(" -> " in k["shapes"] for k in kernels)
    assert any(k["op_type"] == "MatMul" and k["shapes"].startswith("float[") for k in kernels)
    assert (tmp_path / "f.txt").read_text().startswith("(root);")
