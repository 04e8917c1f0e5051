"""Entry point of ``python -m bench`` (and ``make bench``): parse the options, run, write."""

from __future__ import annotations

import sys

from bench.runner import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
