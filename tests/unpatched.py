"""Import Locust's modules into the pytest process without gevent's monkey-patching.

Importing ``locust`` patches the whole process; the other tests run plain asyncio here. Locust
leaves the process alone while ``LOCUST_SKIP_MONKEY_PATCH`` is set, so imports go inside::

    with unpatched():
        from swarm.locust.webui import TAB, rows
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_VARIABLE = "LOCUST_SKIP_MONKEY_PATCH"


@contextlib.contextmanager
def unpatched() -> Iterator[None]:
    """Set ``LOCUST_SKIP_MONKEY_PATCH`` for the ``with`` block, then put it back as it was."""
    before = os.environ.get(_VARIABLE)
    os.environ[_VARIABLE] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ[_VARIABLE]
        else:
            os.environ[_VARIABLE] = before
