"""The sidecar: its schema valid and strict where a consumer relies on it, its record
reading back what it wrote, and the file checks. No torch."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest

from modelexport import jsonfile, schemas, sidecar
from modelexport.environment import library_versions
from modelexport.errors import MetadataInvalid
from modelexport.htp.options import PHASES

SCHEMA = schemas.HIERARCHY


def minimal() -> dict:
    return {
        "$schema": sidecar.SCHEMA_ID, "schema_version": sidecar.SCHEMA_VERSION,
        "tool": {"name": "modelexport", "version": "0.1.0"},
        "libraries": dict(library_versions()),
        "source": {"kind": "config", "model_type": "bert", "seed": 0, "model_class": "AutoModel",
                   "trust_remote_code": False},
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
        "timings": dict.fromkeys(PHASES, 0.1),
        "validation": {"checker": None, "parity": None},
    }


def test_schema_is_a_valid_2020_12_schema_shipped_in_the_package() -> None:
    schema = schemas.load_schema(SCHEMA)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$id"] == sidecar.SCHEMA_ID
    top_level = Path(__file__).parent.parent / "schemas" / SCHEMA
    assert json.loads(top_level.read_text()) == schema


def test_a_complete_sidecar_validates_and_reads_back_as_it_was() -> None:
    assert schemas.schema_errors(minimal(), SCHEMA) == []
    assert sidecar.Sidecar.from_json(minimal()).to_json() == minimal()


def test_the_schema_requires_exactly_the_phases_an_export_times() -> None:
    timings = schemas.load_schema(SCHEMA)["properties"]["timings"]
    assert tuple(timings["required"]) == PHASES
    assert set(timings["properties"]) == {*PHASES, "download"}


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
    errors = schemas.schema_errors(document, SCHEMA)
    assert any(e.startswith(expected) for e in errors), errors


def test_check_reports_unreadable_and_orphan_files(tmp_path: Path) -> None:
    broken = tmp_path / "m.hierarchy.json"
    broken.write_text("{not json")
    with pytest.raises(MetadataInvalid, match="not readable JSON"):
        sidecar.verify(broken)
    with pytest.raises(MetadataInvalid, match=r"no sidecar m2\.hierarchy\.json"):
        sidecar.verify(tmp_path / "m2.onnx")
    sidecar_file = tmp_path / "ok.hierarchy.json"
    jsonfile.write_atomic(sidecar_file, minimal())
    result = sidecar.verify(sidecar_file)  # no ONNX beside it: schema only
    assert (result.onnx, result.nodes) == (None, 2)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
