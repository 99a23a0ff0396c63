"""The file-system side of results directories: sibling names, the lock, ownership, renames.

`marketsim.results` states what writing results promises and uses these pieces; they know
nothing about tables. Sibling names of a target ``NAME``: ``.NAME.partial-PID-XXXXXXXX``
(staging, and after an exchange the old results on their way out), ``.NAME.old-PID-XXXXXXXX``
(old results moved aside by the fallback swap) and ``.NAME.lock``; ``NAME`` is shortened with a
hash when long, so the siblings fit the file system's NAME_MAX whenever ``NAME`` does.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextlib import suppress
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from marketsim.errors import ResultsError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

MANIFEST = "manifest.json"
UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)
"""errno values meaning "this kind of rename is not available here"."""

_RENAME_EXCHANGE = 2
_RENAME_NOREPLACE = 1


def swap_step(step: str) -> None:
    """Called after each step of putting results in place (a hook for the kill tests)."""


def one_line(text: str) -> str:
    """``text`` on one line: newlines, control and unprintable characters escaped.

    ``\\n``, ``\\r`` and ``\\t`` are written as such; other characters that are not printable
    (C0/C1 controls, line separators, undecodable bytes of a file name) as ``\\xNN`` or
    ``\\uNNNN``.
    """
    out = []
    for char in text:
        if char.isprintable() or char == " ":
            out.append(char)
        elif char in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif 0xDC80 <= ord(char) <= 0xDCFF:
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)


def warn(message: str) -> None:
    """Print ``warning: message`` on one line of stderr."""
    print(f"warning: {one_line(message)}", file=sys.stderr)


def _stem(name: str) -> str:
    """``name`` for sibling names: shortened with a hash if long, so siblings fit NAME_MAX."""
    raw = os.fsencode(name)
    if len(raw) <= 100:
        return name
    return f"{os.fsdecode(raw[:60])}~{hashlib.blake2b(raw, digest_size=8).hexdigest()}"


def make_sibling(target: Path, kind: str) -> Path:
    """Create a fresh hidden sibling directory of ``kind`` (``partial``) beside ``target``."""
    return Path(
        tempfile.mkdtemp(prefix=f".{_stem(target.name)}.{kind}-{os.getpid()}-", dir=target.parent)
    )


def sibling_path(target: Path, kind: str) -> Path:
    """A fresh name (not created) for a sibling of ``kind``."""
    while True:
        token = os.urandom(6).hex()[:8]
        path = target.parent / f".{_stem(target.name)}.{kind}-{os.getpid()}-{token}"
        if not os.path.lexists(path):
            return path


def _siblings(target: Path) -> list[tuple[Path, str, int | None]]:
    """Staging and retired siblings of ``target``: (path, kind, pid or None)."""
    pattern = re.compile(
        rf"\.{re.escape(_stem(target.name))}\.(partial|old)-(?:(\d+)-)?[a-z0-9_]{{8}}"
    )
    found = []
    for entry in sorted(target.parent.iterdir()):
        match = pattern.fullmatch(entry.name)
        if match and entry.is_dir() and not entry.is_symlink():
            pid = int(match.group(2)) if match.group(2) else None
            found.append((entry, match.group(1), pid))
    return found


def _lock_path(target: Path) -> Path:
    return target.parent / f".{_stem(target.name)}.lock"


def acquire_lock(target: Path) -> int | None:
    """Lock ``.NAME.lock`` beside ``target`` (exclusive, non-blocking); return its fd.

    The file holds the holder's pid. A file system without ``flock`` gives no lock (with a
    warning).
    """
    if fcntl is None:  # pragma: no cover - Windows
        return None
    path = _lock_path(target)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise ResultsError(
                f"{target}: another marketsim run is writing there (pid {holder})"
            ) from None
        except OSError as error:
            if error.errno not in (errno.ENOLCK, *UNSUPPORTED):
                os.close(fd)
                raise
            warn(f"{target}: no file locking here; concurrent runs to it are not detected")
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            return fd
        os.close(fd)  # the holder removed the file after we opened it: lock the new one


def release_lock(target: Path, fd: int | None) -> None:
    """Remove the lock file while still holding it, then unlock."""
    if fd is None:  # pragma: no cover - Windows
        return
    try:
        _lock_path(target).unlink(missing_ok=True)
    finally:
        os.close(fd)


def _alive(pid: int | None) -> bool:
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def recover_and_clean(target: Path, owned: frozenset[str]) -> None:
    """Put back old results a killed swap left aside, then remove stale siblings.

    Called under the lock, so no marketsim run is writing to ``target``; siblings whose
    process is still alive (another marketsim without the lock?) are left alone anyway.
    """
    stale = [(path, kind) for path, kind, pid in _siblings(target) if not _alive(pid)]
    empty = target.is_dir() and not target.is_symlink() and not any(target.iterdir())
    if not target.exists() or empty:
        retired = [path for path, kind in stale if kind == "old" and complete(path)]
        if retired:
            newest = max(retired, key=lambda path: (path / MANIFEST).stat().st_mtime_ns)
            if empty:
                target.rmdir()
            os.rename(newest, target)
            warn(f"{target}: put back results an interrupted run had moved aside")
            stale = [(path, kind) for path, kind in stale if path != newest]
    for path, _ in stale:
        remove_owned(path, owned)


def complete(directory: Path) -> bool:
    """``directory`` holds a readable manifest and every table it lists, with its rows."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        for name, info in manifest.get("tables", {}).items():
            rows = pq.read_metadata(directory / f"{name}.parquet").num_rows
            if isinstance(info, dict) and info.get("rows", rows) != rows:
                return False
    except (OSError, ValueError, AttributeError, pa.ArrowException):
        return False
    return isinstance(manifest, dict)


