"""Export PyTorch / Hugging Face models to ONNX with their module hierarchy preserved."""

__version__ = "0.1.0"
