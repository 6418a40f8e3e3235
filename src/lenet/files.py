"""The file system, carefully: atomic writes, bounded reads of regular files only, a lock per output folder.

Every file we write goes to a hidden temporary name beside its target and is
renamed into place, so a crash leaves the old file or the new one, never half
of one. The temporary name carries our mark and the writer's PID, so a crash's
leftover is told apart from other programs' files: the next training in that
folder removes ours whose writer is gone, and nothing else. A rename replaces
regular files only (never a device, a pipe, a link or a folder someone put
there). Every file we read is checked to be a regular file first (a FIFO or
/dev/zero would block or never end) and read with a bound.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import tempfile
from contextlib import contextmanager, suppress
from pathlib import Path

from lenet.errors import LenetError, TooLarge

TEMP_SUFFIX = ".tmp"
TEMP_MARK = "lenet-"  # then the writer's PID: whose temporary file it is
# mkstemp's names: "." + target name + ".lenet-" + PID + "." + 8 random characters + ".tmp" (temp_prefix).
_TEMP_NAME = re.compile(r"^\..+\." + TEMP_MARK + r"(\d{1,10})\.[a-z0-9_]{8}\.tmp$")
LOCK_FILE = ".lenet.lock"
MODEL_FILE = "model.safetensors"  # a trained model in its folder (lenet train --out, a samples folder)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"))


def temp_prefix(name: str) -> str:
    """The start of our temporary names for target `name`: our mark and PID (clean_stale_temps reads them)."""
    return f".{name[:100]}.{TEMP_MARK}{os.getpid()}."


def kind_of(mode: int) -> str:
    """What a file of this st_mode is, in words, when it is not a regular file."""
    return next((words for test, words in _KINDS if test(mode)), "not a regular file")


def not_replaceable(path: Path) -> str | None:
    """Why a rename must not replace `path` (it is not a regular file), or None: it may."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return None if stat.S_ISREG(st.st_mode) else kind_of(st.st_mode)


def printable(text, keep_lines: bool = False) -> str:
    """`text` as a terminal should show it: control characters (a newline, an ANSI escape) escaped
    as Python writes them, so a file name can neither break a line nor drive the terminal.
    `keep_lines`: a message's own line breaks stay (the rest is escaped all the same)."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or (keep_lines and c == "\n") else repr(c)[1:-1] for c in text)


def write_atomic(path: str | Path, write) -> None:
    """Call `write(tmp_path)`, then rename over `path`: a crash leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise LenetError(f"{path}: is a directory; give a file name")
    _check_replaceable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=TEMP_SUFFIX)
    os.close(fd)
    try:
        try:
            write(tmp)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide models and plots from other users
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        except Exception as e:
            said = _write_error(e, path)
            if said is e:
                raise
            raise said from None
        _check_replaceable(path)  # again: something may have been put there while we wrote
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _check_replaceable(path: Path) -> None:
    kind = not_replaceable(path)
    if kind:
        raise LenetError(f"{path}: is {kind}, not a regular file; lenet writes over regular files only: "
                         f"give another name")


def _write_error(e: Exception, path: Path) -> Exception:
    """The error a failed write should raise, naming `path` (not our hidden temporary name).
    safetensors reports a failed write (a full disk) as SafetensorError, which is no OSError:
    made one here, so every edge says it in one line like any other write error."""
    if isinstance(e, OSError):
        return OSError(e.errno, e.strerror, str(path)) if e.errno and e.filename != str(path) else e
    try:
        from safetensors import SafetensorError
    except ImportError:
        return e
    if not isinstance(e, SafetensorError):
        return e
    code = re.search(r"Os \{ code: (\d+)", str(e))
    if code:
        number = int(code.group(1))
        return OSError(number, os.strerror(number), str(path))
    return OSError(errno.EIO, f"cannot write the file ({str(e)[:200]})", str(path))


def write_text_atomic(path: str | Path, text: str) -> None:
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))


