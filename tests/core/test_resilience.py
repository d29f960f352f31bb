from __future__ import annotations

import pytest

from rcache.errors import ConfigurationError
from rcache.resilience import Backoff, CircuitBreaker, RetryPolicy


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_backoff_first_retry_is_immediate_then_grows_to_cap() -> None:
    b = Backoff(base=0.1, cap=0.5)
    assert b.compute(1) == 0.0
    # rand=1 gives the top of the jitter range, rand=0 the bottom (half).
    assert [b.compute(n, rand=lambda: 1.0) for n in (2, 3, 4, 5, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    assert [b.compute(n, rand=lambda: 0.0) for n in (2, 3, 4)] == [0.05, 0.1, 0.2]


def test_retry_policy_bounded_by_attempts_and_deadline() -> None:
    p = RetryPolicy(attempts=3, backoff=Backoff(base=0.1, cap=1.0), deadline=10.0)
    assert p.delay(1, elapsed=0.0) == 0.0
    assert p.delay(2, elapsed=0.0) is not None
    assert p.delay(3, elapsed=0.0) is None
    tight = RetryPolicy(attempts=10, backoff=Backoff(base=1.0, cap=1.0), deadline=0.5)
    assert tight.delay(1, elapsed=0.0) == 0.0
    assert tight.delay(2, elapsed=0.0) is None  # 0.5..1.0 s pause would pass the deadline


def test_retry_policy_validates() -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(attempts=0)
    with pytest.raises(ConfigurationError):
        Backoff(base=-1)


def test_breaker_opens_after_threshold_and_fails_fast() -> None:
    clock = FakeClock()
    br = CircuitBreaker(threshold=3, cooldown=2.0, clock=clock)
    assert br.allow()
    assert br.record_failure() is False
    assert br.record_failure() is False
    assert br.record_failure() is True  # third consecutive failure trips it
    assert br.state == "open"
    assert br.allow() is False


def test_success_resets_the_failure_count() -> None:
    br = CircuitBreaker(threshold=2, cooldown=1.0, clock=FakeClock())
    br.record_failure()
    br.record_success()
    assert br.record_failure() is False
    assert br.is_closed


def test_half_open_lets_one_probe_through() -> None:
    clock = FakeClock()
    br = CircuitBreaker(threshold=1, cooldown=2.0, clock=clock)
    br.record_failure()
    clock.now += 1.9
    assert br.allow() is False
    clock.now += 0.2
    assert br.state == "half-open"
    assert br.allow() is True  # the probe
    assert br.allow() is False  # everyone else still fails fast
    assert br.record_success() is True
    assert br.state == "closed" and br.allow()


def test_failed_probe_reopens_for_another_cooldown() -> None:
    clock = FakeClock()
    br = CircuitBreaker(threshold=1, cooldown=2.0, clock=clock)
    br.record_failure()
    clock.now += 2.5
    assert br.allow() is True
    br.record_failure()
    assert br.state == "open"
    clock.now += 1.0
    assert br.allow() is False
    clock.now += 1.1
    assert br.allow() is True


def test_breaker_validates() -> None:
    with pytest.raises(ConfigurationError):
        CircuitBreaker(threshold=0)
    with pytest.raises(ConfigurationError):
        CircuitBreaker(cooldown=-1)
