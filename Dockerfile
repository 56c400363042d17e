# The GitHub Action's image: CPU-only torch, the export stack, modelexport.
# Layers go from slowest-changing to fastest, so a code change reinstalls neither torch
# nor the export stack.
# The Python patch release is part of the environment fingerprint: a floating tag would make
# the committed baseline not comparable whenever the image is rebuilt.
FROM python:3.12.11-slim-bookworm

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/github/workspace/.cache/huggingface
# HF_HOME: the runner mounts the workspace at /github/workspace; a hub cache there is one
# that actions/cache can keep between runs (path: .cache/huggingface).

# git: the pull request's base is checked out beside the head (compare-with: auto or base).
# Not pinned: Debian's security updates replace the exact version, and git is no part of
# the fingerprint (it measures nothing).
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

# The CPU wheel index: PyPI's Linux torch is the multi-GB CUDA build. The exact version,
# local label included, is what the fingerprint records.
RUN pip install --index-url https://download.pytorch.org/whl/cpu --no-deps torch==2.13.0+cpu

# The rest of the export stack and torch's own requirements, every version pinned and every
# file's hash checked (.ci/lock writes the file): rebuilding the image cannot change a library
# version the fingerprint records, so the committed baseline stays comparable.
WORKDIR /opt/modelexport
COPY requirements-action.txt ./
RUN pip install --require-hashes -r requirements-action.txt

# The code; only this layer changes with it.
COPY src/ src/
COPY pyproject.toml README.md ./
RUN pip install --no-deps . && pip check && modelexport --version

COPY entrypoint.sh /entrypoint.sh
ENTRYPOINT ["/entrypoint.sh"]
