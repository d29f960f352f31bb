"""Child processes behind :mod:`rcache.server`: the registry, stopping by pid, temp dirs, waits.

Every ``redis-server`` / ``redis-sentinel`` process started through :mod:`rcache.server` is a
:class:`ManagedProcess`. Each one is listed in a module-level registry until it has been
reaped; an :mod:`atexit` hook stops whatever is still listed (and removes the temporary
directories made here) when the interpreter exits, in case the owner forgot to.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import redis.exceptions

__all__ = [
    "BindError",
    "answers_as",
    "call_all",
    "ManagedProcess",
    "ProcessInfo",
    "conf_line",
    "describe_error",
    "find_free_port",
    "launch",
    "log_tail",
    "make_temp_dir",
    "recreate_temp_dir",
    "remove_temp_dir",
    "running_processes",
    "stop_all",
    "stop_processes",
    "wait_until",
]

log = logging.getLogger("rcache.server")

T = TypeVar("T")

#: Seconds between SIGTERM and SIGKILL when stopping a process.
STOP_TIMEOUT = 10.0

_lock = threading.RLock()
_live: dict[int, ManagedProcess] = {}
_temp_dirs: set[Path] = set()
_handed_out_ports: list[int] = []
_owner_pid = os.getpid()

# Signals after which the process is expected to exit, so kill() waits to reap it.
_ENDING_SIGNALS = frozenset({signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


class BindError(RuntimeError):
    """The process exited during startup because a port or socket was already taken."""


@dataclass(frozen=True)
class ProcessInfo:
    """One live child process from the registry: its pid, a short name and its command line."""

    pid: int
    name: str
    argv: tuple[str, ...]


class ManagedProcess:
    """Run one child process in its own session and stop it by pid.

    The process is listed in the registry from the moment it is started until it has been
    reaped (by :meth:`stop`, :meth:`wait` or :meth:`is_running`).
    """

    def __init__(self, argv: Sequence[str], *, name: str, stderr_path: Path | None = None) -> None:
        """Start ``argv`` with stdin/stdout on ``/dev/null`` and stderr appended to a file."""
        self.name = name
        self.argv = tuple(argv)
        with _lock:
            err = open(stderr_path, "ab") if stderr_path is not None else None
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err if err is not None else subprocess.DEVNULL,
                    start_new_session=True,
                    close_fds=True,
                )
            finally:
                if err is not None:
                    err.close()
            _live[self._popen.pid] = self
        log.debug("started %s, pid %d: %s", name, self._popen.pid, " ".join(self.argv))

    @property
    def pid(self) -> int:
        """Return the process id (still valid after the process has exited)."""
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """Return the exit status once the process has been reaped, else None."""
        return self._popen.returncode

    def is_running(self) -> bool:
        """Return True while the process has not exited; reap it if it has."""
        if self._popen.poll() is None:
            return True
        self._forget()
        return False

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the process, unless it has already been reaped."""
        if self.is_running():
            # Not reaped yet, so the pid cannot have been reused by another process.
            os.kill(self.pid, sig)

    def wait(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds for the process to exit and reap it; True if it did."""
        try:
            self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        self._forget()
        return True

    def kill(self, sig: int = signal.SIGKILL, timeout: float = STOP_TIMEOUT) -> None:
        """Send ``sig``; for a signal that ends the process, wait for it and reap it."""
        self.send_signal(sig)
        if sig in _ENDING_SIGNALS and not self.wait(timeout):
            self.send_signal(signal.SIGKILL)
            self.wait(None)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the process: SIGTERM, then SIGKILL after ``timeout`` seconds, then reap it."""
        stop_processes([self], timeout)

    def _forget(self) -> None:
        with _lock:
            if _live.get(self.pid) is self:
                del _live[self.pid]

    def __repr__(self) -> str:
        state = "running" if self._popen.returncode is None else f"exit {self._popen.returncode}"
        return f"<ManagedProcess {self.name} pid={self.pid} {state}>"


def stop_processes(processes: Iterable[ManagedProcess], timeout: float = STOP_TIMEOUT) -> None:
    """Stop several processes at once: SIGTERM to all, SIGKILL after ``timeout`` s, reap all."""
    procs = [p for p in processes if p.is_running()]
    for p in procs:
        p.send_signal(signal.SIGTERM)
        p.send_signal(signal.SIGCONT)  # a stopped (SIGSTOP) process must run to handle SIGTERM
    deadline = time.monotonic() + timeout
    for p in procs:
        if not p.wait(max(0.0, deadline - time.monotonic())):
            log.warning("%s pid %d ignored SIGTERM for %gs: SIGKILL", p.name, p.pid, timeout)
            p.send_signal(signal.SIGKILL)
            p.wait(None)
        log.debug("stopped %s, pid %d, exit status %s", p.name, p.pid, p.returncode)


def call_all(calls: Iterable[Callable[[], object]]) -> None:
    """Call each of ``calls`` even if some raise; then raise the first error, if any."""
    errors: list[BaseException] = []
    for call in calls:
        try:
            call()
        except BaseException as exc:  # stop the rest even on KeyboardInterrupt
            errors.append(exc)
    if errors:
        raise errors[0]


def running_processes() -> list[ProcessInfo]:
    """Return the registered child processes that have not exited yet, oldest first."""
    with _lock:
        procs = list(_live.values())
    return [ProcessInfo(p.pid, p.name, p.argv) for p in procs if p.is_running()]


def stop_all(timeout: float = STOP_TIMEOUT) -> None:
    """Stop every registered process and remove every temporary directory made here."""
    if os.getpid() != _owner_pid:
        return  # a forked child: the processes belong to the parent
    with _lock:
        procs = list(_live.values())
        dirs = list(_temp_dirs)
    if procs:
        log.warning(
            "stopping %d Redis process(es) that were never stopped: %s",
            len(procs),
            ", ".join(str(p.pid) for p in procs),
        )
    try:
        stop_processes(procs, timeout)
    finally:
        for d in dirs:
            remove_temp_dir(d)


atexit.register(stop_all)


def find_free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, closed).

    Another process may still take it before it is used, so callers retry on a bind failure.
    A port is not handed out twice in a row by this process.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        with _lock:
            if port in _handed_out_ports:
                continue
            _handed_out_ports.append(port)
            del _handed_out_ports[:-4096]
        return port
    raise RuntimeError("no free TCP port found on 127.0.0.1")


