"""Where a model comes from: the hub (pinned revision), a local directory, a config, or a
factory function of the user's own code (``pkg.module:build``).

``Source`` is plain data (it goes into the sidecar and the manifest); ``load`` turns it into
an ``nn.Module``. torch and transformers are imported only inside ``load``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import logging
import os
import re
import socket
import sys
import time
import urllib.parse
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from modelexport import kvcache
from modelexport.errors import ExportFailed, MissingExtraError, UsageError, describe, first_line

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SourceKind = Literal["hub", "local", "config", "factory"]

_FACTORY = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")
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
    factory: str | None = None  # "pkg.module:function"
    kwargs: dict[str, Any] = field(default_factory=dict)  # the factory's arguments
    python_path: tuple[str, ...] = ()  # folders the factory's imports resolve from
    task: str | None = None  # kvcache.TASK: called with its KV cache; None: its own forward

    @property
    def label(self) -> str:
        """How errors name this model."""
        if self.kind == "hub":
            return f"{self.id}@{self.revision}" if self.revision else str(self.id)
        if self.kind == "local":
            return str(self.path)
        if self.kind == "factory":
            return str(self.factory)
        return f"{self.model_type} (config)"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Source:
        return cls(**{**data, "python_path": tuple(data.get("python_path", ()))})

    def to_json(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if v not in (None, {}, ())}
        return {**data, "python_path": list(self.python_path)} if self.python_path else data


@dataclass
class LoadedModel:
    model: torch.nn.Module
    config: Any
    download_s: float
    examples: dict[str, torch.Tensor] | None = None  # inputs a factory gave with its model


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
    model_class: str | None,
    trust_remote_code: bool,
    factory: str | None = None,
    python_path: tuple[str, ...] = (),
    task: str | None = None,
) -> Source:
    """Build a Source from ``export`` arguments: MODEL is a directory or a hub id;
    ``--config`` gives a config's overrides or a factory's keyword arguments."""
    common = Source("local", seed=seed, model_class=model_class or class_for(task),
                    trust_remote_code=trust_remote_code, task=task)
    if sum(map(bool, (model, model_type, factory))) > 1:
        raise UsageError("give one of MODEL, --model-type or --factory")
    if model_type:
        return replace(common, kind="config", model_type=model_type,
                       config=parse_overrides(config))
    if factory:
        if not _FACTORY.match(factory):
            raise UsageError(f"--factory {factory!r}: expected pkg.module:function")
        return replace(common, kind="factory", factory=factory, kwargs=parse_overrides(config),
                       python_path=tuple(str(Path(p).absolute())
                                         for p in python_path or (".",)))
    if not model:
        raise UsageError("give a MODEL (hub id or directory), --model-type or --factory")
    if config:
        raise UsageError("--config goes with --model-type or --factory")
    if Path(model).is_dir():
        return replace(common, path=model)
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise UsageError(f"{model}: no such directory")
    return replace(common, kind="hub", id=model, revision=revision)


def class_for(task: str | None) -> str:
    """The transformers Auto class a task loads when none is named."""
    return "AutoModelForCausalLM" if task == kvcache.TASK else Source.model_class


def load(source: Source) -> LoadedModel:
    """Instantiate the model in eval mode, called as its task deploys it. Hub downloads are
    timed apart from the load."""
    loaded = _load(source)
    if source.task == kvcache.TASK:
        kvcache.attach(loaded.model, source.label)
    return loaded


def _load(source: Source) -> LoadedModel:
    try:
        import torch
    except ImportError as exc:
        raise MissingExtraError(exc.name or "torch") from exc
    if source.kind == "factory":  # a plain module: transformers costs 0.4-2 s to import
        torch.manual_seed(source.seed)
        model, examples = _from_factory(source)
        model.eval()
        return LoadedModel(model=model, config=None, download_s=0.0, examples=examples)
    try:
        import transformers
    except ImportError as exc:
        raise MissingExtraError(exc.name or "transformers") from exc

    auto_class = getattr(transformers, source.model_class, None)
    if auto_class is None or not hasattr(auto_class, "from_pretrained"):
        raise UsageError(f"{source.label}: unknown model class {source.model_class!r}")

    download_s = 0.0
    if source.kind == "config":
        config = _config_from_type(source)
        torch.manual_seed(source.seed)
        try:
            model = auto_class.from_config(config, trust_remote_code=source.trust_remote_code)
        except (ValueError, TypeError, KeyError) as exc:  # the config does not build a model
            raise UsageError(f"{source.label}: {describe(exc)}") from exc
    else:
        if source.kind == "hub":
            started = time.perf_counter()
            directory = download(source)
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


def _from_factory(source: Source) -> tuple[torch.nn.Module, dict[str, torch.Tensor] | None]:
    """Call the user's ``pkg.module:function(**kwargs)``: an ``nn.Module``, or one with a
    dict of example inputs. Its imports resolve from ``python_path`` first."""
    import torch

    module_name, _, function = str(source.factory).partition(":")
    sys.path[:0] = [p for p in source.python_path if p not in sys.path]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        where = ", ".join(source.python_path) or "the installed packages"
        missing = exc.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise UsageError(f"{source.label}: no module {missing!r} in {where}") from exc
        raise ExportFailed(f"{source.label}: importing {module_name}: {describe(exc)}") from exc
    except Exception as exc:  # the user's module raised while being imported
        raise ExportFailed(f"{source.label}: importing {module_name}: {describe(exc)}") from exc
    build = getattr(module, function, None)
    if not callable(build):
        raise UsageError(f"{source.label}: {module_name} has no function {function!r}")
    try:
        built = build(**source.kwargs)
    except Exception as exc:  # the user's function raised
        raise ExportFailed(f"{source.label}: {function}() raised {describe(exc)}") from exc
    examples = None
    if isinstance(built, tuple) and len(built) == 2 and isinstance(built[1], dict):
        built, examples = built
        if not all(isinstance(v, torch.Tensor) for v in examples.values()):
            raise ExportFailed(f"{source.label}: {function}() returned example inputs that "
                               "are not all tensors")
    if not isinstance(built, torch.nn.Module):
        raise ExportFailed(f"{source.label}: {function}() returned {type(built).__name__}, "
                           "not an nn.Module (or an nn.Module and a dict of example inputs)")
    return built, examples


def _hub_resolves() -> bool:
    """Whether the hub's host name resolves. Where it does not (no network), the hub client
    retries for tens of seconds before it looks in its cache; the cache is all there is."""
    host = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.getaddrinfo(host.hostname or "huggingface.co", host.port or 443)
    except OSError:
        return False
    return True


def _config_from_type(source: Source) -> Any:
    from transformers import AutoConfig

    try:
        config = AutoConfig.for_model(str(source.model_type), **source.config)
    except ValueError as exc:
        raise UsageError(f"unknown model type {source.model_type!r}") from exc
    # A config takes any keyword and keeps what it does not know as an attribute of that
    # name: a typo (hidden_sizee) would export a model of the default size. A key the
    # class declares, or one it takes up under another name (attn_implementation), is known.
    default = type(config)()
    declared = {*default.to_dict(), *inspect.signature(type(config).__init__).parameters}
    typos = [key for key in source.config if key not in declared
             and key in vars(config) and key not in vars(default)]
    if typos:
        close = difflib.get_close_matches(typos[0], sorted(declared), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(f"{source.label}: {type(config).__name__} has no {typos[0]!r}{hint}")
    return config


def download(source: Source, token: str | None = None) -> str:
    """The hub model's files in the local cache (fetched if need be); their folder.
    ``token``: the hub token, where it was taken out of the environment."""
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
            str(source.id), revision=source.revision, ignore_patterns=_HUB_IGNORE,
            local_files_only=not _hub_resolves(), token=token,
        )
    except LocalEntryNotFoundError as exc:
        raise ExportFailed(
            f"{source.label}: not in the local hub cache and the hub cannot be reached "
            "(offline, or HF_HUB_OFFLINE=1)"
        ) from exc
    except GatedRepoError as exc:
        raise ExportFailed(f"{source.label}: gated model; set HF_TOKEN") from exc
    except RevisionNotFoundError as exc:  # names that do not resolve: usage errors
        raise UsageError(f"{source.label}: no such revision") from exc
    except RepositoryNotFoundError as exc:
        raise UsageError(f"{source.label}: no such model on the hub (or no access)") from exc
