"""Where inference time goes: an export run in ONNX Runtime with its profiler, every kernel
attributed to a module through the tags (``session`` runs it; the rest is pure)."""
