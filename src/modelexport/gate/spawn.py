"""The runner's side of the fork server (``forkserver``): start it (``workers``), ask it
for a worker, learn when one ends. A worker is the server's child, not the runner's, so
the runner holds a ``Forked`` in place of a ``Popen``: its pid (its process group: it
leads a session of its own), its stdin, and its exit code as the server reports it.

Whatever happens to the server (killed by a model's code, stopped, never ready), a request
ends by the caller's deadline and the next one starts a new server.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from modelexport import files
from modelexport.errors import ModelExportError
from modelexport.gate import forkserver, sandbox

LOST = -signal.SIGKILL  # the exit code of a worker whose server ended: it died with it
STOP_S = 5.0  # how long a server is waited for: to end when told, to report a killed worker
LOG_TAIL = 4096


class Forked:
    """A worker the fork server started, as much of ``subprocess.Popen`` as ``Child``
    uses."""

    def __init__(self, server: ForkServer, pid: int, stdin: IO[bytes]) -> None:
        self.server, self.pid, self.stdin = server, pid, stdin
        self.returncode: int | None = None
        self.lost = False  # it ended with its server, before it was known to end

    def poll(self) -> int | None:
        if self.returncode is None:
            self.server.pump(0.0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
            self.server.pump(left)
        return self.returncode

    def kill(self) -> None:
        """Kill its process group and wait for it; a server that does not say it ended
        (stopped by a model's code) is killed too."""
        with contextlib.suppress(ProcessLookupError):  # it may have just exited
            os.killpg(self.pid, signal.SIGKILL)
        try:
            self.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.server.stop()


class ForkServer:
    """Starts workers as ``user`` (None: this process's user), from a server that runs in
    ``folder`` (its home, and its log beside it)."""

    def __init__(self, folder: Path, user: sandbox.Account | None) -> None:
        self.folder, self.user = folder, user
        self._proc: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None
        self._ready = False
        self._answer: dict[str, Any] | None = None
        self._running: dict[int, Forked] = {}

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        # Ended by an error (a base that is no tree, Ctrl-C): no wait for a server that may
        # still be importing, seconds away from reading that it should end.
        if error is None:
            self.close()
        else:
            self.stop()

    @property
    def log(self) -> Path:
        return self.folder.with_name(self.folder.name + ".log")

    def start(self) -> None:
        """Start the server, if none runs; it imports while the caller goes on."""
        if self._proc is not None:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            if not self.folder.is_dir():
                sandbox.hand_over(self.folder, self.user)
            with open(self.log, "ab") as output:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", forkserver.__name__, str(os.getpid()),
                     str(theirs.fileno())],
                    stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                    # No cwd: it starts in the runner's folder, entered before the switch
                    # to the workers' user, who may not be let into it (root's folder).
                    pass_fds=(theirs.fileno(),),
                    env=sandbox.worker_environment(os.environ, self.folder, False),
                    start_new_session=True,
                    user=self.user.uid if self.user else None,
                    group=self.user.gid if self.user else None,
                    extra_groups=[] if self.user else None,
                )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._channel, self._ready = ours, False

    def spawn(self, module: str, argv: list[str], cwd: Path | None, environ: dict[str, str],
              log: Path, replies: int, deadline: float) -> Forked:
        """A worker ``python -m module *argv PARENT_PID REPLY_FD`` as the server makes it:
        its output in ``log``, its answers on the pipe end ``replies``, in ``cwd`` (None:
        the runner's). ModelExportError where the server cannot start one by ``deadline``;
        the server is then stopped, and the next request starts another."""
        self.start()
        message = json.dumps({"module": module, "argv": argv,
                              "cwd": None if cwd is None else str(cwd),
                              "environ": environ}).encode()
        commands, stdin = os.pipe()
        try:
            with open(log, "wb") as output:
                while not self._ready:
                    self._pump_until(deadline)
                self._answer = None
                socket.send_fds(self._channel, [message],  # type: ignore[arg-type]
                                [commands, output.fileno(), replies])
                while self._answer is None:
                    self._pump_until(deadline)
        except (ModelExportError, OSError) as exc:
            os.close(stdin)
            self.stop()
            raise ModelExportError(f"no worker process: {self._why(exc)}") from exc
        finally:
            os.close(commands)
        if "pid" not in self._answer:
            os.close(stdin)
            raise ModelExportError(f"no worker process: {self._answer.get('error')}")
        forked = Forked(self, int(self._answer["pid"]), os.fdopen(stdin, "wb"))
        self._running[forked.pid] = forked
        return forked

    def pump(self, timeout: float | None) -> None:
        """Take in what the server says within ``timeout`` seconds (None: until it says
        something): a worker that ended, an answer, that it is ready, or that it ended."""
        if self._channel is None:
            self._lose_all()
            return
        ready, _, _ = select.select([self._channel], [], [], timeout)
        if not ready:
            return
        try:
            message = self._channel.recv(forkserver.MESSAGE_LIMIT)
        except OSError:
            message = b""
        try:
            said = json.loads(message)
            if "exited" in said:
                forked = self._running.pop(int(said["exited"]), None)
                if forked is not None:
                    forked.returncode = int(said["code"])
            elif "ready" in said:
                self._ready = True
            else:
                self._answer = dict(said)
        except (ValueError, TypeError, KeyError):  # not what a server says: it is gone
            message = b""
        if not message:
            self.stop()

    def stop(self) -> None:
        """End the server now; its workers die with it."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()
        self._forget()

    def close(self) -> None:
        """Tell the server to end (its workers have), and wait for it a little; one never
        heard ready (a run that started no worker) is stopped at once, not waited for
        while it imports."""
        if self._proc is not None and self._channel is not None and self._ready:
            self._channel.close()
            self._channel = None
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(STOP_S)
        self.stop()

    def _pump_until(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ModelExportError("it did not start in time")
        if self._channel is None:
            raise ModelExportError("its server ended")
        self.pump(left)

    def _forget(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._proc, self._channel, self._ready = None, None, False
        self._lose_all()

    def _lose_all(self) -> None:
        for forked in self._running.values():
            forked.returncode, forked.lost = LOST, True
        self._running.clear()

    def _why(self, exc: Exception) -> str:
        last = files.tail(self.log, LOG_TAIL).decode(errors="replace").strip().splitlines()
        return f"{exc}{f' ({last[-1][:300]})' if last else ''}"


@dataclass(frozen=True)
class Workers:
    """Where the models' workers run (a folder each below ``folder``), and the fork server
    that starts them, as ``user`` (None: this process's user)."""

    folder: Path
    server: ForkServer
    user: sandbox.Account | None


@contextlib.contextmanager
def workers() -> Iterator[Workers]:
    """Start the fork server now: its imports (2-3 s) then overlap whatever the caller does
    before the first model (reading the manifest, finding the base, reading the baseline),
    and one server serves every run inside (a confirmation's too)."""
    user = sandbox.account()
    with tempfile.TemporaryDirectory(prefix="modelexport-run-", ignore_cleanup_errors=True
                                     ) as tmp, ForkServer(Path(tmp) / "@fork-server", user
                                                          ) as server:
        os.chmod(tmp, 0o711)  # each worker reaches its own folder, lists none
        try:
            server.start()
        except OSError as exc:  # this Python, under root's home, say
            if user is None:
                raise
            raise sandbox.cannot_run(user, exc.strerror or str(exc)) from exc
        yield Workers(Path(tmp), server, user)
