"""Tests for rcache.ttl: TTL normalisation, the DEFAULT sentinel, jitter, sliding expiry, XFetch."""

from __future__ import annotations

import ast
import copy
import math
import pickle
import random
from datetime import timedelta
from decimal import Decimal
from enum import IntEnum
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rcache.ttl
from rcache.errors import ConfigurationError
from rcache.ttl import (
    DEFAULT,
    MAX_TTL_MS,
    Default,
    jittered,
    sliding_expiry,
    to_milliseconds,
    xfetch_should_refresh,
)

PROPERTY = settings(max_examples=300, deadline=None)


# --- DEFAULT ------------------------------------------------------------------------------


def test_default_is_a_singleton_of_its_own_type_with_a_repr() -> None:
    assert isinstance(DEFAULT, Default)
    assert list(Default) == [DEFAULT]
    assert repr(DEFAULT) == "DEFAULT" == str(DEFAULT)
    assert copy.copy(DEFAULT) is DEFAULT
    assert copy.deepcopy(DEFAULT) is DEFAULT
    assert pickle.loads(pickle.dumps(DEFAULT)) is DEFAULT
    assert DEFAULT is not None and DEFAULT != 0


def test_default_resolves_to_the_given_default() -> None:
    assert to_milliseconds(DEFAULT, default=30) == 30_000
    assert to_milliseconds(DEFAULT, default=timedelta(minutes=1)) == 60_000
    assert to_milliseconds(DEFAULT, default=None) is None
    assert to_milliseconds(5, default=30) == 5_000  # an explicit TTL wins
    assert to_milliseconds(None, default=30) is None  # None is "never", not "default"
    with pytest.raises(ConfigurationError):
        to_milliseconds(DEFAULT)
    with pytest.raises(ConfigurationError):
        to_milliseconds(DEFAULT, default="30")  # type: ignore[arg-type]


# --- to_milliseconds ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "ms"),
    [
        (None, None),
        (1, 1000),
        (300, 300_000),
        (0, 0),
        (-5, 0),
        (0.0, 0),
        (-0.5, 0),
        (1.1, 1100),
        (2.007, 2007),  # not 2008 (2.007 * 1000 is 2007.0000000000002): read as written
        (4.03, 4030),
        (0.1 + 0.2, 301),  # 0.30000000000000004 s really is a hair over 300 ms
        (2.5, 2500),
        (0.0001, 1),  # rounded up: a positive TTL never becomes "expired"
        (1e-300, 1),
        (0.0015, 2),
        (timedelta(seconds=2), 2000),
        (timedelta(microseconds=1), 1),
        (timedelta(microseconds=1001), 2),
        (timedelta(milliseconds=-1), 0),
        (timedelta(0), 0),
        (timedelta(days=1), 86_400_000),
    ],
)
def test_to_milliseconds(ttl: Any, ms: int | None) -> None:
    result = to_milliseconds(ttl)
    assert result == ms
    assert result is None or type(result) is int


def test_int_and_float_subclasses_are_accepted() -> None:
    class Seconds(IntEnum):
        MINUTE = 60

    class MyFloat(float):
        def __repr__(self) -> str:
            return f"MyFloat({float(self)})"

    assert to_milliseconds(Seconds.MINUTE) == 60_000
    assert to_milliseconds(MyFloat(1.5)) == 1500


@pytest.mark.parametrize(
    "bad",
    [True, False, "10", b"10", Decimal("1"), [1], math.nan, math.inf, -math.inf, object()],
)
def test_to_milliseconds_rejects(bad: Any) -> None:
    with pytest.raises(ConfigurationError):
        to_milliseconds(bad)


