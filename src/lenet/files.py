"""The file system, carefully: atomic writes, bounded reads of regular files only, a lock per output folder.

Every file we write goes to a hidden temporary name beside its target and is
renamed into place, so a crash leaves the old file or the new one, never half
of one; a crash can leave the temporary file, which the next run in that folder
removes. Every file we read is checked to be a regular file first (a FIFO or
/dev/zero would block or never end) and read with a bound.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".tmp"
# mkstemp's names: "." + target name + "." + 8 random characters + ".tmp" (see write_atomic).
_TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
LOCK_FILE = ".lenet.lock"


def write_atomic(path: str | Path, write) -> None:
    """Call `write(tmp_path)`, then rename over `path`: a crash leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise ValueError(f"{path}: is a directory; give a file name")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide models and plots from other users
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))


def clean_stale_temps(directory: str | Path) -> list[Path]:
    """Remove the temporary files a killed run of ours left in `directory`; returns them.
    Call it only while holding the folder's lock, so no live writer's file is taken."""
    removed = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for p in directory.iterdir():
        if _TEMP_NAME.match(p.name) and p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


@contextmanager
def open_regular(path: str | Path):
    """A regular file opened for binary reading; anything else, and any read error, is a ValueError.

    Special files are refused before they are opened (a FIFO would block open() itself,
    /dev/zero would never end), and the open is non-blocking in case the file was swapped
    in between."""
    path = Path(path)
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise ValueError(f"{path}: is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{path}: not a regular file (a pipe, device or socket); give a file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ValueError(f"{path}: not a regular file")
            yield f
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror or e})") from None


def read_bounded(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes (at most limit + 1 are ever read)."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise ValueError(f"{path}: {size:,} bytes is larger than the limit of {limit:,} for a {what}")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path}: larger than the limit of {limit:,} bytes for a {what}")
    return data


def check_writable_dir(directory: str | Path, flag: str) -> Path:
    """Create `directory` if needed and prove we can write in it, before any long work."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ValueError(f"{flag} {directory}: is a file, not a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".write-test.", suffix=TEMP_SUFFIX)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"{flag} {directory}: cannot write there ({e.strerror or e})") from None
    return directory


def check_writable_file(path: str | Path, flag: str) -> Path:
    """A file we are about to write: not a folder, in a folder we can write in."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a folder; give a file name")
    check_writable_dir(path.parent if str(path.parent) else Path("."), flag)
    return path


class FolderLock:
    """An exclusive lock on an output folder (flock on DIR/.lenet.lock, holding our PID), so two
    trainings never write into one folder. The kernel drops it when the process dies, kill -9
    included, so a stale lock never blocks the next run."""

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / LOCK_FILE
        self.fd: int | None = None

    def __enter__(self) -> "FolderLock":
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            return self
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise ValueError(f"{self.path.parent}: another lenet process (PID {holder}) is writing there; "
                                     f"wait for it or choose another --out") from None
                raise
            # The holder before us removes the file as it lets go: a lock on a removed file
            # guards nothing, so try again on the file that is there now.
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # still holding the lock: nobody else holds this file
            os.close(self.fd)  # closing releases the flock
            self.fd = None
