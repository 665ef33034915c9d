"""Child processes that never outlive the command that started them.

`suite bench` runs pytest, and `suite profile` one process per model, as children. Python's
default SIGTERM handler ends the parent on the spot: the child ran on (a CI timeout's `kill` let
pytest finish and even save a baseline) and temporary directories stayed behind. So while children
run, SIGTERM raises `Terminated` (cleanup in `finally` and `with` blocks runs), and `run` stops its
child on any exception before passing it on. SIGHUP (a closed terminal or ssh session) ends a
process the same way, so it is one of the `STOPS` as well, unless it is ignored (`nohup`).
A local `suite run`'s run processes end with it even when it is killed outright (`die_with_parent`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

# What `kill` and a closed terminal or ssh session send: requests to stop, handled as Ctrl-C is.
STOPS = (signal.SIGTERM, signal.SIGHUP)
INTERRUPTS = (signal.SIGINT, *STOPS)  # what stops a run's process, which records itself interrupted
GRACE_S = 5.0  # how long a child gets to exit by itself, then after SIGTERM, before SIGKILL


class Terminated(KeyboardInterrupt):
    """A stop signal (SIGTERM, SIGHUP), as an exception. A KeyboardInterrupt so that `except
    Exception` does not swallow it; `status` is the shell's exit status for a process ended by it."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signal.Signals(signum)
        self.status = 128 + self.signum


def handle(signals: Iterable[int], handler: Callable[[int, Any], Any]) -> dict[int, Any]:
    """Install `handler` for each of `signals` that is not ignored (`nohup` ignores SIGHUP, and
    that choice stays the user's); returns the handlers it replaced, for `signal.signal` to put back."""
    previous = {}
    for signum in signals:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, handler)
    return previous


class Stops:
    """The handler `sigterm_raises` installs: the first stop signal raises (KeyboardInterrupt for
    SIGINT, as Python's own handler does; Terminated for `STOPS`), except within `held()`. Later
    ones never raise: they are noted in `again`. What a stop starts (runs told to stop and
    recorded, a submission withdrawn, a child stopped) must not be cut short by a second Ctrl-C
    arriving at any instant, even as the first is being raised; the code that stops reads `again`
    to hurry up (the local runner kills its runs)."""

    def __init__(self) -> None:
        self._holding = False
        self._came: int | None = None  # held back by `held()`, raised at its end
        self._raised: int | None = None  # the stop signal raised: from then on, none raises
        self.again: int | None = None  # the first stop signal after it

    def __call__(self, signum: int, frame: object) -> None:
        if self._raised is not None:
            self.again = self.again or signum
        elif self._holding:
            self._came = self._came or signum  # the first: the one the user sent
        else:
            self._raise(signum)

    def _raise(self, signum: int) -> None:
        self._raised = signum  # before the raise: a signal that comes during it is noted, not raised
        raise _stopping(signum)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """A stop signal that comes within the block is raised at its end, for steps a signal must
        not cut in two: a child started but not yet tracked by its runner (which then neither told
        it to stop nor recorded its run), or an ended child taken off the list and not yet booked."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            came, self._came = self._came, None
            if came is not None:
                self._raise(came)


def _stopping(signum: int) -> KeyboardInterrupt:
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[Stops]:
    """Within the block, the first of SIGTERM and SIGHUP (`STOPS`) raises Terminated, or SIGINT
    KeyboardInterrupt as Python's own handler does, and later ones are noted, through the `Stops`
    yielded, whose `held()` holds a first one back (signal handlers live in the main thread only:
    elsewhere nothing changes, and nothing is held)."""
    stops = Stops()
    if threading.current_thread() is not threading.main_thread():
        yield stops
        return
    previous = handle((signal.SIGINT, *STOPS), stops)
    try:
        yield stops
    finally:
        for signum, earlier in previous.items():
            signal.signal(signum, earlier)


def suite_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) for a `python -m suite...` child, so that it imports the
    `suite` running here. `-m` puts the working folder first on sys.path: with an installed suite
    used inside another checkout, the child would run that checkout's code. PYTHONSAFEPATH=1 keeps
    the folder off, unless this suite comes from it (`python -m suite` in a checkout)."""
    import suite

    env = dict(os.environ if env is None else env)
    if suite.PACKAGE_DIR.parent != Path.cwd().resolve():
        env["PYTHONSAFEPATH"] = "1"
    return env