def test_to_milliseconds_rejects_absurdly_long_ttls() -> None:
    assert to_milliseconds(MAX_TTL_MS // 1000) == MAX_TTL_MS // 1000 * 1000
    with pytest.raises(ConfigurationError):
        to_milliseconds(MAX_TTL_MS)
    with pytest.raises(ConfigurationError):
        to_milliseconds(1e300)


@PROPERTY
@given(st.floats(min_value=1e-9, max_value=1e9))
def test_positive_float_seconds_round_up_to_a_whole_ms(seconds: float) -> None:
    ms = to_milliseconds(seconds)
    assert isinstance(ms, int) and ms >= 1
    exact = Decimal(repr(seconds)) * 1000
    assert ms - 1 < exact <= ms


@PROPERTY
@given(st.integers(min_value=-(10**6), max_value=10**6))
def test_timedelta_rounds_up_to_a_whole_ms(us: int) -> None:
    expected = max(0, math.ceil(Decimal(us) / 1000))
    assert to_milliseconds(timedelta(microseconds=us)) == expected


# --- jittered -----------------------------------------------------------------------------


def test_jittered_spans_plus_minus_fraction() -> None:
    assert jittered(10_000, 0.1, rand=lambda: 0.0) == 9_000
    assert jittered(10_000, 0.1, rand=lambda: 0.5) == 10_000
    assert jittered(10_000, 0.1, rand=lambda: 0.9999999) == 11_000
    assert jittered(10_000, 0.0, rand=lambda: 0.0) == 10_000


def test_jittered_never_goes_below_one_ms_and_keeps_zero() -> None:
    assert jittered(1, 1.0, rand=lambda: 0.0) == 1
    assert jittered(3, 1.0, rand=lambda: 0.0) == 1
    assert jittered(0, 0.5, rand=lambda: 0.0) == 0


def test_jittered_actually_spreads() -> None:
    rng = random.Random(7)
    values = {jittered(60_000, rand=rng.random) for _ in range(200)}
    assert len(values) > 100
    assert min(values) >= 54_000 and max(values) <= 66_000
    assert min(values) < 56_000 and max(values) > 64_000


@PROPERTY
@given(
    ms=st.integers(min_value=1, max_value=10**12),
    fraction=st.floats(min_value=0.0, max_value=1.0),
    r=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_jittered_bounds(ms: int, fraction: float, r: float) -> None:
    out = jittered(ms, fraction, rand=lambda: r)
    assert isinstance(out, int) and out >= 1
    assert math.floor(ms * (1 - fraction)) - 1 <= out <= math.ceil(ms * (1 + fraction)) + 1


@pytest.mark.parametrize(
    ("ms", "fraction"),
    [(-1, 0.1), (1.5, 0.1), (True, 0.1), (100, -0.1), (100, 1.5), (100, math.nan)],
)
def test_jittered_validates(ms: Any, fraction: float) -> None:
    with pytest.raises(ConfigurationError):
        jittered(ms, fraction)


# --- sliding_expiry -----------------------------------------------------------------------


def test_sliding_expiry() -> None:
    now = 1_000_000
    assert sliding_expiry(30_000, None, now) == 30_000  # idle timeout only
    assert sliding_expiry(30_000, now + 60_000, now) == 30_000  # far from the cap
    assert sliding_expiry(30_000, now + 10_000, now) == 10_000  # the cap wins
    assert sliding_expiry(30_000, now + 0.2, now) == 1  # a fraction of a ms left: still alive
    assert sliding_expiry(30_000, now, now) == 0  # at the deadline: gone
    assert sliding_expiry(30_000, now - 5, now) == 0
    assert sliding_expiry(None, now + 10_000, now) == 10_000  # absolute deadline only
    assert sliding_expiry(None, None, now) is None  # no limit at all
    assert sliding_expiry(0, now + 10_000, now) == 0


def test_sliding_expiry_validates() -> None:
    with pytest.raises(ConfigurationError):
        sliding_expiry(-1, None, 0)
    with pytest.raises(ConfigurationError):
        sliding_expiry(10, math.nan, 0)
    with pytest.raises(ConfigurationError):
        sliding_expiry(10, math.inf, 0)


# --- XFetch -------------------------------------------------------------------------------


def test_xfetch_rule_at_the_threshold() -> None:
    # u = e^-2 gives a gap of exactly 2 * compute * beta.
    u = math.exp(-2)
    assert xfetch_should_refresh(compute_ms=100, ttl_remaining_ms=199, rand=lambda: u)
    assert not xfetch_should_refresh(compute_ms=100, ttl_remaining_ms=201, rand=lambda: u)
    assert xfetch_should_refresh(compute_ms=100, ttl_remaining_ms=399, beta=2.0, rand=lambda: u)
    assert not xfetch_should_refresh(compute_ms=100, ttl_remaining_ms=101, beta=0.5, rand=lambda: u)


def test_xfetch_edge_cases() -> None:
    never = lambda: 0.999999  # noqa: E731  (gap close to 0)
    assert xfetch_should_refresh(compute_ms=100, ttl_remaining_ms=0, rand=never)  # expired
    assert xfetch_should_refresh(compute_ms=100, ttl_remaining_ms=-1, rand=never)
    assert xfetch_should_refresh(compute_ms=100, ttl_remaining_ms=10**9, rand=lambda: 0.0)
    assert not xfetch_should_refresh(compute_ms=0, ttl_remaining_ms=1, rand=lambda: 0.0)
    assert not xfetch_should_refresh(compute_ms=100, ttl_remaining_ms=1, beta=0, rand=lambda: 0.0)
    assert not xfetch_should_refresh(compute_ms=100, ttl_remaining_ms=math.inf, rand=lambda: 0.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"compute_ms": -1, "ttl_remaining_ms": 10},
        {"compute_ms": math.nan, "ttl_remaining_ms": 10},
        {"compute_ms": math.inf, "ttl_remaining_ms": 10},
        {"compute_ms": 10, "ttl_remaining_ms": math.nan},
        {"compute_ms": 10, "ttl_remaining_ms": 10, "beta": -1.0},
    ],
)
def test_xfetch_validates(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        xfetch_should_refresh(**kwargs)


def test_xfetch_probability_matches_the_paper() -> None:
    # P(refresh) = exp(-remaining / (compute * beta)).
    rng = random.Random(2015)
    n = 20_000
    for remaining, expected in ((50, math.exp(-0.5)), (100, math.exp(-1)), (300, math.exp(-3))):
        hits = sum(
            xfetch_should_refresh(compute_ms=100, ttl_remaining_ms=remaining, rand=rng.random)
            for _ in range(n)
        )
        assert abs(hits / n - expected) < 0.015, (remaining, hits / n, expected)


def test_module_never_imports_redis() -> None:
    tree = ast.parse(Path(rcache.ttl.__file__).read_text(encoding="utf-8"))
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert "random" in imported
    assert not any(str(m).split(".")[0] == "redis" for m in imported)
