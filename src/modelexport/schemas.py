"""Our JSON Schemas (``schemas/``): loading them and listing how a document breaks one.

No torch. jsonschema, which lists every error with its path, is imported only when a
document fails (or a manifest is read): importing it costs about 50 ms, a third of a
``modelexport diff``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from importlib import resources
from typing import TYPE_CHECKING, Any

import fastjsonschema

if TYPE_CHECKING:
    import jsonschema

HIERARCHY = "hierarchy.schema.json"
MANIFEST = "manifest.schema.json"
RESULTS = "results.schema.json"
RESULT_RECORD = "results.schema.json#model"  # one model's record, as a worker writes it
REPORT = "report.schema.json"
# Other tools' formats the reports are also written in, vendored or written from their docs.
BMF = "bmf.schema.json"
BENCHMARK_ACTION = "benchmark-action.schema.json"


def load_schema(name: str) -> dict[str, Any]:
    """A schema by file name; ``FILE#DEF`` is the definition DEF of that file's ``$defs``."""
    file, _, definition = name.partition("#")
    text = resources.files("modelexport").joinpath("schemas").joinpath(file).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    if definition:
        return {"$schema": schema["$schema"], "$defs": schema["$defs"],
                "$ref": f"#/$defs/{definition}"}
    return schema


@functools.cache
def validator_for(schema_name: str) -> jsonschema.Draft202012Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema(schema_name))


@functools.cache
def _compiled(schema_name: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(load_schema(schema_name))


def precompile(*schema_names: str) -> None:
    """Compile these schemas' checks now: a process that forks workers does it once for
    all of them (the sidecar's takes a worker 41-44 ms)."""
    for name in schema_names:
        _compiled(name)


def schema_errors(document: Any, schema_name: str) -> list[str]:
    """Every way ``document`` breaks the schema, as 'where: what' lines.

    Every export validates its sidecar, so the common case must be cheap: fastjsonschema's
    compiled check is an order of magnitude faster than jsonschema (docs/performance.md,
    "Measured choices"). jsonschema, which lists every error with its path, runs only when
    that check fails.
    """
    try:
        _compiled(schema_name)(document)
        return []
    except fastjsonschema.JsonSchemaException as fast:
        first = f"(top level): {getattr(fast, 'message', fast)}"
    except RecursionError:
        return ["(top level): nested too deeply"]
    validator = validator_for(schema_name)
    try:
        errors = sorted(map(narrowest, validator.iter_errors(document)),
                        key=lambda e: list(e.absolute_path))
    except RecursionError:
        return [first]
    return [f"{json_path(e.absolute_path)}: {message(e)}" for e in errors] or [first]


def narrowest(error: Any) -> Any:
    """For a oneOf/anyOf failure, the branch's error that came closest: where the value
    went wrong, not "<the whole value> is not valid under any of the given schemas"."""
    from jsonschema.exceptions import best_match

    while error.context:
        # A branch that only says "not this type" or "not this constant" at the value
        # itself is one the value never meant (``inference: {runz: 5}`` is no ``false``).
        meant = [e for e in error.context if not (
            e.validator in ("const", "type") and e.absolute_path == error.absolute_path)]
        error = best_match(meant or error.context)
    return error


def message(error: Any, limit: int = 300) -> str:
    """An error's message, bounded: it quotes the offending value, which may be large, and
    then says what is wrong with it, so both ends are kept."""
    text: str = error.message
    half = (limit - 5) // 2
    return text if len(text) <= limit else f"{text[:half]} ... {text[-half:]}"


def json_path(path: Iterable[Any]) -> str:
    """``("models", 2, "source")`` -> ``models[2].source``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"
