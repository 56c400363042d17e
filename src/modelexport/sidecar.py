"""The hierarchy record of an export: the sidecar JSON beside the ONNX file, the tag keys
written into the file, and the check that the two agree.

Torch-free and onnx-free: ONNX files are read by ``onnxfile``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelexport import __version__, jsonfile, onnxfile, schemas
from modelexport.environment import library_versions
from modelexport.errors import MetadataInvalid
from modelexport.inputs import InputSpec
from modelexport.sources import Source

SCHEMA_VERSION = 1
SCHEMA_ID = "https://modelexport.dev/schemas/hierarchy/1.json"
# Keys written into the ONNX file's metadata_props.
MODEL_VERSION_KEY = "modelexport.schema_version"
MODULE_KEY = "modelexport.module"
CHAIN_KEY = "modelexport.class_chain"
HOW_KEY = "modelexport.how"
# Model Explorer groups nodes by this key ("/"-separated), else by their "/a/b/Op" names,
# which are scope names, not module paths (and dynamo writes "name: Class" pairs into it).
NAMESPACE_KEY = "namespace"


def sidecar_path(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.stem + ".hierarchy.json")


@dataclass(frozen=True)
class TagStatistics:
    """How the nodes were tagged: exact, inferred (with reasons) or unattributed."""

    nodes: int
    exact: int
    inferred: int
    unattributed: int
    inferred_reasons: dict[str, int] = field(default_factory=dict)
    unattributed_reasons: dict[str, int] = field(default_factory=dict)
    modules_called: int = 0
    modules_with_nodes: int = 0
    op_types: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TagStatistics:
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Parity:
    """onnxruntime against PyTorch on the export's inputs."""

    outputs: int
    max_abs_diff: float
    tolerance: float
    passed: bool


@dataclass(frozen=True)
class Validation:
    checker: bool | None = None  # onnx.checker full check; None: not run
    parity: Parity | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Validation:
        parity = data.get("parity")
        return cls(data.get("checker"), Parity(**parity) if parity else None)

    def to_json(self) -> dict[str, Any]:
        return {"checker": self.checker,
                "parity": asdict(self.parity) if self.parity else None}


@dataclass(frozen=True)
class Fallback:
    """The exporter tried first under 'auto', and why it failed."""

    exporter: str
    error: str

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Fallback | None:
        return cls(data["from"], data["error"]) if data else None

    def to_json(self) -> dict[str, str]:
        return {"from": self.exporter, "error": self.error}


@dataclass(frozen=True)
class ExportInfo:
    requested: str
    exporter: str
    opset: int
    fallback: Fallback | None
    clean: bool
    external_data: bool
    onnx_file: str  # relative to the sidecar

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportInfo:
        return cls(**{**data, "fallback": Fallback.from_json(data["fallback"])})

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "fallback": self.fallback.to_json() if self.fallback else None}


@dataclass(frozen=True)
class ModuleEntry:
    path: str  # '' is the root
    cls: str
    class_chain: str
    calls: int
    parent: str | None  # the caller of its first call
    nodes: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModuleEntry:
        return cls(data["path"], data["class"], data["class_chain"], data["calls"],
                   data["parent"], data["nodes"])

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "class": self.cls, "class_chain": self.class_chain,
                "calls": self.calls, "parent": self.parent, "nodes": self.nodes}


@dataclass(frozen=True)
class NodeEntry:
    name: str
    op_type: str
    module: str | None
    how: str  # exact | inferred | unattributed
    reason: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeEntry:
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        entry = {"name": self.name, "op_type": self.op_type, "module": self.module,
                 "how": self.how}
        return {**entry, "reason": self.reason} if self.reason else entry


@dataclass(frozen=True)
class Sidecar:
    """Everything an export records about itself (``schemas/hierarchy.schema.json``)."""

    source: Source
    export: ExportInfo
    inputs: tuple[InputSpec, ...]
    modules: tuple[ModuleEntry, ...]
    nodes: tuple[NodeEntry, ...]
    statistics: TagStatistics
    timings: dict[str, float]
    validation: Validation
    tool_version: str = __version__
    libraries: dict[str, str | None] = field(default_factory=lambda: dict(library_versions()))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sidecar:
        """From a document that passed the schema (see ``read``)."""
        return cls(
            source=Source.from_json(data["source"]),
            export=ExportInfo.from_json(data["export"]),
            inputs=tuple(InputSpec.from_json(i) for i in data["inputs"]),
            modules=tuple(ModuleEntry.from_json(m) for m in data["modules"]),
            nodes=tuple(NodeEntry.from_json(n) for n in data["nodes"]),
            statistics=TagStatistics.from_json(data["statistics"]),
            timings=data["timings"], validation=Validation.from_json(data["validation"]),
            tool_version=data["tool"]["version"], libraries=data["libraries"],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "$schema": SCHEMA_ID,
            "schema_version": SCHEMA_VERSION,
            "tool": {"name": "modelexport", "version": self.tool_version},
            "libraries": self.libraries,
            "source": self.source.to_json(),
            "export": self.export.to_json(),
            "inputs": [spec.signature_json() for spec in self.inputs],
            "modules": [m.to_json() for m in self.modules],
            "nodes": [n.to_json() for n in self.nodes],
            "statistics": self.statistics.to_json(),
            "timings": self.timings,
            "validation": self.validation.to_json(),
        }

    def schema_errors(self) -> list[str]:
        return schemas.schema_errors(self.to_json(), schemas.HIERARCHY)

    def write(self, path: Path) -> None:
        jsonfile.write_atomic(path, self.to_json())


