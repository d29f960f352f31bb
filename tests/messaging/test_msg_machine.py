"""The subscriber's state machine and loop, without Redis (a fake clock, scripted replies)."""

from __future__ import annotations

from typing import Any

import pytest

from rcache.errors import BackendError, BackendUnavailable
from rcache.messaging._machine import (
    CHECK_MASTER,
    CONNECT,
    FLUSH,
    RUN_HOOKS,
    Drop,
    Message,
    Pause,
    Read,
    SubscriptionMachine,
)
from rcache.messaging._pump import pump
from rcache.resilience import Backoff


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def machine(**options: Any) -> SubscriptionMachine:
    options.setdefault("backoff", Backoff(base=0.1, cap=0.4))
    options.setdefault("health_check_interval", 5.0)
    options.setdefault("reply_timeout", 1.0)
    return SubscriptionMachine(**options)


def connect(m: SubscriptionMachine, now: float) -> list[Any]:
    assert m.next_step(now) is CONNECT
    m.on_connected(now)
    assert m.next_step(now) is FLUSH
    return m.take_sends(now)


def confirm(m: SubscriptionMachine, now: float, commands: list[Any]) -> None:
    for command in commands:
        kind = {"SUBSCRIBE": b"subscribe", "PSUBSCRIBE": b"psubscribe"}[command[0]]
        for i, name in enumerate(command[1:]):
            m.on_frame(now, [kind, name, i + 1])


def test_nothing_wanted_means_no_connection() -> None:
    m = machine()
    assert isinstance(m.next_step(0.0), Pause)
    assert m.settled()


def test_resubscribes_everything_and_backs_off_between_attempts() -> None:
    m = machine()
    m.want("channels", [b"a", b"b"])
    m.want("patterns", [b"p.*"])
    sends = connect(m, 0.0)
    assert sends == [("SUBSCRIBE", b"a", b"b"), ("PSUBSCRIBE", b"p.*")]
    assert not m.connected
    confirm(m, 0.0, sends)
    assert m.connected and m.settled() and m.stats.connects == 1

    m.on_lost(1.0, BackendUnavailable("gone"))
    assert m.next_step(1.0) is CONNECT  # the first retry is immediate
    m.on_lost(1.0, BackendUnavailable("refused"))
    pause = m.next_step(1.0)
    assert isinstance(pause, Pause) and 0.05 <= pause.seconds <= 0.1
    m.on_lost(2.0, BackendUnavailable("refused"))
    m.on_lost(3.0, BackendUnavailable("refused"))
    m.on_lost(4.0, BackendUnavailable("refused"))
    pause = m.next_step(4.0)
    assert isinstance(pause, Pause) and pause.seconds <= 0.4  # capped
    assert m.stats.disconnects == 1 and m.stats.failed_connects == 4

    sends = connect(m, 5.0)
    assert sends == [("SUBSCRIBE", b"a", b"b"), ("PSUBSCRIBE", b"p.*")]
    confirm(m, 5.0, sends)
    assert m.failures == 0


def test_messages_wait_for_the_hooks_after_a_reconnect() -> None:
    m = machine()
    m.want("channels", [b"a"])
    confirm(m, 0.0, connect(m, 0.0))
    m.on_frame(0.0, [b"message", b"a", b"1"])
    assert list(m.ready) == [Message("a", b"1")]
    m.ready.clear()
    m.on_lost(1.0, BackendUnavailable("gone"))
    sends = connect(m, 1.0)
    m.on_frame(1.1, [b"message", b"a", b"early"])  # before the confirmation even
    confirm(m, 1.2, sends)
    m.on_frame(1.3, [b"message", b"a", b"late"])
    assert not m.ready and m.next_step(1.3) is RUN_HOOKS
    m.hooks_done(1.5)
    assert [msg.data for msg in m.ready] == [b"early", b"late"]
    assert m.stats.reconnects == 1 and m.stats.last_outage == pytest.approx(0.5)


