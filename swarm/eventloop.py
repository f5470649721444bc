"""Choosing the event loop: uvloop where it is installed, asyncio's own loop elsewhere."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable

logger = logging.getLogger(__name__)

_announced = False


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """Return a factory of the fastest event loop this platform has.

    uvloop is not available on Windows; there, and wherever it is missing, asyncio's own loop is
    used and a warning says so once per process.
    """
    global _announced
    try:
        import uvloop
    except ImportError:
        if not _announced:
            _announced = True
            logger.warning(
                "uvloop is not installed (it does not exist on %s): using asyncio's own event loop,"
                " which holds fewer connections per process",
                sys.platform,
            )
        return _asyncio_loop
    return uvloop.new_event_loop


def _asyncio_loop() -> asyncio.AbstractEventLoop:
    if sys.platform == "win32":
        return asyncio.ProactorEventLoop()
    # Under gevent's monkey-patching, selectors.DefaultSelector is gevent's; an event loop in a
    # real thread needs the original one, or it would wait on gevent's hub.
    selector_class = _original("selectors", "DefaultSelector")
    return asyncio.SelectorEventLoop(selector_class())


def _original(module: str, name: str):
    if "gevent" in sys.modules:
        from gevent import monkey

        return monkey.get_original(module, name)
    return getattr(__import__(module), name)


def run(main, *, debug: bool = False):
    """``asyncio.run`` on the loop :func:`loop_factory` picks."""
    with asyncio.Runner(loop_factory=loop_factory(), debug=debug) as runner:
        return runner.run(main)
