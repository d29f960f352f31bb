"""The rcache exception tree.

::

    RCacheError
    ├── ConfigurationError(RCacheError, ValueError)   bad URL, option or setting
    ├── CodecError
    │   ├── EncodeError                                 a value that cannot be serialized
    │   └── DecodeError                                 a corrupt, truncated or unsigned payload
    └── BackendError                                    Redis could not do what was asked
        ├── BackendUnavailable                          cannot connect / connection lost
        │   ├── CircuitOpen                             failing fast while Redis is down
        │   └── PoolExhausted                           no free pooled connection in time
        ├── BackendTimeout(BackendError, TimeoutError)  no answer within the socket timeout
        ├── AuthenticationFailed                        wrong user or password (not retried)
        ├── BackendReadOnly                             READONLY: talking to a replica
        └── BackendOutOfMemory                          OOM: maxmemory reached, no eviction

A miss is a return value, never an exception. ``redis.exceptions`` are translated into
this tree in one place, :mod:`rcache.adapter`, always with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "BackendError",
    "BackendOutOfMemory",
    "BackendReadOnly",
    "BackendTimeout",
    "BackendUnavailable",
    "CircuitOpen",
    "CodecError",
    "ConfigurationError",
    "DecodeError",
    "EncodeError",
    "PoolExhausted",
    "RCacheError",
]


class RCacheError(Exception):
    """Base class of every error rcache raises on purpose."""


class ConfigurationError(RCacheError, ValueError):
    """A URL, option or setting is malformed or unknown; the message names it."""


class CodecError(RCacheError):
    """A value could not be encoded, or a stored payload could not be decoded."""


class EncodeError(CodecError):
    """A value cannot be serialized by the configured serializer."""


class DecodeError(CodecError):
    """A stored payload is corrupt, truncated, unknown or fails its signature check."""


class BackendError(RCacheError):
    """Redis could not carry out an operation."""


class BackendUnavailable(BackendError):
    """Redis cannot be reached, or the connection was lost mid-operation."""


class CircuitOpen(BackendUnavailable):
    """The circuit breaker is open: Redis failed recently, so the call fails fast."""


class PoolExhausted(BackendUnavailable):
    """Every pooled connection stayed busy for ``pool_timeout`` seconds. Not retried."""


class BackendTimeout(BackendError, TimeoutError):
    """Redis did not answer within the configured socket timeout."""


class AuthenticationFailed(BackendError):
    """Redis refused the username or password (ACL). Not retried."""


class BackendReadOnly(BackendError):
    """The server is a read-only replica (READONLY), e.g. during a failover."""


class BackendOutOfMemory(BackendError):
    """The server is at ``maxmemory`` and its policy evicts nothing (OOM)."""
