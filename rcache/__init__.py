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
from rcache.hotkeys import HotKeys
from rcache.metrics import Metrics, server_info
from rcache.objects import (
    MISSING,
    AsyncObjectCache,
    LocalTier,
    LockNotAcquired,
    NotAnInteger,
    ObjectCache,
)
from rcache.ops import Batch, Call, Op, Sleep
from rcache.pages import AsyncPageCache, PageCache, PageCachePolicy
from rcache.resilience import Backoff, CircuitBreaker, RetryPolicy
from rcache.scripts import Script
from rcache.sessions import (
    AsyncSessionStore,
    SaveStatus,
    Session,
    SessionConfig,
    SessionStore,
    SessionTooLarge,
    SessionUnavailable,
)

__version__ = "0.1.0"

__all__ = [
    "AdapterStats",
    "AsyncObjectCache",
    "AsyncPageCache",
    "AsyncRedisAdapter",
    "AsyncSessionStore",
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
    "HotKeys",
    "LocalTier",
    "LockNotAcquired",
    "MISSING",
    "Metrics",
    "NotAnInteger",
    "ObjectCache",
    "Op",
    "PageCache",
    "PageCachePolicy",
    "PoolExhausted",
    "RCacheError",
    "RedisAdapter",
    "RedisSettings",
    "RetryPolicy",
    "SaveStatus",
    "Script",
    "Session",
    "SessionConfig",
    "SessionStore",
    "SessionTooLarge",
    "SessionUnavailable",
    "Sleep",
    "__version__",
    "server_info",
]
