"""What can go wrong that a user can fix, as types: each carries the exit status the command ends
with and the HTTP status the server answers with. Library code raises these; only the edges (the
CLI, the server) translate them. Anything else that escapes is a bug and keeps its traceback.

They subclass ValueError so that code written against the earlier protocol (`except ValueError`)
still catches them.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """The `lenet` command's exit codes (httpie's status.py)."""

    SUCCESS = 0
    ERROR = 1  # an error explained in one line: bad input, bad model file, a failed write
    USAGE = 2  # argparse's own
    INTERRUPTED = 130  # Ctrl-C or SIGTERM: 128 + SIGINT, as shells report it


class LenetError(ValueError):
    """Bad input of any kind, with a message that says what was expected and what was found."""

    exit_status = ExitStatus.ERROR
    http_status = 400


class ImageError(LenetError):
    """An image that cannot be decoded or used."""


class NoDigit(ImageError):
    """An image that decodes but holds nothing the reader can take for a digit."""

    http_status = 422


class TooLarge(LenetError):
    """Over a size limit: bytes, pixels, files, digits in a row."""

    http_status = 413


class OverBudget(LenetError):
    """Work that would take longer than its budget; the same request may succeed when quieter."""

    http_status = 503


class ModelFileError(LenetError):
    """A model file or training checkpoint that is missing, corrupt or not ours."""

    http_status = 500


class DataError(LenetError):
    """A dataset (IDX files, an image folder) that cannot be used."""


class UsageError(LenetError):
    """Options that cannot go together, or a value out of range, found after parsing."""
