"""A worker process as the runner sees it: started in a folder of its own as the sandbox's
user, asked for one step at a time, held to its deadline, and read when it ends. Whatever it
does (crash, hang, flood its log, answer nonsense) ends in a record, never in an exception
of the runner's.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelexport import files
from modelexport.gate import sandbox
from modelexport.gate.spawn import ForkServer

POLL_S = 0.5
HEARTBEAT_S = 10.0  # progress is said when the stage changes, and this often while it does not
STAGE_LIMIT = 4096  # bytes of the worker's stage line
LOG_TAIL = 4096  # bytes read from the end of a worker's log, for its last line
ANSWER_LIMIT = 256  # bytes of one answer to a command: "ready", "done"


class Child:
    """One worker process: ``python -m MODULE JOB RESULT STAGE PARENT_PID REPLY_FD`` as the
    fork server makes it, in ``cwd`` (None: this process's), where the model's code may
    read files by relative paths."""

    def __init__(self, module: str, job: dict[str, Any], own: Path, log: Path,
                 environ: dict[str, str], server: ForkServer, deadline: float,
                 timeout: float, on_stage: Callable[[str], None], cwd: Path | None = None
                 ) -> None:
        sandbox.hand_over(own, server.user)
        self.result, self.stage_file, self.log = own / "result.json", own / "stage", log
        (own / "job.json").write_text(json.dumps(job))
        self.deadline, self.timeout, self.on_stage = deadline, timeout, on_stage
        self.failure: str | None = None  # why it ended without a result, once it did
        self.stage, self._said, self._said_at = "starting", "", -HEARTBEAT_S
        answers, replies = os.pipe()
        try:
            self.proc = server.spawn(
                module, [str(own / "job.json"), str(self.result), str(self.stage_file)],
                cwd, environ, log, replies, deadline)
        except BaseException:
            os.close(answers)
            raise
        finally:
            os.close(replies)
        self.answers = answers

    @property
    def running(self) -> bool:
        return self.failure is None and self.proc.poll() is None

    def ask(self, command: str | None) -> bool:
        """Send ``command`` (None: none, wait for what it says unasked) and wait for its
        one-line answer; False where it ended or timed out instead (``end`` says why)."""
        if not self.running:
            return False
        if command is not None and not self._send(command):
            return False
        heard = b""
        while True:
            left = self.deadline - time.monotonic()
            if left <= 0:
                return self._give_up(f"timed out after {self.timeout:g} s")
            self._watch()
            ready, _, _ = select.select([self.answers], [], [], min(POLL_S, left))
            if not ready:
                continue
            chunk = os.read(self.answers, ANSWER_LIMIT)
            if not chunk:  # it closed its end: it exited, or its code closed the pipe
                return False
            heard += chunk
            if b"\n" in heard:
                return True
            if len(heard) > ANSWER_LIMIT:
                return self._give_up("its answers to the runner are not answers")

    def end(self, command: str | None = None) -> str | None:
        """Send ``command`` (the last), then wait for the process to exit: the text of its
        result, or None (``failure`` says why)."""
        if self.running and command is not None:
            self._send(command)
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        while self.failure is None and self.proc.poll() is None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                self._give_up(f"timed out after {self.timeout:g} s")
                break
            self._watch()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=min(POLL_S, left))
        os.close(self.answers)
        if self.failure is not None:
            return None
        text = sandbox.read_written(self.result)
        if text is None:
            self.failure = self._why_no_result()
        return text

    def kill(self) -> None:
        self.proc.kill()

    def _send(self, command: str) -> bool:
        try:
            self.proc.stdin.write(command.encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:  # it exited, or its code closed its input
            return False
        return True

    def _give_up(self, why: str) -> bool:
        self.kill()
        self.failure = why
        return False

    def _watch(self) -> None:
        """Say its stage when it changes, and every HEARTBEAT_S while it does not. The
        worker rewrites its stage file in place, so a read can catch it empty: the last
        stage seen is kept rather than flicker back to "starting"."""
        self.stage = (sandbox.read_written(self.stage_file, STAGE_LIMIT) or "").strip() \
            or self.stage
        now = time.monotonic()
        if self.stage != self._said or now - self._said_at >= HEARTBEAT_S:
            self.on_stage(self.stage)
            self._said, self._said_at = self.stage, now

    def _why_no_result(self) -> str:
        if self.result.exists() or self.result.is_symlink():
            return f"its result is not a regular file of at most {sandbox.RESULT_LIMIT:,} bytes"
        code = self.proc.wait()  # it has ended
        if self.proc.lost:
            return "its process ended with the one it was started from (the fork server; " \
                "a model's code may have killed it)"
        if code < 0:
            name = signal.Signals(-code).name
            return f"killed by {name}{' (out of memory?)' if name == 'SIGKILL' else ''}"
        # The model's code writes to the log: it may have written gigabytes.
        last = files.tail(self.log, LOG_TAIL).decode(errors="replace").strip().splitlines()[-1:]
        return f"exited with code {code}: {(last or [''])[0][:300]}"