def read(path: Path) -> Sidecar:
    """A sidecar file, checked against its schema; MetadataInvalid says what is wrong."""
    try:
        document = jsonfile.read(path)
    except ValueError as exc:
        raise MetadataInvalid(f"{path}: not readable JSON: {exc}") from exc
    problems = schemas.schema_errors(document, schemas.HIERARCHY)
    if problems:
        raise MetadataInvalid(_listing(path, problems))
    return Sidecar.from_json(document)


@dataclass(frozen=True)
class Verified:
    sidecar: Path
    onnx: Path | None  # None: no ONNX file beside the sidecar, only the schema was checked
    nodes: int


def verify(path: Path) -> Verified:
    """Validate a sidecar (or the sidecar of an ONNX file) and its agreement with the ONNX.

    Raises MetadataInvalid listing what is wrong.
    """
    if path.suffix == ".onnx":
        onnx_path: Path | None = path
        sidecar_file = sidecar_path(path)
        if not sidecar_file.is_file():
            raise MetadataInvalid(f"{path}: no sidecar {sidecar_file.name} beside it")
    else:
        sidecar_file, onnx_path = path, None
    record = read(sidecar_file)
    if onnx_path is None:
        beside = sidecar_file.parent / record.export.onnx_file
        onnx_path = beside if beside.is_file() else None
    if onnx_path is not None:
        problems = agreement_problems(onnx_path, record)
        if problems:
            raise MetadataInvalid(_listing(onnx_path, problems))
    return Verified(sidecar_file, onnx_path, len(record.nodes))


def _listing(path: Path, problems: list[str], limit: int = 20) -> str:
    shown = problems[:limit]
    more = f"\n  ... and {len(problems) - limit} more" if len(problems) > limit else ""
    return f"{path}: {len(problems)} problem(s)\n  " + "\n  ".join(shown) + more


def expected_tags(entry: NodeEntry, chains: dict[str, str], clean: bool) -> dict[str, str]:
    """The ``modelexport.*`` metadata a node carries in the ONNX file; ``chains`` holds the
    class chain of every module path."""
    if clean or entry.module is None:
        return {}
    return {MODULE_KEY: entry.module, CHAIN_KEY: chains[entry.module], HOW_KEY: entry.how}


def namespace(entry: NodeEntry) -> dict[str, str]:
    """The ``namespace`` a node carries so that viewers open it under its module."""
    return {} if entry.module is None else {NAMESPACE_KEY: entry.module.replace(".", "/")}


def agreement_problems(onnx_path: Path, record: Sidecar) -> list[str]:
    """Where the ONNX file's tags and the sidecar disagree (empty when they agree). The
    file is read without its weights, and without onnx (``onnxfile``)."""
    model = onnxfile.read(onnx_path)
    props = model.props
    problems = []
    if props.get(MODEL_VERSION_KEY) != str(SCHEMA_VERSION):
        problems.append(f"model metadata {MODEL_VERSION_KEY}={props.get(MODEL_VERSION_KEY)!r}, "
                        f"sidecar schema_version={SCHEMA_VERSION}")
    nodes = model.nodes
    if len(nodes) != len(record.nodes):
        return [*problems, f"graph has {len(nodes)} nodes, sidecar lists {len(record.nodes)}"]
    chains = {m.path: m.class_chain for m in record.modules}
    for i, (node, entry) in enumerate(zip(nodes, record.nodes, strict=True)):
        op_type = node.op_type.rpartition(".")[2]  # the skeleton names the domain too
        if (node.name, op_type) != (entry.name, entry.op_type):
            problems.append(f"node {i}: graph has {op_type} {node.name!r}, "
                            f"sidecar {entry.op_type} {entry.name!r}")
            continue
        if entry.module is not None and entry.module not in chains:
            problems.append(f"node {i} {node.name!r}: module {entry.module!r} is not among "
                            "the sidecar's modules")
            continue
        tags = {key: value for key, value in node.props.items()
                if key.startswith("modelexport.")}
        expected = expected_tags(entry, chains, record.export.clean)
        if tags != expected:
            problems.append(f"node {i} {node.name!r}: ONNX tags {tags}, sidecar says {expected}")
    return problems