def test_idle_connection_is_pinged_and_given_up_without_a_reply() -> None:
    m = machine(health_check_interval=2.0, reply_timeout=0.5)
    m.want("channels", [b"a"])
    confirm(m, 0.0, connect(m, 0.0))
    step = m.next_step(0.5)
    assert isinstance(step, Read) and step.seconds == pytest.approx(1.5)
    assert m.next_step(2.0) is FLUSH
    assert m.take_sends(2.0) == [("PING", b"rcache-health-check")]
    assert m.next_step(2.2) == Read(pytest.approx(0.3))
    m.on_frame(2.3, [b"pong", b"rcache-health-check"])  # RESP2 in subscribed mode
    assert m.connected and m.next_step(2.3) == Read(pytest.approx(2.0))
    assert m.next_step(4.3) is FLUSH and m.take_sends(4.3)
    m.on_frame(4.4, b"rcache-health-check")  # RESP3: a plain reply
    assert m.next_step(4.4) == Read(pytest.approx(2.0))
    assert m.next_step(6.4) is FLUSH and m.take_sends(6.4)
    step = m.next_step(7.0)
    assert isinstance(step, Drop) and "no reply" in step.reason


def test_a_refused_subscription_does_not_block_the_rest() -> None:
    m = machine()
    m.want("channels", [b"secret", b"open"])
    m.want("patterns", [b"p*"])
    sends = connect(m, 0.0)
    m.on_frame(0.1, BackendError("NOPERM no permissions to access a channel"))
    m.on_frame(0.1, [b"psubscribe", b"p*", 1])
    assert m.connected and m.stats.refused == 1
    assert len(sends) == 2


def test_unsubscribe_and_messages_of_unwanted_channels() -> None:
    m = machine()
    m.want("channels", [b"a", b"b"])
    confirm(m, 0.0, connect(m, 0.0))
    m.unwant("channels", [b"b"])
    assert m.next_step(0.0) is FLUSH
    assert m.take_sends(0.0) == [("UNSUBSCRIBE", b"b")]
    m.on_frame(0.1, [b"message", b"b", b"stale"])  # in flight before the UNSUBSCRIBE
    m.on_frame(0.1, [b"unsubscribe", b"b", 1])
    assert not m.ready and m.settled()


def test_sentinel_master_is_checked_every_interval() -> None:
    m = machine(health_check_interval=1.0, check_master=True)
    m.want("channels", [b"a"])
    confirm(m, 0.0, connect(m, 0.0))
    assert isinstance(m.next_step(0.5), Read)
    assert m.next_step(1.0) is FLUSH  # the PING comes first
    m.take_sends(1.0)
    m.on_frame(1.0, b"rcache-health-check")
    assert m.next_step(1.0) is CHECK_MASTER
    assert isinstance(m.next_step(1.0), Read)  # not again before another interval


def drive(
    loop: Any, script: list[Any], m: SubscriptionMachine | None = None, now: float = 100.0
) -> list[Any]:
    """Run ``pump`` with scripted outcomes (an exception is thrown in); return the effects.

    Like the real drivers, a FLUSH takes the machine's sends (``m``).
    """
    effects = []
    result: Any = None
    error: BaseException | None = None
    while len(effects) < 100:
        try:
            effect = loop.throw(error) if error is not None else loop.send(result)
        except StopIteration:
            return effects
        effects.append(effect)
        if effect is FLUSH and m is not None:
            m.take_sends(now)
        outcome = script.pop(0) if script else None
        result, error = (None, outcome) if isinstance(outcome, BaseException) else (outcome, None)
    raise AssertionError(f"the loop did not end: {effects[-5:]}")


def test_pump_reconnects_quietly_or_raises_when_asked() -> None:
    clock = Clock()
    m = machine(clock=clock)
    m.want("channels", [b"a"])
    loop = pump(m, until=lambda: bool(m.ready), timeout=None, clock=clock)
    script: list[Any] = [
        BackendUnavailable("refused"),  # CONNECT fails
        None,  # DROP
        None,  # CONNECT (immediate retry)
        None,  # FLUSH
        [b"subscribe", b"a", 1],  # READ
        [b"message", b"a", b"hi"],  # READ
    ]
    effects = drive(loop, script, m)
    assert effects[:3] == [CONNECT, Drop("refused"), CONNECT]
    assert m.ready.popleft() == Message("a", b"hi")

    strict = pump(m, until=lambda: False, timeout=None, raise_on_disconnect=True, clock=clock)
    with pytest.raises(BackendUnavailable, match="reset"):
        drive(strict, [BackendUnavailable("reset")])  # the first READ fails


def test_pump_stops_at_its_timeout_and_when_closed() -> None:
    clock = Clock()
    m = machine(clock=clock)
    loop = pump(m, until=lambda: False, timeout=1.0, clock=clock)
    assert next(loop) == Pause(1.0)  # nothing wanted: wait for the timeout
    clock.now += 1.0
    with pytest.raises(StopIteration):
        loop.send(None)
    m.close()
    assert drive(pump(m, until=lambda: False, timeout=None, clock=clock), []) == []
