"""``cache.cached(...)``: build the wrappers of decorated functions (logic in ``_fill``).

The wrapper of a function computes the call's key (:mod:`rcache.objects._arguments`) and
its tags, then runs :func:`rcache.objects._fill.call` through the cache's adapter. The
blocking and the asyncio wrapper differ only in ``return`` versus ``return await``; both
are real functions (``functools.wraps``), so frameworks that inspect a view still see a
plain or a coroutine function. Each wrapper carries:

- ``key_for(*args, **kwargs)``: the cache key of that call (``cache.get(f.key_for(1))``);
- ``invalidate(*args, **kwargs)``: delete that call's entry; returns whether it existed;
- ``refresh(*args, **kwargs)``: compute now and store, whatever is cached; returns the value.

For methods, these helpers take the instance explicitly: ``Repo.find.invalidate(repo, 3)``.
The instance is part of the key like any argument, so its class needs ``__cache_key__``
(return ``None`` to share entries between all instances).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from rcache.errors import ConfigurationError
from rcache.objects import _fill
from rcache.objects._arguments import key_builder
from rcache.objects._context import CacheContext
from rcache.objects._fill import FillPolicy
from rcache.objects._tags import tag_ids
from rcache.objects._verbs import delete
from rcache.ops import Op
from rcache.ttl import TTL, Default, to_milliseconds

__all__ = ["AsyncCachedFunction", "CachedFunction", "Options", "decorate"]

P = ParamSpec("P")
R = TypeVar("R")

#: Default single-flight lease, in seconds, for ``lock=True``.
DEFAULT_LEASE = 10.0

Tags = Iterable[str] | Callable[..., Iterable[str]]


class CachedFunction(Protocol[P, R]):
    """A function decorated by :meth:`ObjectCache.cached`."""

    __wrapped__: Callable[P, R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def key_for(self, *args: P.args, **kwargs: P.kwargs) -> str: ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool: ...

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R: ...


class AsyncCachedFunction(Protocol[P, R]):
    """A coroutine function decorated by :meth:`AsyncObjectCache.cached`."""

    __wrapped__: Callable[P, Awaitable[R]]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]: ...

    def key_for(self, *args: P.args, **kwargs: P.kwargs) -> str: ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, bool]: ...

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]: ...


class Options:
    """The arguments of ``cached(...)``, checked once, when the function is decorated."""

    def __init__(
        self,
        ttl: TTL | Default,
        key: str | Callable[..., str] | None,
        tags: Tags,
        stale_ttl: TTL,
        lock: bool | float,
        cache_none: bool,
        xfetch_beta: float,
    ) -> None:
        self.ttl = ttl
        self.key = key
        self.tags = tags
        if stale_ttl is None:
            raise ConfigurationError("stale_ttl must be seconds >= 0 (0 = no stale window)")
        self.stale_ms = to_milliseconds(stale_ttl) or 0
        if lock is True:
            lock = DEFAULT_LEASE
        if lock is False:
            self.lease_ms = None
        else:
            lease = to_milliseconds(lock)
            if not lease:
                raise ConfigurationError("lock= must be True, False or a lease in seconds > 0")
            self.lease_ms = lease
        self.cache_none = bool(cache_none)
        if not xfetch_beta >= 0:
            raise ConfigurationError("xfetch_beta must be >= 0 (0 turns early refresh off)")
        self.beta = float(xfetch_beta)


def decorate(
    ctx: CacheContext,
    run: Callable[[Op[Any]], Any],
    is_async: bool,
    fn: Callable[..., Any],
    options: Options,
) -> Any:
    """Return the wrapper of ``fn`` for a cache whose adapter runs operations with ``run``."""
    if not callable(fn):
        raise TypeError(f"cached() decorates functions, not {type(fn).__name__}")
    if inspect.iscoroutinefunction(fn) != is_async:
        if is_async:
            raise TypeError(
                f"AsyncObjectCache.cached() decorates coroutine functions (async def); "
                f"{fn.__qualname__} is not one: use ObjectCache.cached() for it"
            )
        raise TypeError(
            f"ObjectCache.cached() decorates plain functions; {fn.__qualname__} is a "
            "coroutine function (async def): use AsyncObjectCache.cached() for it"
        )
    policy = FillPolicy(
        name=f"{fn.__module__}.{fn.__qualname__}",
        ttl_ms=ctx.ttl_ms(options.ttl),
        stale_ms=options.stale_ms,
        lease_ms=options.lease_ms,
        cache_none=options.cache_none,
        beta=options.beta,
        capture=_fill.acapture if is_async else _fill.capture,
    )
    key_of = key_builder(fn, options.key)
    tags = options.tags
    if callable(tags):
        tags_of = tags

        def tids_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, ...]:
            return tag_ids(tags_of(*args, **kwargs))

    else:
        static = tag_ids(tags)

        def tids_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, ...]:
            return static

    def op(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Op[Any]:
        return _fill.call(
            ctx, policy, key_of(args, kwargs), tids_of(args, kwargs), fn, args, kwargs
        )

    wrapper: Any
    if is_async:

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await run(op(args, kwargs))

    else:

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return run(op(args, kwargs))

    def key_for(*args: Any, **kwargs: Any) -> str:
        return key_of(args, kwargs)

    def invalidate(*args: Any, **kwargs: Any) -> Any:
        return run(delete(ctx, key_of(args, kwargs)))

    def refresh(*args: Any, **kwargs: Any) -> Any:
        key, tids = key_of(args, kwargs), tids_of(args, kwargs)
        return run(_fill.refresh(ctx, policy, key, tids, fn, args, kwargs))

    wrapper.key_for = key_for
    wrapper.invalidate = invalidate
    wrapper.refresh = refresh
    return cast(Any, wrapper)
