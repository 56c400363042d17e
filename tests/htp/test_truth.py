"""The tags are true and complete, checked against references independent of the tagger.

For every architecture and both exporters: the file passes the full checker and matches
PyTorch in onnxruntime; every node that reads a parameter is tagged with the module owning
it; the two exporters agree on which modules have nodes and where the heavy ops are; and
no node is unattributed.
"""

from __future__ import annotations

import inspect
from collections import Counter

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from onnx import numpy_helper

from modelexport import inputs, sidecar
from modelexport.sources import load

from harness import ALL_MODELS, EXPORTERS, source_for

pytestmark = pytest.mark.export

# Parameters read outside their own module's forward: the reader is tagged, not the owner.
TIED = {"t5": {"shared.weight"}}  # one embedding, read by encoder and decoder embed_tokens
HEAVY_OPS = {"MatMul", "Gemm", "Conv"}
_models: dict[str, torch.nn.Module] = {}


def torch_model(name: str) -> torch.nn.Module:
    if name not in _models:
        _models[name] = load(source_for(name)).model
    return _models[name]


def node_tags(model: onnx.ModelProto) -> list[str | None]:
    return [
        next((p.value for p in n.metadata_props if p.key == sidecar.MODULE_KEY), None)
        for n in model.graph.node
    ]


def parameter_names(model: onnx.ModelProto, module: torch.nn.Module) -> dict[str, str]:
    """ONNX initializer name -> the one parameter whose value it holds.

    Matched by value, because names mislead both ways: constant folding renames
    (TorchScript stores Linear weights transposed as ``onnx::MatMul_N`` and folds BatchNorm
    into Conv weights), and both exporters dedup equal initializers, so with random weights
    every zero bias may be read under the name of the first one. A value that several
    parameters share (ones, zeros) says nothing about ownership and is left out.
    """
    params = {k: v.detach().numpy() for k, v in module.named_parameters()}
    found = {}
    for init in model.graph.initializer:
        value = numpy_helper.to_array(init)
        matches = [k for k, p in params.items() if _same(value, p)]
        if len(matches) == 1:
            found[init.name] = matches[0]
    return found


def _same(value: np.ndarray, param: np.ndarray) -> bool:
    if value.shape == param.shape:
        return bool(np.allclose(value, param, rtol=1e-4, atol=0))
    return param.ndim == 2 and value.shape == param.T.shape and np.array_equal(value, param.T)


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ALL_MODELS)
def test_checker_and_onnxruntime_parity(exports, name: str, exporter: str) -> None:
    result = exports.get(name, exporter)
    onnx.checker.check_model(str(result.onnx_path), full_check=True)
    model = torch_model(name)
    specs = inputs.default_specs(model, model.config)
    tensors = inputs.make(specs)
    extra = {"use_cache": False} if "use_cache" in inspect.signature(model.forward).parameters \
        else {}
    with torch.no_grad():
        expected = model(**tensors, **extra).to_tuple()
    expected = [t.numpy() for t in expected if isinstance(t, torch.Tensor)]
    session = onnxruntime.InferenceSession(str(result.onnx_path))
    got = session.run(None, {i.name: tensors[i.name].numpy() for i in session.get_inputs()})
    assert len(got) == len(expected)
    for want, have in zip(expected, got, strict=True):
        assert want.shape == have.shape
        assert np.abs(want - have).max() <= 1e-4


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ALL_MODELS)
def test_nodes_reading_a_parameter_are_tagged_with_its_module(
    exports, name: str, exporter: str
) -> None:
    result = exports.get(name, exporter)
    onnx_model = onnx.load(result.onnx_path)
    holders = parameter_names(onnx_model, torch_model(name))
    params = dict(torch_model(name).named_parameters())
    checked, wrong = 0, []
    for node, tag in zip(onnx_model.graph.node, node_tags(onnx_model), strict=True):
        if node.op_type == "Identity" and node.output[0] in params:
            # TorchScript dedups equal initializers and re-creates each parameter as an
            # Identity named after it: the output names the parameter, the input is arbitrary.
            read = {node.output[0]}
        else:
            read = {holders[i] for i in node.input if i in holders}
        for param in read - TIED.get(name, set()):
            checked += 1
            owner = param.rpartition(".")[0]
            if tag != owner:
                wrong.append(f"{node.op_type} {node.name}: tagged {tag!r}, reads {param}")
    assert checked > 0
    assert not wrong, "\n".join(wrong)


def _by_model_module(result, module: torch.nn.Module) -> tuple[set[str], Counter[str]]:
    """Modules with nodes, and heavy ops per module, lifted to the nearest non-torch.nn module."""
    builtin = {
        path for path, m in module.named_modules()
        if path and type(m).__module__.startswith("torch.nn.")
    }

    def lift(path: str) -> str:
        while path in builtin:
            path = path.rpartition(".")[0]
        return path

    with_nodes, heavy = set(), Counter()
    for entry in result.sidecar.nodes:
        if entry.module is None:
            continue
        owner = lift(entry.module)
        with_nodes.add(owner)
        if entry.op_type in HEAVY_OPS:
            heavy[owner] += 1
    return with_nodes, heavy


@pytest.mark.parametrize("name", ALL_MODELS)
def test_exporters_agree_on_modules_and_heavy_ops(exports, name: str) -> None:
    module = torch_model(name)
    ts_modules, ts_heavy = _by_model_module(exports.get(name, "torchscript"), module)
    dy_modules, dy_heavy = _by_model_module(exports.get(name, "dynamo"), module)
    assert ts_modules == dy_modules, (
        f"only torchscript: {sorted(ts_modules - dy_modules)}, "
        f"only dynamo: {sorted(dy_modules - ts_modules)}"
    )
    assert ts_heavy == dy_heavy
    assert sum(ts_heavy.values()) > 0


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ALL_MODELS)
def test_no_node_unattributed_with_dynamic_axes_and_counts_add_up(
    exports, name: str, exporter: str
) -> None:
    # The exports here have dynamic batch and sequence axes (the default): their shape
    # arithmetic belongs to modules too.
    stats = exports.get(name, exporter).statistics
    assert stats.exact + stats.inferred + stats.unattributed == stats.nodes
    assert sum(stats.unattributed_reasons.values()) == stats.unattributed
    assert sum(stats.inferred_reasons.values()) == stats.inferred
    assert stats.unattributed == 0, stats.unattributed_reasons


@pytest.mark.parametrize("exporter", EXPORTERS)
@pytest.mark.parametrize("name", ["bert", "resnet"])
def test_file_tags_agree_with_sidecar(exports, name: str, exporter: str) -> None:
    result = exports.get(name, exporter)
    checked = sidecar.verify(result.onnx_path)
    assert checked.onnx == result.onnx_path
    tags = node_tags(onnx.load(result.onnx_path, load_external_data=False))
    assert tags == [n.module for n in result.sidecar.nodes]
