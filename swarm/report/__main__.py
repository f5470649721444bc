"""``python -m swarm.report RUN_DIR ...``: redraw the pictures of earlier runs."""

import sys

from swarm.report.cli import main

sys.exit(main())
