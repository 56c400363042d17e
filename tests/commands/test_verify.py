"""``modelexport verify`` as a user runs it: faults put into real exports are found in one
run, conversions are ranked, bad input is one line."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from modelexport import cli
from modelexport.sidecar import MODULE_KEY

from harness import EXPORTERS, one_error_line, run_cli

pytestmark = pytest.mark.export

ARCHITECTURES = ["bert", "gpt2", "vit", "resnet"]
# One unary op for another: what a wrong decomposition or a wrong mapping does.
SWAPS = {"Relu": "Sigmoid", "Tanh": "Sigmoid", "Sigmoid": "Tanh", "Erf": "Tanh",
         "Gelu": "Relu"}


def module_of(node) -> str | None:
    return next((p.value for p in node.metadata_props if p.key == MODULE_KEY), None)


def faulty(path: Path, out: Path, fault: str) -> str:
    """A copy of ``path`` with one fault in one module, and its sidecar: one weight of a
    node in the middle of the graph scaled by 1.01, or one activation swapped for another.
    Returns the module the fault is in."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    weights = {init.name: init for init in model.graph.initializer}
    uses = Counter(name for node in model.graph.node for name in node.input)
    if fault == "weight":
        nodes = [(node, name) for node in model.graph.node if module_of(node)
                 for name in node.input if name in weights and uses[name] == 1
                 and len(weights[name].dims) >= 2]
        node, name = nodes[len(nodes) // 2]
        scaled = numpy_helper.to_array(weights[name]) * 1.01
        weights[name].CopyFrom(numpy_helper.from_array(scaled.astype(scaled.dtype), name))
    else:
        node = next(n for n in model.graph.node if n.op_type in SWAPS and module_of(n))
        node.op_type = SWAPS[node.op_type]
        del node.attribute[:]
    onnx.save(model, out)
    shutil.copy(path.with_suffix(".hierarchy.json"), out.with_suffix(".hierarchy.json"))
    return str(module_of(node))


def verify(*args: str) -> tuple[int, dict]:
    """Run ``verify`` here, as the CLI would; its exit code and its JSON."""
    out = Path(args[0]).with_name("verify.json")
    code = cli.main(["verify", *args, "--json", str(out)])
    return code, json.loads(out.read_text())


@pytest.mark.parametrize("fault", ["weight", "activation"])
@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_a_fault_in_one_module_is_named_as_the_first_divergence(
        exports, tmp_path: Path, name: str, exporter: str, fault: str) -> None:
    path = exports.get(name, exporter).onnx_path
    where = faulty(path, tmp_path / "faulty.onnx", fault)
    code, found = verify(str(path), "--against", str(tmp_path / "faulty.onnx"))
    assert code == 1
    assert found["first_divergence"] == where
    # What it adds was measured: the module run alone on the reference's values.
    assert next(m for m in found["modules"] if m["module"] == where)["added_measured"]
    # Nothing upstream of it moved: every module before it in graph order is exact.
    modules = [m["module"] for m in found["modules"]]
    before = [m for m in found["modules"][:modules.index(where)]
              if not where.startswith(m["module"] + ".")]
    assert all(m["added_max_abs"] == 0 for m in before), before


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_against_pytorch_an_export_is_within_tolerance_and_a_fault_is_named(
        exports, tmp_path: Path, name: str, exporter: str) -> None:
    path = exports.get(name, exporter).onnx_path
    code, found = verify(str(path))
    assert code == 0, found
    assert found["reference"] == "PyTorch"
    assert sum(m["compared"] for m in found["modules"]) > len(found["modules"]) // 2
    where = faulty(path, tmp_path / "faulty.onnx", "weight")
    code, found = verify(str(tmp_path / "faulty.onnx"))
    assert code == 1 and found["first_divergence"] == where


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_the_two_exporters_compared_module_by_module(exports, name: str) -> None:
    """They name their values otherwise: modules are paired by their tags, values by shape."""
    torchscript, dynamo = (exports.get(name, e).onnx_path for e in ("torchscript", "dynamo"))
    code, found = verify(str(torchscript), "--against", str(dynamo))
    # On these architectures the two agree within 1e-4 at every module (torch 2.13).
    assert code == 0 and found["within"] and found["first_divergence"] is None
    compared = [m for m in found["modules"] if m["compared"]]
    assert len(compared) > len(found["modules"]) // 2, found["modules"]


def test_the_reports_show_where(exports, tmp_path: Path) -> None:
    import onnx

    path = exports.get("bert", "torchscript").onnx_path
    where = faulty(path, tmp_path / "faulty.onnx", "weight")
    proc = run_cli("verify", str(path), "--against", "faulty.onnx", "--markdown", "v.md",
                   "--model-explorer", "me.json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert f"first divergence: `{where}`" in proc.stdout.splitlines()[-3]
    assert f"**: first divergence: `{where}`" in (tmp_path / "v.md").read_text()
    # Each node valued by what its module added: the fault's nodes the most.
    (graph,) = json.loads((tmp_path / "me.json").read_text()).values()
    values = {name: entry["value"] for name, entry in graph["results"].items()}
    nodes = {n.name: module_of(n) for n in onnx.load(path).graph.node}
    assert {nodes[name] for name, value in values.items()
            if value == max(values.values())} == {where}


def test_an_unchanged_file_is_within_tolerance(exports, capsys) -> None:
    path = exports.get("bert", "dynamo").onnx_path
    code, found = verify(str(path), "--against", str(path))
    assert code == 0 and found["within"] and found["first_divergence"] is None
    out = capsys.readouterr().out
    assert out.splitlines()[1].split()[:2] == ["module", "class"]
    assert "within tolerance (0.0001 max abs)" in out


@pytest.mark.parametrize("exporter", EXPORTERS)
def test_optimization_levels_against_each_other(exports, exporter: str) -> None:
    path = exports.get("bert", exporter).onnx_path
    code, found = verify(str(path), "--optimization", "disable,all")
    assert code == 0, found
    assert found["reference"].endswith("(ORT disable)")
    assert found["candidate"].endswith("(ORT all)")


def test_fp16_and_int8_conversions_are_ranked_the_same_in_two_runs(exports, tmp_path: Path
                                                                   ) -> None:
    import onnx
    from onnxconverter_common import float16
    from onnxruntime.quantization import QuantType, quantize_dynamic

    path = exports.get("minilm", "torchscript").onnx_path
    # The fp16 graph takes and gives float16: keeping float32 ones breaks this graph, whose
    # output last_hidden_state is also the pooler's input (onnxconverter-common 1.16).
    onnx.save(float16.convert_float_to_float16(onnx.load(path)), tmp_path / "fp16.onnx")
    quantize_dynamic(path, tmp_path / "int8.onnx", weight_type=QuantType.QInt8)
    for converted in ("fp16.onnx", "int8.onnx"):
        rankings = []
        for _ in range(2):
            code, found = verify(str(path), "--against", str(tmp_path / converted),
                                 "--tolerance", "1e-2")
            assert code in (0, 1)
            ranked = sorted(found["modules"], key=lambda m: -(m["added_max_abs"] or 0))
            rankings.append([m["module"] for m in ranked[:10]])
            assert ranked[0]["added_max_abs"] > 0
        assert rankings[0] == rankings[1]


def test_bad_input_is_one_line(exports, tmp_path: Path) -> None:
    import onnx

    path = exports.get("bert", "torchscript").onnx_path
    other = exports.get("resnet", "torchscript").onnx_path
    untagged = onnx.load(path)
    for node in untagged.graph.node:
        del node.metadata_props[:]
    onnx.save(untagged, tmp_path / "untagged.onnx")
    refused = onnx.load(path)
    refused.graph.node[-1].op_type = "NoSuchOperator"
    onnx.save(refused, tmp_path / "refused.onnx")
    shutil.copy(path.with_suffix(".hierarchy.json"), tmp_path / "refused.hierarchy.json")
    shutil.copy(path, tmp_path / "alone.onnx")  # its tags, but nothing names its model
    for args, code, expected in (
            (["alone.onnx"], 2, "alone.onnx: no alone.hierarchy.json beside it"),
            (["untagged.onnx", "--optimization", "disable,all"], 2,
             "untagged.onnx: no module tags"),
            ([str(path), "--against", "untagged.onnx"], 2, "untagged.onnx: no module tags"),
            ([str(path), "--against", str(other)], 2, "are not bert-torchscript.onnx's"),
            ([str(path), "--against", "missing.onnx"], 2, "missing.onnx: no such file"),
            ([str(path), "--optimization", "all"], 2, "--optimization all: two of"),
            ([str(path), "--optimization", "disable,all", "--input", "input_ids=2x3x4"], 2,
             "does not run on the inputs input_ids=2x3x4"),
            ([str(path), "--against", "refused.onnx"], 1,
             "refused.onnx: onnxruntime refuses the model"),
            ([str(path), "--optimization", "disable,all", "--tolerance", "nan"], 2,
             "--tolerance nan: a number of at least 0"),
    ):
        proc = run_cli("verify", *args, cwd=tmp_path)
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        assert expected in one_error_line(proc), args