def first_foreign(directory: Path, owned: frozenset[str]) -> str | None:
    """The first entry (sorted, relative path) of ``directory`` marketsim did not write."""
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        name = entry.name
        if name in owned and entry.is_file() and not entry.is_symlink():
            continue
        if f"{name}/" in owned and entry.is_dir() and not entry.is_symlink():
            inner = _first_foreign_part(entry)
            if inner is None:
                continue
            return f"{name}/{inner}"
        return name
    return None


def _first_foreign_part(dataset: Path) -> str | None:
    """The first entry of a dataset directory that is not a parquet part or partition."""
    for entry in sorted(dataset.iterdir(), key=lambda p: p.name):
        if entry.is_symlink():
            return entry.name
        if entry.is_file() and entry.suffix == ".parquet":
            continue
        if entry.is_dir() and "=" in entry.name:
            inner = _first_foreign_part(entry)
            if inner is None:
                continue
            return f"{entry.name}/{inner}"
        return entry.name
    return None


def remove_owned(directory: Path, owned: frozenset[str], step: str | None = None) -> None:
    """Delete the owned names in ``directory`` (manifest first), then the directory.

    Anything else found there is left in place, with a warning naming it.
    """
    names = sorted((p.name for p in directory.iterdir()), key=lambda name: (name != MANIFEST, name))
    for name in names:
        entry = directory / name
        if name in owned and entry.is_file() and not entry.is_symlink():
            entry.unlink()
        elif f"{name}/" in owned and entry.is_dir() and not entry.is_symlink():
            _remove_dataset(entry)
        else:
            continue
        if step is not None:
            swap_step(f"{step}:{name}")
    try:
        directory.rmdir()
    except OSError:
        foreign = first_foreign(directory, frozenset()) or "?"
        warn(f"{directory}: left in place: it holds {foreign!r}, which marketsim did not write")
        return
    if step is not None:
        swap_step(f"{step}-removed")


def _remove_dataset(dataset: Path) -> None:
    for entry in dataset.iterdir():
        if entry.is_file() and not entry.is_symlink() and entry.suffix == ".parquet":
            entry.unlink()
        elif entry.is_dir() and not entry.is_symlink() and "=" in entry.name:
            _remove_dataset(entry)
    with suppress(OSError):
        dataset.rmdir()


def fsync(path: Path) -> None:
    """Flush ``path`` (a file or directory) to disk; file systems without it are skipped."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _renameat2(source: Path, destination: Path, flags: int) -> None:
    function = getattr(_libc(), "renameat2", None) if sys.platform.startswith("linux") else None
    if function is None:
        raise OSError(errno.ENOSYS, os.strerror(errno.ENOSYS))
    result = function(-100, os.fsencode(source), -100, os.fsencode(destination), flags)
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(source), None, str(destination))


def _libc():
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        function = getattr(_LIBC, "renameat2", None)
        if function is not None:
            function.argtypes = [ctypes.c_int, ctypes.c_char_p] * 2 + [ctypes.c_uint]
            function.restype = ctypes.c_int
    return _LIBC


_LIBC = None


def rename_exchange(source: Path, destination: Path) -> None:
    """Swap two directories in one step (Linux ``renameat2(RENAME_EXCHANGE)``)."""
    _renameat2(source, destination, _RENAME_EXCHANGE)


def rename_noreplace(source: Path, destination: Path) -> None:
    """Rename, failing with EEXIST rather than replacing anything at ``destination``."""
    try:
        _renameat2(source, destination, _RENAME_NOREPLACE)
    except OSError as error:
        if error.errno not in UNSUPPORTED:
            raise
        if os.path.lexists(destination):
            raise FileExistsError(errno.EEXIST, "File exists", str(destination)) from None
        os.rename(source, destination)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then act on the first one that came."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if handler is None or handler == signal.SIG_IGN:
            continue
        previous[signum] = signal.signal(signum, lambda number, frame: caught.append(number))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)
            else:
                os.kill(os.getpid(), caught[0])
