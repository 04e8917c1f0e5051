"""Allows ``python -m procorefs``."""

from procorefs.cli import main

raise SystemExit(main())
