"""``modelexport export``: one model to ONNX with its hierarchy sidecar."""

from __future__ import annotations

import argparse

from modelexport import inputs, sources
from modelexport.cli import quiet_libraries
from modelexport.errors import MissingExtraError, UsageError
from modelexport.htp.options import ExportOptions


def run(args: argparse.Namespace) -> int:
    source = sources.from_cli(
        args.model, model_type=args.model_type, config=args.config, revision=args.revision,
        seed=args.seed, model_class=args.model_class, trust_remote_code=args.trust_remote_code,
        factory=args.factory, python_path=tuple(args.python_path),
    )
    specs = tuple(inputs.parse_spec(text) for text in args.input)
    if args.static and args.dynamic:
        raise UsageError("give --dynamic or --static, not both")
    dynamic = {} if args.static else dict(map(inputs.parse_axes, args.dynamic)) or None
    try:
        from modelexport.htp.export import export
    except ImportError as exc:
        raise MissingExtraError(exc.name or "torch") from exc
    if not args.debug:
        quiet_libraries()
    options = ExportOptions(
        exporter=args.exporter, opset=args.opset, clean=args.clean, validate=args.validate,
        tolerance=args.tolerance, inputs=specs, use_cache=args.use_cache, seed=args.seed,
        external_data=args.external_data, dynamic=dynamic,
    )
    result = export(source, args.output, options)
    stats, info = result.statistics, result.sidecar.export
    share = 100 * stats.unattributed / max(stats.nodes, 1)
    print(
        f"{result.onnx_path}: {stats.nodes} nodes, {stats.exact} exact, "
        f"{stats.inferred} inferred, {stats.unattributed} unattributed ({share:.1f} %); "
        f"{info.exporter} opset {info.opset}, {sum(result.sidecar.timings.values()):.2f} s"
    )
    parity = result.sidecar.validation.parity
    if parity is not None:
        print(f"validated: onnx.checker ok, onnxruntime max abs diff {parity.max_abs_diff:.2g}")
    print(f"sidecar: {result.sidecar_path}")
    return 0
