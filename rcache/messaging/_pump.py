"""The subscriber loop, written once as a generator of effects (no I/O).

:func:`pump` asks the :class:`~rcache.messaging._machine.SubscriptionMachine` what to do,
yields that effect to the driver (:class:`~rcache.messaging.Subscriber` or
:class:`~rcache.messaging.AsyncSubscriber`), and feeds the outcome back: a reply, a
timeout, or a connection error thrown in as :class:`~rcache.errors.BackendError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

from rcache.errors import BackendError, BackendTimeout, BackendUnavailable
from rcache.messaging._machine import (
    CHECK_MASTER,
    CONNECT,
    FLUSH,
    MAX_WAIT,
    RUN_HOOKS,
    Drop,
    Effect,
    Pause,
    Read,
    SubscriptionMachine,
    logger,
)

__all__ = ["pump"]

Clock = Callable[[], float]


def pump(
    m: SubscriptionMachine,
    *,
    until: Callable[[], bool],
    timeout: float | None,
    wait: bool = True,
    raise_on_disconnect: bool = False,
    clock: Clock = time.monotonic,
) -> Generator[Effect, Any, None]:
    """Run the subscriber until ``until()`` is true, ``timeout`` seconds pass or it closes.

    ``wait=False`` stops at the first pause instead of sleeping through a backoff.
    Connection errors are thrown in by the driver as :class:`~rcache.errors.BackendError`;
    they are handled here (reconnect) and re-raised only with ``raise_on_disconnect``.
    """
    deadline = None if timeout is None else clock() + timeout
    read_once = False
    while not m.closed and not until():
        now = clock()
        step = m.next_step(now)
        if type(step) is Read or type(step) is Pause:
            seconds = min(step.seconds, MAX_WAIT)
            if deadline is not None:
                left = deadline - now
                if left <= 0 and (read_once or type(step) is Pause):
                    return
                seconds = max(0.0, min(seconds, left))
            if type(step) is Pause:
                if not wait:
                    return
                yield Pause(seconds)
                continue
            read_once = True
            try:
                frame = yield Read(seconds)
            except BackendError as err:
                yield from _lose(m, err, raise_on_disconnect, clock)
                continue
            if frame is not None:
                m.on_frame(clock(), frame)
        elif step is CONNECT or step is FLUSH:
            try:
                yield step
            except BackendError as err:
                yield from _lose(m, err, raise_on_disconnect, clock)
                continue
            if step is CONNECT:
                m.on_connected(clock())
        elif type(step) is Drop:
            yield from _lose(m, BackendTimeout(step.reason), raise_on_disconnect, clock)
        elif step is RUN_HOOKS:
            yield step
            m.hooks_done(clock())
        elif step is CHECK_MASTER:
            try:
                moved = yield step
            except BackendError as err:
                logger.debug("could not ask Sentinel for the master: %s", err)
                continue
            if moved:
                gone = BackendUnavailable("the Sentinel master moved to another node")
                yield from _lose(m, gone, raise_on_disconnect, clock)


def _lose(
    m: SubscriptionMachine, err: BackendError, raise_on_disconnect: bool, clock: Clock
) -> Generator[Effect, Any, None]:
    yield Drop(str(err))
    if m.closed:
        return
    m.on_lost(clock(), err)
    if raise_on_disconnect:
        raise err
