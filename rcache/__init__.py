"""rcache: a Redis caching toolkit for Python web apps."""

from __future__ import annotations

from rcache.adapter import AdapterStats, AsyncRedisAdapter, RedisAdapter
from rcache.config import RedisSettings
from rcache.errors import (
    AuthenticationFailed,
    BackendError,
    BackendOutOfMemory,
    BackendReadOnly,
    BackendTimeout,
    BackendUnavailable,
    CircuitOpen,
    CodecError,
    ConfigurationError,
    DecodeError,
    EncodeError,
    PoolExhausted,
    RCacheError,
)
from rcache.ops import Batch, Call, Op, Sleep
from rcache.resilience import Backoff, CircuitBreaker, RetryPolicy
from rcache.scripts import Script

__version__ = "0.1.0"

__all__ = [
    "AdapterStats",
    "AsyncRedisAdapter",
    "AuthenticationFailed",
    "BackendError",
    "BackendOutOfMemory",
    "BackendReadOnly",
    "BackendTimeout",
    "BackendUnavailable",
    "Backoff",
    "Batch",
    "Call",
    "CircuitBreaker",
    "CircuitOpen",
    "CodecError",
    "ConfigurationError",
    "DecodeError",
    "EncodeError",
    "Op",
    "PoolExhausted",
    "RCacheError",
    "RedisAdapter",
    "RedisSettings",
    "RetryPolicy",
    "Script",
    "Sleep",
    "__version__",
]
