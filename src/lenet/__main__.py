"""`python -m lenet` is the `lenet` command (and what torchrun launches)."""

import os
import sys

from lenet.cli.main import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # A torchrun rank has finished its work and closed its process group. Under elastic
    # rendezvous the store's C++ threads could abort the interpreter's own shutdown (SIGABRT,
    # "terminate called without an active exception", seen in 1 of 3 CI runs), turning a
    # finished run into a failed one; end the process here with the exit code we mean.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
