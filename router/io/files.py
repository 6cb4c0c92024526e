"""Opening the user's files: the one place where inputs are read and outputs written.

Inputs
    Only regular files are read (or ``-``, standard input, where a command says so):
    a directory, FIFO, socket or device is refused at once instead of hanging or
    growing without bound. A file larger than :func:`max_input_bytes` (default
    512 MiB, ``$BYOA_MAX_INPUT_BYTES`` to change it) is refused, and so is a ``.gz``
    file that inflates to more than that.

Outputs
    Written to a temporary file beside the target and renamed over it only when
    complete, so a failed run leaves the old file as it was. An output that is one
    of the command's inputs is refused before anything is read. A missing folder,
    a directory in the way, no permission or a full disk is an ``InputError`` that
    names the path, never a traceback.
"""

from __future__ import annotations

import gzip
import io
import os
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any, cast

from router.errors import InputError

ENV_MAX_INPUT = "BYOA_MAX_INPUT_BYTES"
DEFAULT_MAX_INPUT = 512 * 1024 * 1024


def max_input_bytes() -> int:
    """The largest input file (and inflated ``.gz`` content) in bytes."""
    raw = os.environ.get(ENV_MAX_INPUT)
    if raw is None:
        return DEFAULT_MAX_INPUT
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"expected a whole number of bytes, got {raw!r}",
                         field=f"${ENV_MAX_INPUT}") from None
    if value <= 0:
        raise InputError(f"expected a number of bytes > 0, got {value}",
                         field=f"${ENV_MAX_INPUT}")
    return value


def _too_big(source: str, limit: int, what: str = "is larger") -> InputError:
    return InputError(f"{what} than the input limit of {limit:,} bytes "
                      f"(set ${ENV_MAX_INPUT} to raise it)", source=source)


def check_input(path: str | Path) -> Path:
    """``path`` if it is a readable regular file within the size limit, else an
    ``InputError`` that says what it is instead."""
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputError("no such file", source=str(p)) from None
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", source=str(p)) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError("is a directory, expected a file", source=str(p))
    if not stat.S_ISREG(st.st_mode):
        raise InputError("is not a regular file (a FIFO, socket or device?), expected a file",
                         source=str(p))
    limit = max_input_bytes()
    if st.st_size > limit:
        raise _too_big(str(p), limit, f"is {st.st_size:,} bytes, more")
    return p


class _Capped(io.RawIOBase):
    """A binary stream that refuses to deliver more than ``limit`` bytes."""

    def __init__(self, inner: io.BufferedIOBase, limit: int, source: str,
                 what: str = "inflates to more", close_inner: bool = True) -> None:
        self.inner, self.left, self.limit, self.source = inner, limit, limit, source
        self.what, self.close_inner = what, close_inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        n = self.inner.readinto(view)
        self.left -= n
        if self.left < 0:
            raise _too_big(self.source, self.limit, self.what)
        return n

    def close(self) -> None:
        if self.close_inner:
            self.inner.close()
        super().close()


#: The name standard input goes by in messages (``-`` on the command line).
STDIN = "<stdin>"


def source_name(path: str | Path) -> str:
    """How messages name an input: ``<stdin>`` for ``-``, else the path."""
    return STDIN if str(path) == "-" else str(path)


def open_stdin_text(newline: str | None = None) -> io.TextIOWrapper:
    """Standard input as UTF-8 text within the input limit (left open when closed)."""
    stdin = cast(io.BufferedIOBase, sys.stdin.buffer)
    raw = _Capped(stdin, max_input_bytes(), STDIN, "is more", close_inner=False)
    return io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8", newline=newline)


def open_binary(path: str | Path) -> IO[bytes]:
    """A checked input (see :func:`check_input`) as bytes, gunzipped for ``.gz``."""
    p = check_input(path)
    try:
        if p.suffix == ".gz":
            inflated = gzip.open(p, "rb")  # noqa: SIM115 - the caller closes the reader
            return io.BufferedReader(_Capped(inflated, max_input_bytes(), str(p)))
        return open(p, "rb")
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}", source=str(p)) from None


def open_text(path: str | Path, newline: str | None = None,
              bom: bool = False) -> io.TextIOWrapper:
    """A checked input as UTF-8 text, gunzipped for ``.gz``; with ``bom``, a UTF-8
    byte order mark at the start (as Excel writes CSV) is skipped."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8-sig" if bom else "utf-8",
                            newline=newline)


def read_text(path: str | Path) -> str:
    """A whole checked input as UTF-8 text."""
    with open_text(path) as fh:
        try:
            return fh.read()
        except UnicodeDecodeError as exc:
            raise InputError(f"cannot read the file: not UTF-8 ({exc.reason} at byte "
                             f"{exc.start})", source=str(path)) from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_output(path: str | Path, inputs: Iterable[str | Path | None] = ()) -> Path:
    """``path`` if a file can be written there and it is none of ``inputs``."""
    p = Path(path)
    for given in inputs:
        if given is not None and str(given) != "-" and _same_file(p, Path(given)):
            raise InputError(f"is also an input ({given}); write the output elsewhere",
                             source=str(p))
    if p.is_dir():
        raise InputError("is a directory, expected a file name", source=str(p))
    parent = p.parent
    if not parent.exists():
        raise InputError(f"the folder {parent} does not exist", source=str(p))
    if not parent.is_dir():
        raise InputError(f"{parent} is not a folder", source=str(p))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"no permission to write in {parent}", source=str(p))
    return p


@contextmanager
def atomic_output(path: str | Path, inputs: Iterable[str | Path | None] = (),
                  binary: bool = False) -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file beside it, renamed over ``path``
    only if the block completes; on any error the temporary file is removed and
    ``path`` is untouched."""
    p = check_output(path, inputs)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", source=str(p)) from None
    try:
        fh: IO[Any] = (os.fdopen(fd, "wb") if binary
                       else os.fdopen(fd, "w", encoding="utf-8"))
        with fh:
            yield fh
        os.replace(tmp, p)
    except OSError as exc:
        _unlink(tmp)
        raise InputError(f"cannot write: {exc.strerror or exc}", source=str(p)) from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    with suppress(FileNotFoundError):
        os.unlink(path)


def output_dir(path: str | Path, inputs: Iterable[str | Path | None] = ()) -> Path:
    """A folder for a command's outputs, created if missing; refused if it is a
    file or one of the inputs, or cannot be created."""
    p = Path(path)
    for given in inputs:
        if given is not None and str(given) != "-" and _same_file(p, Path(given)):
            raise InputError(f"is also an input ({given}); write the outputs elsewhere",
                             source=str(p))
    if p.exists() and not p.is_dir():
        raise InputError("is a file, expected a folder for the outputs", source=str(p))
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the folder: {exc.strerror or exc}",
                         source=str(p)) from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise InputError("no permission to write in this folder", source=str(p))
    return p
