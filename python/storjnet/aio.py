"""asyncio glue: turns the native `_async` calls (which complete on the node's thread) into awaitables.

The event loop never blocks: the native call only posts work to the node's thread, and its completion is
handed to the loop with `loop.call_soon_threadsafe`. A cancelled await leaves the node's operation running;
its result is dropped.
"""
from __future__ import annotations

import asyncio
from typing import Any, Callable


def _settle(fut: asyncio.Future, result: Any, error: BaseException | None, convert: Callable[[Any], Any]) -> None:
    if fut.done():  # cancelled meanwhile
        return
    if error is not None:
        fut.set_exception(error)
        return
    try:
        fut.set_result(convert(result))
    except Exception as e:  # a conversion error (e.g. a stored value that is not JSON) belongs to the awaiter
        fut.set_exception(e)


def call(native_async: Callable[..., None], *args: Any, convert: Callable[[Any], Any] = lambda r: r) -> asyncio.Future:
    """Starts `native_async(*args, done)` and returns a future of `convert(result)` on the running loop."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    def done(result: Any, error: BaseException | None) -> None:  # on the node's thread, GIL held
        try:
            loop.call_soon_threadsafe(_settle, fut, result, error, convert)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    native_async(*args, done)
    return fut
