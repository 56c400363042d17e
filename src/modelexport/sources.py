"""Where a model comes from: the hub (pinned revision), a local directory, or a config.

``Source`` is plain data (it goes into the sidecar and, later, the manifest); ``load`` turns
it into an ``nn.Module``. torch and transformers are imported only inside ``load``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelexport.errors import ExportFailed, MissingExtraError, UsageError, first_line

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SourceKind = Literal["hub", "local", "config"]

# Framework files a PyTorch load never reads; skipping them keeps hub downloads small.
_HUB_IGNORE = ["*.h5", "*.msgpack", "*.ot", "*.tflite", "*.onnx", "onnx/*", "openvino/*", "*.gguf"]


@dataclass(frozen=True)
class Source:
    kind: SourceKind
    id: str | None = None
    revision: str | None = None
    path: str | None = None
    model_type: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    model_class: str = "AutoModel"
    trust_remote_code: bool = False

    @property
    def label(self) -> str:
        """How errors name this model."""
        if self.kind == "hub":
            return f"{self.id}@{self.revision}" if self.revision else str(self.id)
        if self.kind == "local":
            return str(self.path)
        return f"{self.model_type} (config)"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Source:
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {})}


@dataclass
class LoadedModel:
    model: torch.nn.Module
    config: Any
    download_s: float


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["hidden_size=128,num_hidden_layers=2", "hidden_sizes=[16,32]"]`` -> dict.

    Values are YAML scalars or flow sequences, so ``[16, 32]``, ``true`` and ``1e-5`` work.
    """
    import yaml  # here, not at the top: the commands that read no --config skip its import

    out: dict[str, Any] = {}
    for item in items:
        for pair in _split_top_level(item):
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--config expects key=value, got {pair!r}")
            try:
                out[key.strip()] = yaml.safe_load(value)
            except yaml.YAMLError as exc:
                raise UsageError(f"--config {key.strip()}: cannot parse {value!r}") from exc
    return out


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def from_cli(
    model: str | None,
    *,
    model_type: str | None,
    config: list[str],
    revision: str | None,
    seed: int,
    model_class: str,
    trust_remote_code: bool,
) -> Source:
    """Build a Source from ``export`` arguments: MODEL is a directory or a hub id."""
    common = {"seed": seed, "model_class": model_class, "trust_remote_code": trust_remote_code}
    if model_type:
        if model:
            raise UsageError("give either MODEL or --model-type, not both")
        return Source("config", model_type=model_type, config=parse_overrides(config), **common)
    if not model:
        raise UsageError("give a MODEL (hub id or directory) or --model-type")
    if config:
        raise UsageError("--config goes with --model-type")
    if Path(model).is_dir():
        return Source("local", path=model, **common)
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise UsageError(f"{model}: no such directory")
    return Source("hub", id=model, revision=revision, **common)


def load(source: Source) -> LoadedModel:
    """Instantiate the model in eval mode. Hub downloads are timed apart from the load."""
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise MissingExtraError(exc.name or "torch") from exc

    auto_class = getattr(transformers, source.model_class, None)
    if auto_class is None or not hasattr(auto_class, "from_pretrained"):
        raise UsageError(f"{source.label}: unknown model class {source.model_class!r}")

    download_s = 0.0
    if source.kind == "config":
        config = _config_from_type(source)
        torch.manual_seed(source.seed)
        model = auto_class.from_config(config, trust_remote_code=source.trust_remote_code)
    else:
        if source.kind == "hub":
            started = time.perf_counter()
            directory = _download(source)
            download_s = time.perf_counter() - started
        else:
            directory = str(source.path)
        try:
            model = auto_class.from_pretrained(
                directory, trust_remote_code=source.trust_remote_code
            )
        except (OSError, ValueError) as exc:
            if "trust_remote_code" in str(exc) and not source.trust_remote_code:
                raise ExportFailed(
                    f"{source.label}: the model ships its own Python code, which runs only "
                    "with trust_remote_code (manifest) or --trust-remote-code (CLI)"
                ) from exc
            raise ExportFailed(
                f"{source.label}: cannot load: {first_line(exc) or type(exc).__name__}"
            ) from exc
        config = model.config
    model.eval()
    return LoadedModel(model=model, config=config, download_s=download_s)


def _config_from_type(source: Source) -> Any:
    from transformers import AutoConfig

    try:
        config = AutoConfig.for_model(str(source.model_type), **source.config)
    except ValueError as exc:
        raise UsageError(f"unknown model type {source.model_type!r}") from exc
    known = set(type(config)().to_dict())
    unknown = sorted(set(source.config) - known)
    if unknown:
        log.warning("%s: config keys not known to %s: %s", source.label,
                    type(config).__name__, ", ".join(unknown))
    return config


def _download(source: Source) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if not source.revision:
        log.warning("%s: no --revision given; pin a commit sha for reproducible exports",
                    source.id)
    try:
        return snapshot_download(
            str(source.id), revision=source.revision, ignore_patterns=_HUB_IGNORE
        )
    except LocalEntryNotFoundError as exc:
        raise ExportFailed(
            f"{source.label}: not in the local hub cache and the hub cannot be reached "
            "(offline, or HF_HUB_OFFLINE=1)"
        ) from exc
    except GatedRepoError as exc:
        raise ExportFailed(f"{source.label}: gated model; set HF_TOKEN") from exc
    except RevisionNotFoundError as exc:
        raise ExportFailed(f"{source.label}: no such revision") from exc
    except RepositoryNotFoundError as exc:
        raise ExportFailed(f"{source.label}: no such model on the hub (or no access)") from exc

