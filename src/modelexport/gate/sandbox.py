"""What a model's own code can reach. It runs in a worker process (a pull request's factory,
a hub model's remote code), and from there no secret may be readable:

- the worker's environment holds none (``worker_environment``);
- the runner, which holds the tokens it needs, takes them out of its environment and is not
  dumpable (``seal``): no other process of its user may read its memory or
  ``/proc/<pid>/environ``, which shows the environment a process started with whatever it
  changed since;
- run as root (a container action), the worker is started as an unprivileged user
  (``account``): root's processes, the entrypoint's shell among them, and the runner are then
  another user's, whose environment and memory it cannot read. Root could read them all,
  dumpable or not.

Linux only, like the rest of the gate's process handling; elsewhere ``seal`` only takes the
secrets out of the environment.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import re
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelexport import files
from modelexport.errors import UsageError

# Environment variables that are secrets: tokens of GitHub, the hub, the runner, and the
# action's inputs (the tokens come in as INPUT_GITHUB-TOKEN, INPUT_HF-TOKEN).
SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|CREDENTIAL|^INPUT_|^ACTIONS_", re.IGNORECASE)
WORKER_USER = "nobody"
# ONNX Runtime (1.32) starts a thread when imported that sends usage events to
# mobile.events.data.microsoft.com (seen under strace looking that host up 9 s after the
# import, then every 5-9 s), unless it sees CI, GITHUB_ACTIONS or TF_BUILD set. This
# variable keeps the thread from starting anywhere; ``disable_telemetry_events()`` does
# not (the thread runs on, the lookups too).
TELEMETRY_OFF = {"ORT_DISABLE_TELEMETRY": "1"}
_PR_SET_DUMPABLE, _PR_SET_PDEATHSIG = 4, 1  # from <linux/prctl.h>
RESULT_LIMIT = 64 << 20  # bytes of a result the runner reads (a 2,000-module model: ~1 MB)


def seal() -> dict[str, str]:
    """Take the secrets out of this process's environment and return them, and make this
    process undumpable: they are then in this process's memory only, where they are used."""
    secrets = {name: value for name, value in os.environ.items() if SECRET.search(name)}
    for name in secrets:
        del os.environ[name]
    set_dumpable(False)
    return secrets


def set_dumpable(dumpable: bool) -> None:
    """Whether other processes of this user may read this one's memory and environment,
    or trace it (Linux; elsewhere, nothing)."""
    with contextlib.suppress(OSError, AttributeError):  # no prctl: not Linux
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, int(dumpable), 0, 0, 0)


def die_with_parent(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux), so a runner killed
    with SIGKILL leaves no worker running on; where that is not available, nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request was made
        os._exit(1)


@dataclass(frozen=True)
class Account:
    """The unprivileged user a worker runs as."""

    name: str
    uid: int
    gid: int


def account() -> Account | None:
    """Who workers run as: ``nobody`` where this process is root, else this process's own
    user (None)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(WORKER_USER)
    except KeyError:
        return Account(WORKER_USER, 65534, 65534)
    return Account(WORKER_USER, entry.pw_uid, entry.pw_gid)


_PROBE = """
import os, sys
import modelexport.gate.worker
print("\\n".join(p for p in sys.argv[1:] if not os.access(p, os.R_OK | os.X_OK)))
"""


def cannot_run(user: Account, why: str) -> UsageError:
    """The error where ``user`` cannot run this Python and this package."""
    return UsageError(f"model code runs as the unprivileged user {user.name!r}, not as root, "
                      f"and {user.name!r} cannot run {sys.executable} with modelexport "
                      f"({why[:200]}): install Python and the environment where every user "
                      "may read them, or run as a user other than root")


def check_usable(user: Account, folders: list[str]) -> None:
    """UsageError, before any model runs, where ``user`` cannot run this Python and this
    package (an interpreter under root's home, say), or cannot read ``folders`` (where the
    models' own code and files are)."""
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE, *folders],
                              user=user.uid, group=user.gid, extra_groups=[], cwd="/",
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              env=worker_environment(os.environ, Path("/"), False),
                              check=False)
        failed = proc.returncode != 0
        why = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
    except OSError as exc:  # the switch itself refused: a user namespace without that user
        failed, why = True, f"cannot become {user.name}: {exc.strerror or exc}"
    if failed:
        raise cannot_run(user, why)
    unreadable = proc.stdout.split()
    if unreadable:
        raise UsageError(f"model code runs as the unprivileged user {user.name!r}, not as "
                         f"root, and {user.name!r} cannot read {unreadable[0]}, where a "
                         "model's code or files are: let every user read it (a CI job's "
                         "checkout is so), or run as a user other than root")


def hand_over(folder: Path, user: Account | None) -> None:
    """Make ``folder`` the worker's own: where it writes its exports, stage and result."""
    folder.mkdir(mode=0o700)
    if user is not None:
        os.chown(folder, user.uid, user.gid)


def worker_environment(environ: Mapping[str, str], home: Path, offline: bool
                       ) -> dict[str, str]:
    """This environment without its secrets, for a worker runs the model's own code; its
    home and temporary files in its own folder; ONNX Runtime's telemetry off. ``offline``:
    the model's files were fetched by the runner, with the hub token."""
    kept = {k: v for k, v in environ.items() if not SECRET.search(k)}
    own = {"HOME": str(home), "TMPDIR": str(home),
           # Remote code is copied there before it is imported.
           "HF_MODULES_CACHE": str(home / "hf-modules")}
    return {**kept, **own, **TELEMETRY_OFF, **({"HF_HUB_OFFLINE": "1"} if offline else {})}


def persisted_credentials(workspace: Path) -> bool:
    """Whether actions/checkout left its token in the checkout's git configuration (its
    default, ``persist-credentials: true``): a file model code may read."""
    config = workspace / ".git" / "config"
    try:
        text = config.read_text("utf-8", errors="replace") if config.is_file() else ""
    except OSError:
        return False
    return "extraheader" in text.lower() and "authorization:" in text.lower()


def read_written(path: Path, limit: int = RESULT_LIMIT) -> str | None:
    """A file the worker wrote (its result, its stage), read only if it is a regular file
    of at most ``limit`` bytes: the worker owns its folder, and a link there to a file only
    the runner may read (``/proc/<runner>/environ``) must not be read by the runner. None
    where it is not there or not such a file."""
    try:
        return files.read_bytes(path, limit, follow_links=False).decode("utf-8", "replace")
    except UsageError:
        return None
