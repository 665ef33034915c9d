"""The one exception type for mistakes a user can make (bad spec, unknown model, missing data).

The CLI prints these without a traceback and exits with status 2; everything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import re
import shlex
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar


class SuiteError(Exception):
    """A user-facing error that names where it comes from: file, line and key when known."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        key: str | None = None,
        line: int | None = None,
        choices: Iterable[Any] | None = None,
        also: Iterable[SuiteError] = (),
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.key = key
        self.line = line
        self.choices = None if choices is None else [str(c) for c in choices]
        self.also = list(also)  # further mistakes found in the same pass, each said on a line of its own
        super().__init__(str(self))

    def where(self, *, file: str | None = None, key: str | None = None) -> SuiteError:
        """Fill in the file or key if the raiser did not know them (returns self for `raise`)."""
        if self.file is None and file is not None:
            self.file = str(file)
        if key is not None:
            self.key = key if self.key is None else f"{key}.{self.key}"
        self.args = (str(self),)
        return self

    def rekeyed(self, key: str) -> SuiteError:
        """The same error naming `key` instead (a caller's spelling of it; returns self for `raise`)."""
        self.key = key
        self.args = (str(self),)
        return self

    def said(self, more: str) -> SuiteError:
        """The same error with `more` after its message: what a caller knows that the raiser did not
        (returns self for `raise`)."""
        self.message += more
        self.args = (str(self),)
        return self

    def __str__(self) -> str:
        location = ""
        if self.file is not None:
            location = self.file + (f":{self.line}" if self.line is not None else "") + ": "
        key = f"{self.key}: " if self.key else ""
        text = f"{location}{key}{self.message}"
        if self.choices is not None:
            text += f" (valid: {', '.join(self.choices)})"
        return text + "".join(f"\n  and {other}" for other in self.also)


class TooSmall(SuiteError):
    """Inputs too small for a model with its options as they are, which setting the option `key` or
    inputs of `smallest` px would cure: `problem` is the message without that advice. A caller that
    cannot give the model the option alone (`suite profile`'s reference, whose options are the
    profiled models' too) advises the size instead. SuiteError's signature, so it pickles as one."""

    def __init__(self, message: str, *, problem: str = "", smallest: int = 0, **where: Any) -> None:
        super().__init__(message, **where)
        self.problem, self.smallest = problem or message, smallest


F = TypeVar("F", bound=Callable[..., Any])


def named_as_called(spelling: Mapping[str, str]) -> Callable[[F], F]:
    """A Python entry point whose SuiteErrors name the arguments its caller typed, not the config
    keys the suite's checks name (`{"model.name": "name"}`: create_model's `name`); a command keeps
    the keys its users type, and the checks stay the same for both."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def called(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except SuiteError as err:
                if err.key in spelling:
                    err.rekeyed(spelling[err.key])
                raise
        return called  # type: ignore[return-value]
    return wrap


def together(mistakes: Sequence[SuiteError]) -> SuiteError:
    """The first of `mistakes` (found in one pass) carrying the others, and after them, once each,
    what any of them said further (the broken model plugin an unknown model's error names would
    otherwise be said after every such mistake, or lost)."""
    first, *others = mistakes
    further: dict[str, SuiteError] = {}
    for mistake in mistakes:
        further.update((str(e), e) for e in mistake.also)
        mistake.also = []
        mistake.args = (str(mistake),)
    first.also = [*others, *further.values()]
    first.args = (str(first),)
    return first


def not_utf8(exc: UnicodeDecodeError) -> str:
    """What a UnicodeDecodeError means for a file the suite reads as text."""
    return f"not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})"


class SuiteWarning(UserWarning):
    """Something a user should know that does not stop the command; the CLI and a run's log show
    it as `warning: ...` (the message names the file), without Python's source location."""


def show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                 line: str | None = None) -> None:
    """`warnings.showwarning` for the suite's processes: a SuiteWarning as one `warning: ...` line
    on stderr, once per process (or until `shown_warnings` is cleared); others as Python shows them."""
    if issubclass(category, SuiteWarning):
        if str(message) not in shown_warnings:  # a corrupt record met by each of several reads is said once
            shown_warnings.add(str(message))
            print(f"warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning
shown_warnings: set[str] = set()


def count(n: int, noun: str) -> str:
    """`1 run`, `2 runs`."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def shell_path(path: object) -> str:
    """`path` as a shell reads it (shlex.quote): a path printed for pasting after a command, beside
    commands printed quoted, pastes as one word even with a space in it."""
    return shlex.quote(str(path))


def close_matches(name: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Names that look like `name`, for 'did you mean' messages."""
    choices = list(choices)
    by_case = {c.lower(): c for c in choices}
    hits = difflib.get_close_matches(name.lower(), list(by_case), n=n, cutoff=0.6)
    return [by_case[h] for h in hits]


def unknown(kind: str, name: str, choices: Iterable[str], **where: Any) -> SuiteError:
    """An 'unknown X' error with close matches (else the names it starts) first and the full list
    of valid names: a list or tuple in its own order (the formats as `--help` lists them, models in
    natural order), anything else sorted."""
    choices = list(choices) if isinstance(choices, (list, tuple)) else sorted(choices)
    # a name cut short (`san10` for san10_pairwise) is too far from the whole for difflib
    hint = close_matches(name, choices) or [c for c in choices if name and c.lower().startswith(name.lower())][:3]
    message = f"unknown {kind} {name!r}"
    if hint:
        message += f"; did you mean {' or '.join(repr(h) for h in hint)}?"
    return SuiteError(message, choices=choices, **where)


@contextlib.contextmanager
def batch_of_one(batch_size: int, key: str) -> Iterator[None]:
    """Training BatchNorm cannot normalise one value per channel (a batch of one image whose map
    has shrunk to 1x1); PyTorch says so in tensor sizes deep in the model, this names the setting."""
    try:
        yield
    except ValueError as exc:
        if "Expected more than 1 value per channel when training" not in str(exc):
            raise
        shape = ", ".join(re.findall(r"\d+", str(exc).rpartition("input size")[2]))
        raise SuiteError(f"a batch of {batch_size} cannot train this model: one of its BatchNorms then sees one value "
                         f"per channel (input of size [{shape}]); use at least 2 images per process, or a larger "
                         f"input", key=key) from None
