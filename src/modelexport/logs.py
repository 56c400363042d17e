"""What reaches the terminal from the libraries we call: our own lines only, unless
``--debug`` asks for everything (their warnings, logs and progress bars)."""

from __future__ import annotations

import logging
import os
import warnings

# The export stack's loggers, by name (torch.onnx logs under its own).
LOGGERS = ("torch", "torch.onnx", "transformers", "onnxscript", "onnx_ir", "huggingface_hub")


def setup(debug: bool) -> None:
    """At the start of a command. Without ``debug``, exporter chatter (TracerWarnings,
    deprecations, torchvision notes, progress bars) is not shown: it is not ours."""
    logging.basicConfig(format="modelexport: %(levelname)s: %(message)s",
                        level=logging.DEBUG if debug else logging.WARNING)
    if debug:
        return
    warnings.filterwarnings("ignore")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_HUB_VERBOSITY", "error")  # read on its import, not later
    quiet()


def quiet() -> None:
    """Only errors from the export stack's loggers. Again after torch is imported: its
    logging setup resets the level of its loggers."""
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
