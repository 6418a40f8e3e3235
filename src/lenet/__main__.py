"""`python -m lenet` is the `lenet` command (and what torchrun launches)."""

from .cli import main

raise SystemExit(main())
