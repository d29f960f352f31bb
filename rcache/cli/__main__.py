"""``python -m rcache.cli``."""

from __future__ import annotations

import sys

from rcache.cli import main

sys.exit(main())
