"""The image files a command is given: files as named, folders expanded to their images, and the
output folders checked against them."""

from __future__ import annotations

from pathlib import Path

from lenet.errors import TooLarge, UsageError
from lenet.reading.image import EXTENSIONS

MAX_FILES = 10_000_000  # image files one command collects: far above any real folder, bounds a runaway walk


def collect_inputs(inputs: list[str], recursive: bool = False) -> list[Path]:
    """Files as given; directories expanded to their image files, sorted by name: those directly in
    them, or with `recursive` those in their subfolders too (symbolic links to folders not followed)."""
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths.extend(image_files(path, recursive))
        else:
            paths.append(path)  # a missing file becomes its own error entry
        if len(paths) > MAX_FILES:
            raise TooLarge(f"{item}: more than {MAX_FILES:,} image files; give fewer at a time")
    return paths


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """The image files in `folder` (and with `recursive` below it), sorted by their path."""
    import os

    if not recursive:
        return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):  # followlinks=False: a link loop cannot trap it
        dirs.sort()
        found.extend(Path(root) / f for f in files if Path(f).suffix.lower() in EXTENSIONS
                     and (Path(root) / f).is_file())
        if len(found) > MAX_FILES:
            break
    return sorted(found, key=lambda p: p.relative_to(folder).parts)


def subfolders_with_images(folder: Path) -> list[Path]:
    """Folders directly in `folder` that hold image files (what a non-recursive look leaves out)."""
    return [d for d in sorted(folder.iterdir()) if d.is_dir() and not d.is_symlink() and image_files(d)]


def check_save_dir(directory: Path, paths: list[Path], flag: str = "--save-preprocessed") -> Path:
    """Refuse, before any work, a folder we cannot write or one that holds the inputs themselves."""
    from lenet.files import check_writable_dir

    check_writable_dir(directory, flag)
    here = directory.resolve()
    if any(p.resolve().parent == here for p in paths):
        raise UsageError(f"{flag} {directory}: the folder holds input images; "
                         f"choose another folder, so no input can be overwritten")
    return directory