def run(command: Sequence[str], *, capture: bool = False, hide: str | None = None,
        **popen: Any) -> subprocess.CompletedProcess[str]:
    """subprocess.run(command, text=True, stdin=DEVNULL), but interrupted (Ctrl-C, SIGTERM, any
    exception) it stops the child before the exception goes on. Lines of the child's stderr that
    contain `hide` are left out, captured or not (the rest streams on as it comes): what a child
    says of a file its parent is about to delete would name a path that is gone. It returns once
    the child has exited and its pipes hold nothing more, not waiting for a daemon of the child's
    that inherited them and holds them open."""
    pipe = subprocess.PIPE if capture else None
    with sigterm_raises(), subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=pipe,
                                            stderr=subprocess.PIPE if capture or hide else None,
                                            **popen) as proc:
        try:
            out, err = _drain(proc, echo=not capture, hide=hide)
        except BaseException as exc:
            stop(proc, patient=isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Terminated))
            raise
    return subprocess.CompletedProcess(list(command), proc.returncode, out, err)


def _drain(proc: subprocess.Popen, *, echo: bool, hide: str | None) -> tuple[str | None, str | None]:
    """What the child writes to its pipes (stderr copied to ours as it comes when `echo`, but for
    the lines holding `hide`), read until it has exited and they hold nothing more: whatever it wrote
    is in them by then, and EOF would wait for any process that inherited them."""
    read = {f.fileno(): bytearray() for f in (proc.stdout, proc.stderr) if f is not None}
    err = proc.stderr.fileno() if proc.stderr is not None else None
    echoed = 0  # of the stderr read, the part copied or left out
    with selectors.DefaultSelector() as selector:
        for fd in read:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            exited = proc.poll() is not None  # before the select: all it wrote is in the pipes then
            ready = selector.select(0 if exited else 0.1)
            if exited and not ready:
                break
            for key, _ in ready:
                data = os.read(key.fd, 1 << 16)
                if not data:
                    selector.unregister(key.fd)
                read[key.fd] += data
            if echo and err is not None:
                echoed = _echo(read[err], echoed, hide, final=False)
    proc.wait()
    if echo and err is not None:
        _echo(read[err], echoed, hide, final=True)
        return None, None
    out, text = (None if proc.stdout is None else _text(read[proc.stdout.fileno()]),
                 None if err is None else _text(read[err]))
    if hide and text:
        text = "".join(line for line in text.splitlines(keepends=True) if hide not in line)
    return out, text


def _echo(data: bytearray, start: int, hide: str | None, *, final: bool) -> int:
    """Copy the whole lines of `data` from `start` on to sys.stderr (and, when `final`, the rest),
    but for those holding `hide`; returns where the next copy starts."""
    end = len(data) if final else data.rfind(b"\n", start) + 1
    if end > start:
        lines = _text(data[start:end]).splitlines(keepends=True)
        sys.stderr.write("".join(line for line in lines if not (hide and hide in line)))
        sys.stderr.flush()
    return max(start, end)


def _text(data: bytes | bytearray) -> str:
    """A child's output as text, as text=True reads it (universal newlines), a stray byte replaced."""
    return data.decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def stop(proc: subprocess.Popen, *, patient: bool = False) -> None:
    """End `proc`: SIGTERM, then SIGKILL after GRACE_S. `patient`: first give it GRACE_S to exit by
    itself (Ctrl-C reaches the whole foreground process group, so the child is stopping already,
    and pytest may be writing a file)."""
    for action in ([None] if patient else []) + [proc.terminate, proc.kill]:
        if proc.poll() is not None:
            return
        if action is not None:
            action()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(GRACE_S)
    proc.wait()


# The pid of the local runner (`dispatch.local`), in the environment of each run process it starts.
RUNNER_PID = "SUITE_RUNNER_PID"


def _find_prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up in the parent: a lookup between fork and exec may deadlock."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: a run outlives a killed runner and records its own end
        return None


_PRCTL = _find_prctl()  # looked up here, not between fork and exec (no dlopen in the child)
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a run's process before exec (preexec_fn): SIGTERM when the runner dies, even by SIGKILL
    (Linux's PR_SET_PDEATHSIG), so the run records itself interrupted instead of training on
    unowned. A runner that died before the call sends nothing: the run's process, which runs no
    more code of the runner's here (a lock or a buffer another thread held at the fork), finds it
    gone once started (`runner_gone`), and records so.
    The INTERRUPTS are blocked until the run's process has its handlers (`suite.execute.main`
    unblocks them): one that came while it imports (seconds) ended it without a word, which the
    runner records from its exit status, but not a runner gone, whose death signal it was."""
    signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)  # kept across exec; before the death signal is asked for
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def runner_gone() -> int | None:
    """The pid of the local runner that started this process (RUNNER_PID), if it is no longer this
    process's parent: it died, so it records nothing of this process's end (and if it died before
    `die_with_parent` asked for its death signal, none comes). None while it lives, or when no
    runner started this process (by hand)."""
    runner = os.environ.get(RUNNER_PID, "")
    return int(runner) if runner.isdigit() and int(runner) != os.getppid() else None
