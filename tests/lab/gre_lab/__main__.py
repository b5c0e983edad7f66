"""python -m gre_lab: the lab's command line (tests/lab/lab runs this)."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
