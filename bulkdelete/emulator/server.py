"""Running the emulator: in the caller's event loop, or in a thread of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar

from aiohttp import web

from bulkdelete.emulator.app import EmulatedApi
from bulkdelete.emulator.config import EmulatorConfig, FaultConfig
from bulkdelete.emulator.stats import EmulatorStats

_T = TypeVar("_T")
_DEFAULT_CONFIG = EmulatorConfig()
_SHUTDOWN_GRACE = 1.0  # seconds in-flight requests get at shutdown; slow faults wait longer
_THREAD_START_TIMEOUT = 60.0


class Emulator:
    """A running emulator: where it listens, what it saw, and the controls tests need.

    The controls may be called from any thread: from another thread than the emulator's event
    loop they run on that loop and wait for it.
    """

    __slots__ = ("_api", "_loop", "_loop_thread", "base_url", "stats")

    def __init__(self, api: EmulatedApi, base_url: str, loop: asyncio.AbstractEventLoop) -> None:
        self._api = api
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self.base_url: str = base_url
        """The API root, such as ``http://127.0.0.1:41234``."""
        self.stats: EmulatorStats = api.stats
        """What the emulator saw, live."""

    def __repr__(self) -> str:
        return f"<Emulator {self.base_url}>"

    def _call(self, action: Callable[[], _T]) -> _T:
        if threading.get_ident() == self._loop_thread:
            return action()
        done: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(action())
            except BaseException as exc:
                done.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return done.result()

    def add_identities(self, external_ids: Iterable[str]) -> list[str]:
        """Create identities with these ``external_id``s and return their new ``_id``s.

        All or none: raises ``ValueError`` if one is empty, not valid Unicode, taken already or
        given twice.
        """
        wanted = list(external_ids)
        return self._call(lambda: self._api.add_identities(wanted))

    def exists(self, id_or_external_id: str) -> bool:
        """Whether an identity with this ``_id`` or ``external_id`` is there."""
        return self._call(lambda: self._api.store.get(id_or_external_id) is not None)

    def identity_count(self) -> int:
        """How many identities there are."""
        return self._call(lambda: len(self._api.store))

    def set_api_key(self, key: str | None) -> None:
        """Require this bearer token from now on (``None``: any request passes)."""
        self._call(lambda: self._api.set_api_key(key))

    def set_rate_limit(self, n: int | None, period: float = 60.0) -> None:
        """Admit at most ``n`` requests in any ``period`` seconds from now on; ``None``: no
        limit."""
        self._call(lambda: self._api.set_rate_limit(n, period))

    def set_faults(self, faults: FaultConfig) -> None:
        """Play these faults from now on, drawing afresh from their seed."""
        self._call(lambda: self._api.set_faults(faults))

    def start_outage(self, seconds: float) -> None:
        """Answer every /v2 request 503 for the next ``seconds``; 0 ends an outage."""
        self._call(lambda: self._api.start_outage(seconds))

    def reset_stats(self) -> None:
        """Start :attr:`stats` afresh."""
        self._call(self._api.stats.reset)


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@asynccontextmanager
async def running_emulator(config: EmulatorConfig = _DEFAULT_CONFIG) -> AsyncIterator[Emulator]:
    """Serve the emulator in the running event loop until the block ends.

    Raises :class:`~bulkdelete.errors.UsageError` for seeds that clash and ``OSError`` when the
    address cannot be listened on.
    """
    api = EmulatedApi(config)
    server = web.Server(api.handle, access_log=None, handler_cancellation=True)
    runner = web.ServerRunner(server, shutdown_timeout=_SHUTDOWN_GRACE)
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
        port = int(runner.addresses[0][1])
        yield Emulator(api, _base_url(config.host, port), asyncio.get_running_loop())
    finally:
        await runner.cleanup()


@contextmanager
def emulator_in_thread(config: EmulatorConfig = _DEFAULT_CONFIG) -> Iterator[Emulator]:
    """Serve the emulator from its own event loop in a daemon thread until the block ends.

    For synchronous code (such as tests that run the command line in a subprocess). Startup
    errors are raised here, in the caller's thread.
    """
    started: concurrent.futures.Future[tuple[Emulator, asyncio.Event]]
    started = concurrent.futures.Future()

    async def serve() -> None:
        async with running_emulator(config) as emulator:
            stop = asyncio.Event()
            started.set_result((emulator, stop))
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            if started.done():
                raise
            started.set_exception(exc)

    thread = threading.Thread(target=run, name="bulkdelete-emulator", daemon=True)
    thread.start()
    emulator, stop = started.result(timeout=_THREAD_START_TIMEOUT)
    try:
        yield emulator
    finally:
        emulator._loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=_SHUTDOWN_GRACE + 10)
