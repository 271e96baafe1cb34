"""``python -m channels.cli``."""

import sys

from channels.cli import main

sys.exit(main())
