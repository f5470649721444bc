"""``python -m swarm.csms``: run the embedded CSMS as a server of its own."""

import sys

from swarm.csms import main

sys.exit(main())