def _temp_base() -> str | None:
    # Unix socket paths must stay under ~100 bytes: prefer the short /tmp over $TMPDIR.
    return "/tmp" if os.path.isdir("/tmp") else None


def make_temp_dir(prefix: str = "rc-") -> Path:
    """Create a private (0700) temporary directory with a short path; remember it for atexit."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=_temp_base()))
    with _lock:
        _temp_dirs.add(path)
    return path


def recreate_temp_dir(path: Path) -> bool:
    """Create ``path`` again (0700) after it was removed; False if the name is taken meanwhile."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return False
    with _lock:
        _temp_dirs.add(path)
    return True


def remove_temp_dir(path: Path) -> None:
    """Delete a directory made by :func:`make_temp_dir` with everything in it."""
    shutil.rmtree(path, ignore_errors=True)
    with _lock:
        _temp_dirs.discard(path)


def log_tail(path: Path, *, start: int = 0, lines: int = 25) -> str:
    """Return the last ``lines`` lines of a log file from byte offset ``start`` on ('' if none)."""
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").strip()
    return "\n".join(text.splitlines()[-lines:])


def launch(
    argv: Sequence[str],
    *,
    name: str,
    log_path: Path,
    stderr_path: Path,
    probe: Callable[[ManagedProcess], object],
    timeout: float,
) -> ManagedProcess:
    """Start ``argv`` and call ``probe(process)`` until it is truthy; return the process.

    ``probe`` raising a redis-py ConnectionError or TimeoutError means "not up yet" (an
    AuthenticationError is passed on). If the process exits first, raise :class:`BindError`
    when its log says a port was taken, else RuntimeError; both quote the end of the log
    (and of ``stderr_path``, where configuration errors go). After ``timeout`` seconds the
    process is stopped and TimeoutError raised.
    """
    logs = (log_path, stderr_path)
    offsets = [p.stat().st_size if p.exists() else 0 for p in logs]

    def tail() -> str:
        parts = (log_tail(p, start=o) for p, o in zip(logs, offsets, strict=True))
        return "\n".join(t for t in parts if t) or "(empty)"

    try:
        proc = ManagedProcess(argv, name=name, stderr_path=stderr_path)
    except FileNotFoundError as exc:
        raise RuntimeError(f"{argv[0]!r} not found: is Redis installed?") from exc
    deadline = time.monotonic() + timeout
    try:
        while True:
            if not proc.is_running():
                text = tail()
                msg = (
                    f"{name} exited with status {proc.returncode} during startup; "
                    f"end of its log ({log_path}):\n{text}"
                )
                raise BindError(msg) if "Address already in use" in text else RuntimeError(msg)
            try:
                if probe(proc) and proc.is_running():
                    return proc
            except redis.exceptions.AuthenticationError:
                raise
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{name} pid {proc.pid} did not answer within {timeout:g}s; "
                    f"end of its log ({log_path}):\n{tail()}"
                )
            time.sleep(0.02)
    except BaseException:
        proc.stop()
        raise


def answers_as(client: redis.Redis, proc: ManagedProcess) -> bool:
    """Return True if ``client`` gets PING answered by ``proc`` itself (by its INFO pid).

    PING first: it fails with LOADING until the dataset is loaded. The pid check tells
    the new process apart from whatever else may hold its port.
    """
    return bool(client.ping()) and int(client.info("server")["process_id"]) == proc.pid


def describe_error(exc: BaseException) -> str:
    """Return ``Type: message`` (redis-py's own repr of its errors says little)."""
    return f"{type(exc).__name__}: {exc}"


def _quote(word: str) -> str:
    if word and all(c.isprintable() and not c.isspace() and c not in "\"'\\" for c in word):
        return word
    out = []
    for c in word:
        if c in '"\\':
            out.append("\\" + c)
        elif c.isprintable() and c not in "\r\n\t":
            out.append(c)
        else:
            out.append("".join(f"\\x{b:02x}" for b in c.encode()))
    return '"' + "".join(out) + '"'


def conf_line(*words: object) -> str:
    """Return one redis.conf line, quoting each word that needs it (spaces, quotes, empty)."""
    return " ".join(_quote(str(w)) for w in words)


_TRANSIENT = (redis.exceptions.RedisError, OSError)


def wait_until(
    check: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    state: Callable[[], str] | None = None,
    interval: float = 0.05,
) -> T:
    """Call ``check`` every ``interval`` s until it returns a truthy value, and return it.

    Redis and OS errors raised by ``check`` count as "not yet". After ``timeout`` seconds a
    TimeoutError names ``what``, the current ``state()`` and the last error seen.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = check()
        except _TRANSIENT as exc:
            last_error = exc
        else:
            if result:
                return result
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    details = ""
    if state is not None:
        try:
            details = f"; state: {state()}"
        except _TRANSIENT as exc:
            details = f"; state unknown ({describe_error(exc)})"
    if last_error is not None:
        details += f"; last error: {describe_error(last_error)}"
    raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}{details}")
