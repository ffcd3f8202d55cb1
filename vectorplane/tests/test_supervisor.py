"""The supervisor prefixes output, stops every child on SIGINT, and fails when a child fails."""

from __future__ import annotations

import contextlib
import io
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import psutil
import pytest

from vectorplane.supervisor import ProcessSpec, Supervisor

# Children print their PID, then idle; "stubborn" ignores SIGTERM.
SLEEPER = "import os, time; print('pid', os.getpid(), flush=True); time.sleep(600)"
STUBBORN = (
    "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('pid', os.getpid(), flush=True); time.sleep(600)"
)
FAILER = (
    "import os, time; print('pid', os.getpid(), flush=True); time.sleep(0.5); raise SystemExit(3)"
)

DRIVER = textwrap.dedent(
    """
    import sys
    from vectorplane.supervisor import ProcessSpec, Supervisor

    pairs = zip(sys.argv[2::2], sys.argv[3::2])
    specs = [ProcessSpec(name, [sys.executable, "-c", code]) for name, code in pairs]
    with Supervisor(stop_timeout=float(sys.argv[1])) as sup:
        for spec in specs:
            sup.start(spec)
        code = sup.wait()
    sys.exit(code)
    """
)


class Driver:
    """A supervisor in a subprocess, its output lines collected by a thread."""

    def __init__(self, children: dict[str, str], stop_timeout: float = 10.0) -> None:
        argv = [sys.executable, "-c", DRIVER, str(stop_timeout)]
        for name, code in children.items():
            argv += [name, code]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout as stream:
            for line in stream:
                self.lines.put(line.rstrip("\n"))

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        """First output line (seen before or arriving within `timeout`) matching predicate."""
        checked = 0
        deadline = time.monotonic() + timeout
        while True:
            for line in self.seen[checked:]:
                if predicate(line):
                    return line
            checked = len(self.seen)
            if time.monotonic() > deadline:
                raise AssertionError(f"no matching line; output so far: {self.seen}")
            with contextlib.suppress(queue.Empty):
                self.seen.append(self.lines.get(timeout=0.1))

    def child_pid(self, name: str) -> int:
        line = self.wait_for(lambda line: line.startswith(f"{name} ") and " | pid " in line)
        return int(line.rsplit(" ", 1)[1])

    def finish(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def drivers() -> Iterator[list[Driver]]:
    started: list[Driver] = []
    yield started
    for driver in started:
        driver.kill()


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_prefixes_output_with_padded_names_without_colour_when_not_a_tty() -> None:
    out = io.StringIO()
    with Supervisor(out=out, stop_timeout=5) as sup:
        code = sup.run_once(
            ProcessSpec("hello", [sys.executable, "-c", "print('one'); print('two')"])
        )
        assert code == 0
        sup.start(ProcessSpec("a", [sys.executable, "-c", "print('from a')"]))
        assert sup.wait() == 0
    lines = out.getvalue().splitlines()
    assert "hello  | one" in lines
    assert "hello  | two" in lines
    assert "a      | from a" in lines
    assert any(line.startswith("system | ") for line in lines)
    assert "\033[" not in out.getvalue()


def test_sigint_stops_every_child(drivers: list[Driver]) -> None:
    driver = Driver({"web": SLEEPER, "worker": SLEEPER})
    drivers.append(driver)
    pids = {name: driver.child_pid(name) for name in ("web", "worker")}
    assert all(not gone(pid) for pid in pids.values())

    os.kill(driver.process.pid, signal.SIGINT)
    code = driver.finish()

    assert code == 0, driver.seen
    assert all(gone(pid) for pid in pids.values())
    assert any("received SIGINT" in line for line in driver.seen)
    assert any(line.startswith("web    | pid ") for line in driver.seen)


def test_failing_child_stops_the_others_and_fails(drivers: list[Driver]) -> None:
    driver = Driver({"good": SLEEPER, "bad": FAILER})
    drivers.append(driver)
    good = driver.child_pid("good")
    bad = driver.child_pid("bad")

    code = driver.finish()

    assert code == 3, driver.seen
    assert gone(good)
    assert gone(bad)
    assert any("bad exited with status 3" in line for line in driver.seen)


def test_child_ignoring_sigterm_is_killed_after_the_grace_period(drivers: list[Driver]) -> None:
    driver = Driver({"stubborn": STUBBORN, "calm": SLEEPER}, stop_timeout=1.0)
    drivers.append(driver)
    stubborn = driver.child_pid("stubborn")
    calm = driver.child_pid("calm")

    started = time.monotonic()
    os.kill(driver.process.pid, signal.SIGTERM)
    code = driver.finish()

    assert code == 1, driver.seen
    assert time.monotonic() - started < 8
    assert gone(stubborn)
    assert gone(calm)
    assert any("did not stop in 1s" in line for line in driver.seen)


def test_stop_last_children_are_stopped_after_the_others() -> None:
    # Each child announces SIGTERM; the service takes a moment to finish, like a celery worker.
    child = (
        "import signal, sys, time\n"
        "def bye(*_):\n"
        "    time.sleep(float(sys.argv[1])); print('bye', flush=True); sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    out = io.StringIO()
    with Supervisor(out=out, stop_timeout=10) as sup:
        sup.start(ProcessSpec("broker", [sys.executable, "-c", child, "0"], stop_last=True))
        sup.start(ProcessSpec("service", [sys.executable, "-c", child, "0.5"]))
        deadline = time.monotonic() + 20
        while out.getvalue().count("| ready") < 2:
            assert time.monotonic() < deadline, out.getvalue()
            time.sleep(0.05)
        assert sup.shutdown() is True
    lines = out.getvalue().splitlines()
    assert lines.index("service | bye") < lines.index("broker  | bye")
