"""The shape of the package, checked: imports run down the layers only, and the command
line loads none of the library to answer --help. Reads the source; imports nothing of it
but the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "src" / "modelexport"
# Lowest first. A module imports from its own layer's group or a lower layer: a flat
# layer's modules (the base, the records) import each other; a package imports itself.
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"__init__", "errors", "escape", "files", "jsonfile", "schemas", "stats", "modulepath",
              "logs", "yamlfile", "environment"}),
    ("records", {"inputs", "outputs", "sources", "sidecar", "onnxfile", "tags", "structure",
                 "diff", "kvcache"}),
    ("engines", {"inference", "github"}),
    ("verification", {"verify"}),  # runs exports in ONNX Runtime as inference does
    ("htp", {"htp"}),
    ("gate", {"gate"}),
    ("publish", {"publish"}),
    ("command line", {"commands", "cli", "__main__"}),
]
FLAT = {"base", "records", "command line"}


def _group(module: str) -> str:
    """``modelexport.gate.runner`` -> ``gate``; ``modelexport`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(group: str) -> int:
    return next(i for i, (_, groups) in enumerate(LAYERS) if group in groups)


def _imports(path: Path) -> set[str]:
    """Every modelexport module ``path`` imports, at its top or inside a function."""
    here = "modelexport." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here.rsplit(".", node.level)[0]
            found.add(f"{base}.{node.module}" if node.module else base)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if (name.startswith("modelexport")
            and (PACKAGE.parent / name.replace(".", "/")).with_suffix(".py").is_file())
            or (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()}


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_run_down_the_layers(path: Path) -> None:
    own = _group("modelexport." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    upward = []
    for name in _imports(path):
        other = _group(name)
        allowed = (_layer(other) < _layer(own) or other == own
                   or (_layer(other) == _layer(own) and LAYERS[_layer(own)][0] in FLAT))
        if not allowed:
            upward.append(f"{name} ({LAYERS[_layer(other)][0]})")
    assert not upward, f"{LAYERS[_layer(own)][0]} module imports {upward}"


def test_every_module_has_a_layer() -> None:
    groups = {_group("modelexport." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts))
              for p in MODULES}
    assert groups == set().union(*(g for _, g in LAYERS))


def test_help_loads_the_command_line_and_the_names_it_offers_only() -> None:
    code = ("import sys, modelexport.cli as c\n"
            "try:\n    c.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('modelexport'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    loaded = proc.stdout.splitlines()[-1].split()
    # The option vocabularies (exporter names, ORT levels, report formats, tasks) live in
    # modules that import nothing of the library at their top.
    vocabulary = {"modelexport.htp", "modelexport.htp.options", "modelexport.inference",
                  "modelexport.kvcache",
                  "modelexport.inference.records", "modelexport.publish",
                  "modelexport.publish.formats", "modelexport.errors", "modelexport"}
    library = [m for m in loaded if not m.startswith(("modelexport.cli",
                                                       "modelexport.commands"))]
    assert set(library) <= vocabulary, library
