"""The process every worker is forked from: it imports the export stack once, then forks
one worker per model and side, so a worker starts in milliseconds instead of the seconds
a fresh Python takes to import torch and the exporter.

    python -m modelexport.gate.forkserver PARENT_PID SOCKET_FD

It runs as the workers' user, with their environment (no secret ever reaches it), and dies
with the runner (PARENT_PID). Each message the runner sends on SOCKET (a SEQPACKET socket:
one message, one request) is a JSON object ``{"module", "argv", "cwd", "environ"}`` (a
``cwd`` of null: the server's, which is the runner's) with
three file descriptors: the worker's stdin, its log (stdout and stderr) and its reply pipe.
The child becomes the worker ``python -m MODULE *argv PARENT_PID REPLY_FD`` would have been,
and the server answers ``{"pid": N}`` (or ``{"error": ...}``); when a worker ends,
``{"exited": N, "code": C}``, C as ``Popen.returncode`` has it.

Each worker keeps what a fresh process gave it: its own session (a timeout kills its
group), environment, working directory and file descriptors, nothing of another model
(the server never runs model code, so a fork carries none), and death with its parent. The
server is not dumpable, so a model's code, run as the same user, can neither read nor
change its memory, and through it the next model's worker; it can kill it, and the runner
then starts another.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import signal
import socket
import sys
import tempfile
import traceback
import warnings
from typing import Any, NoReturn

from modelexport import environment, schemas
from modelexport.gate.sandbox import die_with_parent, set_dumpable

# Imported once, here, for every worker. Not transformers or huggingface_hub: they read
# their cache folders and offline switch from the environment when imported, and each
# worker has its own. onnxruntime starts no thread when imported with its telemetry off,
# as it is in the workers' environment, which is this server's (a fork takes only the
# calling thread along). The TorchScript exporter imports its symbolic functions, a
# module per opset, in its first export: 80 ms of each worker's first (0.30 -> 0.22 s).
PRELOAD = ("torch", "onnx", "onnxscript", "torch.onnx._internal.exporter._core",
           *(f"torch.onnx._internal.torchscript_exporter.symbolic_opset{opset}"
             for opset in range(7, 21)),
           "onnxruntime", "modelexport.sources", "modelexport.htp.export",
           "modelexport.gate.worker", "modelexport.gate.alternate")
MESSAGE_LIMIT = 1 << 20  # bytes of one request: a job's environment is a few KB
FDS = 3  # stdin, log, reply
REPLY_FD = 3  # where a worker finds its reply pipe


def preload() -> None:
    """Import what every worker imports, and fill the caches each would fill in its first
    export: the sidecar's compiled schema and the libraries' versions (44 and 11 ms of a
    worker's, measured). What fails is left for the worker to do again, and to fail with
    its own words."""
    for name in PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    with contextlib.suppress(Exception):
        schemas.precompile(schemas.HIERARCHY)
        environment.library_versions()


def serve(channel: socket.socket) -> None:
    """Fork a worker per request until the runner closes ``channel``; say when each ends."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)  # a SIGCHLD wakes the select below
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _send(channel, {"ready": True})
    while True:
        ready, _, _ = select.select([channel.fileno(), wake_read], [], [])
        if wake_read in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_read, 512):
                    pass
        _reap(channel)
        if channel.fileno() in ready:
            message, fds, _, _ = socket.recv_fds(channel, MESSAGE_LIMIT, FDS)
            if not message:  # the runner is done, or gone
                return
            _send(channel, _fork(json.loads(message), fds))


def _fork(request: dict[str, Any], fds: list[int]) -> dict[str, Any]:
    try:
        if len(fds) != FDS:
            return {"error": f"{len(fds)} file descriptors, not {FDS}"}
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _become(request, fds)
        return {"pid": pid}
    except OSError as exc:  # no memory or process left for a fork
        return {"error": f"cannot fork: {exc.strerror or exc}"}
    finally:
        for fd in fds:
            os.close(fd)


def _become(request: dict[str, Any], fds: list[int]) -> NoReturn:
    """Turn this fork into the worker the request asks for; never returns."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        stdin, log, reply = fds
        for fd, to in ((stdin, 0), (log, 1), (log, 2), (reply, REPLY_FD)):
            os.dup2(fd, to)
        os.closerange(REPLY_FD + 1, os.sysconf("SC_OPEN_MAX"))
        if request["cwd"] is not None:  # else this server's: the runner's, entered as root
            os.chdir(request["cwd"])
            sys.path[0] = request["cwd"]  # as ``python -m`` run there would have it
        os.environ.clear()
        os.environ.update(request["environ"])
        tempfile.tempdir = None  # found again, from this worker's TMPDIR
        set_dumpable(True)  # as any process it starts would be
        module = importlib.import_module(request["module"])
        sys.argv = [str(module.__file__), *request["argv"], str(os.getppid()), str(REPLY_FD)]
        module.main(sys.argv[1:])  # each worker's main ends in os._exit
    except BaseException:  # said in its log, which the runner reads
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def _reap(channel: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(channel, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _send(channel: socket.socket, message: dict[str, Any]) -> None:
    channel.send(json.dumps(message).encode())


def main(argv: list[str]) -> NoReturn:
    die_with_parent(int(argv[0]))
    set_dumpable(False)
    # numpy's BLAS threads are the only others here, idle; OpenBLAS starts them again in a
    # fork. Python 3.12 warns of any thread at a fork.
    warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
    channel = socket.socket(fileno=int(argv[1]))
    preload()
    try:
        serve(channel)
    except (OSError, ValueError):  # the runner went away mid-message
        traceback.print_exc()
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
