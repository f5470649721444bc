"""Choosing the event loop: uvloop where it is installed, asyncio's own loop elsewhere.

uvloop does not exist on Windows. asyncio's own loop works in its place, holding fewer
connections per process. Inside Locust it has a further cost: it builds its sockets from the
``socket`` module, which gevent has patched, so they are gevent's socket objects. Used
non-blocking, as the loop uses them, they behave like plain sockets, but each call passes
through gevent's wrapper. uvloop uses no Python sockets at all.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

_announced = False


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """Return a factory of the fastest event loop this platform has.

    Where uvloop cannot be imported, asyncio's own loop is used and a warning says so, once per
    process.
    """
    global _announced
    try:
        import uvloop
    except ImportError:
        if not _announced:
            _announced = True
            logger.warning(
                "uvloop is not installed (it does not exist on Windows): using asyncio's own"
                " event loop, which holds fewer connections per process"
            )
        return _asyncio_loop
    return uvloop.new_event_loop


def _asyncio_loop() -> asyncio.AbstractEventLoop:
    if sys.platform == "win32":
        return asyncio.ProactorEventLoop()
    # Under gevent's monkey-patching, selectors.DefaultSelector is gevent's; an event loop in a
    # real thread needs the original one, or it would wait on a gevent hub.
    if "gevent" in sys.modules:
        from gevent import monkey

        selector_class = monkey.get_original("selectors", "DefaultSelector")
    else:
        import selectors

        selector_class = selectors.DefaultSelector
    return asyncio.SelectorEventLoop(selector_class())


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on the loop :func:`loop_factory` picks."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
