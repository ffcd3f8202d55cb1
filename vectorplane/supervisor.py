"""A small foreground process supervisor, in the spirit of foreman/honcho.

    with Supervisor(names=["redis", "web"]) as sup:
        sup.start(ProcessSpec("redis", [...]))
        ...
        exit_code = sup.wait()

Every child runs in its own session (hence its own process group) with stdin from /dev/null and
stdout+stderr piped back to us; each line is re-printed as `name   | line` (the name coloured
when our stdout is a terminal and NO_COLOR is unset). Ctrl-C reaches only us, so the shutdown
is ours: on SIGINT/SIGTERM/SIGHUP, or as soon as any child exits, every child gets SIGTERM (its
process leader, which stops its own workers), then its whole process group SIGKILL after
`stop_timeout` seconds (at once on a second signal). Children
marked `stop_last` (the broker) are stopped only after the others.

Exit code of `wait()`: when a child exits on its own, that child's code (128+N if killed by
signal N), as honcho does; when stopped by a signal, 0 if every child stopped cleanly within the
timeout, else 1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import TextIO

SYSTEM_NAME = "system"
_HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Codes a child may legitimately exit with after we asked it to stop.
_CLEAN_STOP_CODES = frozenset(
    {0, -signal.SIGTERM, -signal.SIGINT, 128 + signal.SIGTERM, 128 + signal.SIGINT}
)
_COLORS = ("36", "33", "32", "35", "34", "91", "96", "93", "92", "95")
_POLL_SECONDS = 0.05


class SupervisorError(RuntimeError):
    """A child process could not be started."""


@dataclass(frozen=True)
class ProcessSpec:
    """One named command. `env` is added on top of the inherited environment.

    `stop_last`: a dependency of the others (a broker, a database): on shutdown it gets
    SIGTERM only once the other children have exited.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    stop_last: bool = False


def exit_status(returncode: int) -> int:
    """Shell-style status: a child killed by signal N becomes 128+N."""
    return returncode if returncode >= 0 else 128 - returncode


@dataclass
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    reader: threading.Thread


