"""What every long-running part of a process is to its runner, and the one signal-handling runner.

A ``Service`` is started by its process's composition root and answers two calls: ``stop()`` (finish what is in
hand, release what it holds; safe to call more than once) and ``wait_stopped()`` (returns once it has stopped,
whether asked to or on its own after a failure). ``run_until_stopped`` runs a set of them until SIGTERM or SIGINT
arrives or until one of them stops on its own, then stops every one, in the reverse order of the list.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Sequence
from typing import Protocol


class Service(Protocol):
    async def stop(self) -> None: ...

    async def wait_stopped(self) -> None: ...


class Stoppable(Protocol):
    async def stop(self) -> None: ...


SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.asynccontextmanager
async def stop_signals() -> AsyncIterator[asyncio.Event]:
    """An event set by SIGTERM or SIGINT while the context is open (the handlers are removed when it closes)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in SIGNALS:
        loop.add_signal_handler(sig, stopping.set)
    try:
        yield stopping
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)


async def run_until_stopped(services: Sequence[Service], *, helpers: Sequence[Stoppable] = ()) -> None:
    """Wait for a stop signal or for any of ``services`` to stop on its own; then stop ``helpers`` and
    ``services`` (last first) and return once every service has stopped."""
    async with stop_signals() as stopping:
        waits = [asyncio.ensure_future(service.wait_stopped()) for service in services]
        signalled = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait([*waits, signalled], return_when=asyncio.FIRST_COMPLETED)
        finally:
            signalled.cancel()
            await asyncio.gather(*(helper.stop() for helper in helpers), return_exceptions=True)
            for service in reversed(services):
                with contextlib.suppress(Exception):
                    await service.stop()
            await asyncio.gather(*waits, return_exceptions=True)
