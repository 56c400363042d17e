"""Whether an export computes what its model computes: the ONNX checker, and onnxruntime
against PyTorch on the same inputs."""