def clean_stale_temps(directory: str | Path) -> list[Path]:
    """Remove the temporary files a killed run of ours left in `directory`; returns them.

    Ours only: our mark in the name, a regular file of our user, written by a process that is gone
    (or by this one, which holds the folder's lock and writes nothing yet). Another program's file,
    or one a live lenet process (an export, a report) is writing, is kept."""
    removed: list[Path] = []
    directory = Path(directory)
    if not directory.is_dir():
        return removed
    for p in directory.iterdir():
        match = _TEMP_NAME.match(p.name)
        if not match or _alive(int(match.group(1))):
            continue
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    """Whether another process `pid` may be running (when in doubt: yes, and its file is kept)."""
    if pid == os.getpid():
        return False
    if pid <= 0 or os.name != "posix":  # os.kill on Windows would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: alive, another user's
        return True
    return True


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
            raise LenetError(f"{path}: is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise LenetError(f"{path}: not a regular file (a pipe, device or socket); give a file")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise LenetError(f"{path}: not a regular file")
            yield f
    except FileNotFoundError:
        raise LenetError(f"{path}: no such file") from None
    except OSError as e:
        raise LenetError(f"{path}: cannot read ({e.strerror or e})") from None


def read_bounded(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of a regular file of at most `limit` bytes (at most limit + 1 are ever read)."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise TooLarge(f"{path}: {size:,} bytes is larger than the limit of {limit:,} for a {what}")
        # Its size and one byte more asked for: read(limit + 1) would allocate the whole limit first.
        data = f.read(size + 1)
        if len(data) > size:  # it grew since: the rest, up to the limit
            data += f.read(limit + 1 - len(data))
    if len(data) > limit:
        raise TooLarge(f"{path}: larger than the limit of {limit:,} bytes for a {what}")
    return data


def check_writable_dir(directory: str | Path, flag: str) -> Path:
    """Create `directory` if needed and prove we can write in it, before any long work."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise LenetError(f"{flag} {directory}: is a file, not a folder")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=temp_prefix("write-test"), suffix=TEMP_SUFFIX)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise LenetError(f"{flag} {directory}: cannot write there ({e.strerror or e})") from None
    return directory


def check_writable_file(path: str | Path, flag: str, inputs=()) -> Path:
    """A file we are about to write: new or a regular file, none of the command's `inputs`, in a
    folder we can write in."""
    path = Path(path)
    if path.is_dir():
        raise LenetError(f"{flag} {path}: is a folder; give a file name")
    kind = not_replaceable(path)
    if kind:
        raise LenetError(f"{flag} {path}: is {kind}, not a regular file; lenet writes over regular files only: "
                         f"give another name")
    for given in inputs:
        if _same_file(path, Path(given)):
            raise LenetError(f"{flag} {path}: is the command's input {given}; give another name")
    check_writable_dir(path.parent if str(path.parent) else Path("."), flag)
    return path


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist: not the same
        return False


class FolderLock:
    """An exclusive lock on an output folder (flock on DIR/.lenet.lock, holding our PID), so two
    trainings never write into one folder. The kernel drops it when the process dies, kill -9
    included, so a stale lock never blocks the next run."""

    def __init__(self, directory: str | Path):
        self.path = Path(directory) / LOCK_FILE
        self.fd: int | None = None

    def __enter__(self) -> FolderLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            return self
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise LenetError(f"{self.path.parent}: another lenet process (PID {holder}) is writing there; "
                                     f"wait for it or choose another --out") from None
                raise
            # The holder before us removes the file as it lets go: a lock on a removed file
            # guards nothing, so try again on the file that is there now.
            try:
                if os.lstat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        if not re.fullmatch(rb"\d*\n?", os.pread(fd, 64, 0)):  # ours hold a PID or nothing
            os.close(fd)
            raise self._not_ours("it holds something other than a PID")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def _open(self) -> int:
        """The lock file, opened without following a link: a regular file of ours, else a ValueError.
        Whatever is there is looked at before it is opened (opening a device can act on it)."""
        with suppress(FileNotFoundError):
            self._check(os.lstat(self.path))
        flags = (os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
                 | getattr(os, "O_CLOEXEC", 0))
        try:
            fd = os.open(self.path, flags, 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:  # a link was put there after the look
                raise self._not_ours("a symbolic link") from None
            raise
        try:
            self._check(os.fstat(fd))
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _check(self, st: os.stat_result) -> None:
        if not stat.S_ISREG(st.st_mode):
            raise self._not_ours(kind_of(st.st_mode))
        if st.st_nlink > 1:  # writing our PID into it would change the other name's file (0: just removed)
            raise self._not_ours("a hard link to another file")
        if st.st_uid != os.geteuid():
            raise self._not_ours("another user's file")
        if st.st_size > 32:
            raise self._not_ours("it holds something other than a PID")

    def _not_ours(self, what: str) -> LenetError:
        return LenetError(f"{self.path}: is not a lock file lenet made ({what}); lenet will not write "
                          f"into it: remove it if it is not needed, or choose another --out")

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            try:  # still holding the lock: nobody else holds this file; never unlink what replaced it
                if os.lstat(self.path).st_ino == os.fstat(self.fd).st_ino:
                    self.path.unlink()
            except FileNotFoundError:
                pass
            os.close(self.fd)  # closing releases the flock
            self.fd = None
