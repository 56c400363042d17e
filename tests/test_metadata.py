"""The sidecar schema: itself valid, and strict where a consumer relies on it. No torch."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from modelexport import metadata
from modelexport.errors import MetadataInvalid

SCHEMA = "hierarchy.schema.json"


def minimal() -> dict:
    return {
        **metadata.header(),
        "source": {"kind": "config", "model_type": "bert", "seed": 0},
        "export": {"requested": "auto", "exporter": "torchscript", "opset": 20,
                   "fallback": None, "clean": False, "external_data": False,
                   "onnx_file": "m.onnx"},
        "inputs": [{"name": "input_ids", "shape": [1, 16], "dtype": "int64"}],
        "modules": [{"path": "", "class": "BertModel", "class_chain": "BertModel", "calls": 1,
                     "parent": None, "nodes": 1}],
        "nodes": [
            {"name": "/Cast", "op_type": "Cast", "module": "", "how": "exact"},
            {"name": "Constant_1", "op_type": "Constant", "module": None,
             "how": "unattributed", "reason": "no tagged neighbour"},
        ],
        "statistics": {"nodes": 2, "exact": 1, "inferred": 0, "unattributed": 1,
                       "inferred_reasons": {}, "unattributed_reasons": {"no tagged neighbour": 1},
                       "modules_called": 1, "modules_with_nodes": 1, "op_types": {"Cast": 1}},
        "timings": dict.fromkeys(
            ("load", "inputs", "trace", "export", "project", "write", "validate"), 0.1),
        "validation": {"checker": None, "parity": None},
    }


def test_schema_is_a_valid_2020_12_schema_shipped_in_the_package() -> None:
    schema = metadata.load_schema(SCHEMA)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == metadata.SCHEMA_ID
    top_level = Path(__file__).parent.parent / "schemas" / SCHEMA
    assert json.loads(top_level.read_text()) == schema


def test_a_complete_sidecar_validates() -> None:
    assert metadata.schema_errors(minimal(), SCHEMA) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["nodes"][0].update(module=None), "nodes[0].module: None is not of type"),
        (lambda d: d["nodes"][1].pop("reason"), "nodes[1]: 'reason' is a required property"),
        (lambda d: d["export"].update(exporter="onnxmltools"), "export.exporter:"),
        (lambda d: d.update(extra=1), "(top level): Additional properties are not allowed"),
        (lambda d: d.update(schema_version=2), "schema_version: 1 was expected"),
        (lambda d: d["timings"].pop("trace"), "timings: 'trace' is a required property"),
    ],
)
def test_schema_rejects(edit, expected: str) -> None:
    document = copy.deepcopy(minimal())
    edit(document)
    errors = metadata.schema_errors(document, SCHEMA)
    assert any(e.startswith(expected) for e in errors), errors


def test_check_reports_unreadable_and_orphan_files(tmp_path: Path) -> None:
    broken = tmp_path / "m.hierarchy.json"
    broken.write_text("{not json")
    with pytest.raises(MetadataInvalid, match="not readable JSON"):
        metadata.check(broken)
    with pytest.raises(MetadataInvalid, match=r"no sidecar m2\.hierarchy\.json"):
        metadata.check(tmp_path / "m2.onnx")
    sidecar = tmp_path / "ok.hierarchy.json"
    metadata.write_json(sidecar, minimal())
    result = metadata.check(sidecar)  # no ONNX beside it: schema only
    assert (result.onnx, result.nodes) == (None, 2)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