class Supervisor:
    def __init__(
        self,
        out: TextIO | None = None,
        *,
        stop_timeout: float = 10.0,
        color: bool | None = None,
        names: Iterable[str] = (),
    ) -> None:
        self._out = out if out is not None else sys.stdout
        self.stop_timeout = stop_timeout
        if color is None:
            color = "NO_COLOR" not in os.environ and _isatty(self._out)
        self._color = color
        self._width = len(SYSTEM_NAME)
        self._colors: dict[str, str] = {}
        self._next_color = 0
        for name in names:
            self._register(name)
        self._children: list[_Child] = []
        self._write_lock = threading.Lock()
        self._signal: int | None = None
        self._shutting_down = False
        self._shutdown_done = False
        self._killed_any = False
        self._previous_handlers: dict[int, object] = {}

    # -- context manager: signal handlers in, everything stopped out -----------------------

    def __enter__(self) -> Supervisor:
        if threading.current_thread() is threading.main_thread():
            for signum in _HANDLED_SIGNALS:
                self._previous_handlers[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.shutdown()
        finally:
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]
            self._previous_handlers.clear()

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._shutting_down:
            # Ctrl-C again while stopping: do not wait for the grace period.
            self._kill_all(signal.SIGKILL)
            self._killed_any = True
        self._signal = signum

    @property
    def stop_requested(self) -> bool:
        """True once SIGINT/SIGTERM/SIGHUP arrived."""
        return self._signal is not None

    # -- output ----------------------------------------------------------------------------

    def _register(self, name: str) -> None:
        """Widen the name column and pick a colour (caller holds the write lock)."""
        self._width = max(self._width, len(name))
        if name not in self._colors:
            if name == SYSTEM_NAME:
                self._colors[name] = "1"  # bold
            else:
                self._colors[name] = _COLORS[self._next_color % len(_COLORS)]
                self._next_color += 1

    def _prefix(self, name: str) -> str:
        self._register(name)
        label = f"{name:<{self._width}} | "
        if not self._color:
            return label
        return f"\033[{self._colors[name]}m{label}\033[0m"

    def _emit(self, name: str, line: str) -> None:
        with self._write_lock:
            text = self._prefix(name) + line + "\n"
            with contextlib.suppress(OSError, ValueError):
                self._out.write(text)
                self._out.flush()

    def log(self, message: str) -> None:
        """Print a line under the `system` name."""
        self._emit(SYSTEM_NAME, message)

    def _pump(self, name: str, stream: Iterable[bytes]) -> None:
        for raw in stream:
            self._emit(name, raw.decode("utf-8", "replace").rstrip("\r\n"))

    # -- processes -------------------------------------------------------------------------

    def start(self, spec: ProcessSpec) -> subprocess.Popen[bytes]:
        """Start a child now; it is supervised until `wait()` or `shutdown()`."""
        if self._shutting_down:
            raise SupervisorError(f"not starting {spec.name}: shutting down")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
        with self._write_lock:
            self._register(spec.name)  # widen the column before the first line is printed
        try:
            process = subprocess.Popen(  # noqa: S603 - argv list, no shell
                list(spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=spec.cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            self.log(f"failed to start {spec.name}: {exc}")
            raise SupervisorError(f"failed to start {spec.name}: {exc}") from exc
        stdout = process.stdout
        if stdout is None:  # pragma: no cover - stdout=PIPE always sets it
            raise SupervisorError(f"no output pipe for {spec.name}")
        reader = threading.Thread(
            target=self._pump_and_close,
            args=(spec.name, stdout),
            name=f"supervisor-{spec.name}",
            daemon=True,
        )
        reader.start()
        self._children.append(_Child(spec, process, reader))
        self.log(f"{spec.name} started (pid {process.pid})")
        return process

    def _pump_and_close(self, name: str, stream: Iterable[bytes]) -> None:
        try:
            self._pump(name, stream)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()

    def is_alive(self, name: str) -> bool:
        return any(
            child.spec.name == name and child.process.poll() is None for child in self._children
        )

    def run_once(self, spec: ProcessSpec) -> int:
        """Run a command to completion with prefixed output; returns its exit status.

        A stop request (Ctrl-C) while it runs terminates it and returns 128+signal.
        """
        process = self.start(spec)
        while process.poll() is None:
            if self._signal is not None:
                self._terminate([c for c in self._children if c.process is process])
                break
            time.sleep(_POLL_SECONDS)
        child = next(c for c in self._children if c.process is process)
        child.reader.join(timeout=5)
        self._children.remove(child)
        if self._signal is not None:
            return 128 + self._signal
        status = exit_status(process.wait())
        if status != 0:
            self.log(f"{spec.name} failed with exit status {status}")
        return status

    def wait(self) -> int:
        """Block until a signal arrives or any child exits, stop everything, return a status."""
        if not self._children:
            return 0
        exited: _Child | None = None
        while self._signal is None and exited is None:
            exited = next((c for c in self._children if c.process.poll() is not None), None)
            if exited is None:
                time.sleep(_POLL_SECONDS)
        if exited is not None:
            status = exit_status(exited.process.wait())
            self.log(f"{exited.spec.name} exited with status {status}; stopping everything")
            self.shutdown()
            return status
        self.log(f"received {_signal_name(self._signal)}; stopping everything")
        clean = self.shutdown()
        return 0 if clean else 1

    def shutdown(self) -> bool:
        """SIGTERM every child, SIGKILL its group after the grace period; idempotent.

        Returns True if every child still running stopped in time with a clean status.
        """
        if self._shutdown_done:
            return True
        self._shutting_down = True
        running = [c for c in self._children if c.process.poll() is None]
        # Services first, then what they depend on (the broker), within one grace period.
        deadline = time.monotonic() + self.stop_timeout
        clean = True
        for phase in (False, True):
            group = [c for c in self._children if c.spec.stop_last is phase]
            if group:
                # A dependency still gets a moment to flush even if the services took it all.
                phase_deadline = max(deadline, time.monotonic() + 1.0) if phase else deadline
                clean = self._terminate(group, phase_deadline) and clean
        for child in self._children:
            child.reader.join(timeout=2)
        for child in running:
            status = child.process.returncode
            if status not in _CLEAN_STOP_CODES:
                clean = False
            self.log(f"{child.spec.name} stopped (status {exit_status(status)})")
        self._shutdown_done = True
        return clean and not self._killed_any

    def _terminate(self, children: list[_Child], deadline: float | None = None) -> bool:
        """Stop the given children's process groups. False if SIGKILL was needed."""
        for child in children:
            # The leader only: it stops its own workers (granian, Celery). Signalling the whole
            # group raced them against it, and granian's leader then reported the worker's exit
            # as unexpected (status 1). Whatever is left in the group is killed below.
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        if deadline is None:
            deadline = time.monotonic() + self.stop_timeout
        pending = [c for c in children if c.process.poll() is None]
        while pending and time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
            pending = [c for c in pending if c.process.poll() is None]
        for child in pending:
            self.log(f"{child.spec.name} did not stop in {self.stop_timeout:g}s; killing it")
        # Also sweeps grandchildren left in the group after their leader exited.
        for child in children:
            _signal_group(child.process, signal.SIGKILL)
        for child in children:
            child.process.wait()
        return not pending

    def _kill_all(self, signum: int) -> None:
        for child in self._children:
            _signal_group(child.process, signum)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    # The child is its group's leader (start_new_session), so its pid is the group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _signal_name(signum: int | None) -> str:
    try:
        return signal.Signals(signum or 0).name
    except ValueError:
        return f"signal {signum}"


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
