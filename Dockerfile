# The GitHub Action's image: CPU-only torch, the export stack, modelexport.
# Layers go from slowest-changing to fastest, so a code change reinstalls neither torch
# nor the export stack.
FROM python:3.12-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/github/workspace/.cache/huggingface
# HF_HOME: the runner mounts the workspace at /github/workspace; a hub cache there is one
# that actions/cache can keep between runs (path: .cache/huggingface).

# The CPU wheel index: a plain `pip install torch` pulls the multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# The export stack, resolved from the package metadata alone (no code yet). Its version
# ranges live in pyproject.toml, the one place they are kept.
WORKDIR /opt/modelexport
COPY pyproject.toml README.md ./
COPY src/modelexport/__init__.py src/modelexport/__init__.py
# hadolint ignore=DL3013
RUN pip install ".[export]"

# The code; only this layer changes with it.
COPY src/ src/
RUN pip install --no-deps --force-reinstall . && modelexport --version

COPY entrypoint.sh /entrypoint.sh
ENTRYPOINT ["/entrypoint.sh"]
