"""Bad input: one line on stderr, exit code 2."""

from __future__ import annotations

import sys

EXIT_BAD_INPUT = 2


def fail(message: str) -> None:
    """One line on stderr and exit code 2: bad input, nothing was run."""
    print(f"digitlab: error: {message}", file=sys.stderr)
    sys.exit(EXIT_BAD_INPUT)
