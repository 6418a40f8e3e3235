"""The `lenet` command: parses the arguments, runs the command, and turns what went wrong into one
line and an exit status. The arguments are in parser.py, the commands in commands.py.

Exit codes (ExitStatus): 0 success; 1 an error the message explains (bad data, bad model,
for `predict`: at least one input could not be used); 2 bad usage; 130 interrupted (a
resumable checkpoint was written). Only the library's own errors (LenetError), the system's
(OSError), a missing optional dependency and Ctrl-C become one line; anything else is a bug
and keeps its traceback. `--traceback` or LENET_DEBUG=1 shows the stack of every error.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from pathlib import Path

from lenet.cli.parser import build_parser
from lenet.errors import ExitStatus, LenetError

# Which extra brings an optional dependency (pyproject.toml), with what they bring in turn.
EXTRAS = {"torch": "train", "tqdm": "train", "matplotlib": "train", "onnx": "export", "onnxscript": "export",
          "onnxruntime": "export", "fastapi": "serve", "uvicorn": "serve", "starlette": "serve",
          "multipart": "serve", "python_multipart": "serve", "anyio": "serve", "httptools": "serve",
          "h11": "serve", "pydantic": "serve", "uvloop": "serve"}
COMMAND_EXTRA = {"train": "train", "export": "export", "serve": "serve"}  # a module not named above


def install_command(extra: str) -> str:
    """The pip command that adds `extra` to lenet as it is installed here: `pip install -e
    '<source folder>[extra]'` for an editable install (its direct_url.json, PEP 610), where
    `pip install 'lenet[extra]'` would fetch another copy from the index."""
    from importlib import metadata
    from urllib.parse import urlsplit
    from urllib.request import url2pathname

    try:
        record = json.loads(metadata.distribution("lenet").read_text("direct_url.json") or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        record = {}
    url = record.get("url", "") if isinstance(record, dict) else ""
    editable = (isinstance(record, dict) and isinstance(record.get("dir_info"), dict)
                and record["dir_info"].get("editable"))
    if editable and url.startswith("file:"):
        source = Path(url2pathname(urlsplit(url).path))
        where = "." if source == Path.cwd() else str(source)
        return f"pip install -e {shlex.quote(f'{where}[{extra}]')}"
    return f"pip install 'lenet[{extra}]'"


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `lenet ... | head` ends quietly
    for stream in (sys.stdout, sys.stderr):
        # A file name that is not valid UTF-8 must not end the run with UnicodeEncodeError.
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)
    from lenet.files import printable  # a file name in a message is shown escaped, never raw

    debug = args.traceback or os.environ.get("LENET_DEBUG", "") not in ("", "0")
    try:
        return args.func(args)
    except LenetError as e:
        if debug:
            raise
        print(f"lenet {args.command}: error: {printable(e, keep_lines=True)}", file=sys.stderr)
        return e.exit_status
    except OSError as e:  # disk full, read-only file system, permissions: one line, not a traceback
        if debug:
            raise
        where = f" ({printable(e.filename)})" if e.filename else ""
        print(f"lenet {args.command}: error: {printable(e.strerror or e)}{where}", file=sys.stderr)
        return ExitStatus.ERROR
    except ImportError as e:  # an optional dependency of this command is not installed
        if debug:
            raise
        extra = EXTRAS.get((e.name or "").split(".")[0], COMMAND_EXTRA.get(args.command, "dev"))
        print(f"lenet {args.command}: error: needs {e.name}, which is not installed: "
              f"{install_command(extra)}", file=sys.stderr)
        return ExitStatus.ERROR
    except KeyboardInterrupt as e:  # train's Interrupted says where its checkpoint is
        if debug:
            raise
        print(f"lenet {args.command}: {printable(e or 'interrupted')}", file=sys.stderr)
        return ExitStatus.INTERRUPTED
