"""``cache.cached(...)``: build the wrappers of decorated functions (logic in ``_fill``).

The wrapper of a function computes the call's key (:mod:`rcache.objects._arguments`;
remembered for calls with scalar arguments) and its tags, then reads the entry (GET, PTTL
and the tag tokens, one batch sent straight through the adapter) and serves it when it is
valid and fresh. Anything else (a miss, a stale entry, an early refresh, an unreadable
entry) carries on in :func:`rcache.objects._fill.resume`, run through the cache's adapter
like any operation; with a local tier the whole call is :func:`rcache.objects._fill.call`.
The blocking and the asyncio wrapper differ only in ``await``; both are real functions
(``functools.wraps``), so frameworks that inspect a view still see a plain or a coroutine
function. Each wrapper carries:

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
from typing import Any, NamedTuple, ParamSpec, Protocol, TypeVar, cast

from rcache.errors import BackendError, ConfigurationError
from rcache.objects import _fill
from rcache.objects._arguments import key_builder, memoizable, scalar_call
from rcache.objects._context import CacheContext, remember
from rcache.objects._fill import FRESH, FillPolicy, Job, freshness, open_entry
from rcache.objects._tags import tag_ids
from rcache.objects._verbs import delete
from rcache.ops import Batch, Command, Op
from rcache.ttl import TTL, Default, to_milliseconds

__all__ = ["AsyncCachedFunction", "CachedFunction", "Options", "decorate"]

P = ParamSpec("P")
R = TypeVar("R")

#: Default single-flight lease, in seconds, for ``lock=True``.
DEFAULT_LEASE = 10.0

#: Calls (with scalar arguments) whose keys a decorated function remembers.
KEY_MEMO_SIZE = 1024

Tags = Iterable[str] | Callable[..., Iterable[str]]


class _Plan(NamedTuple):
    """What a call of a decorated function reads: its key, Redis key, tag ids and batch."""

    key: str
    redis_key: str
    tids: tuple[str, ...]
    read: Batch  # GET + PTTL of the entry, MGET of its tags' tokens


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
    send: Callable[[Batch], Any] | None = None,
) -> Any:
    """Return the wrapper of ``fn`` for a cache whose adapter runs operations with ``run``.

    ``send``: the adapter's ``execute_batch``, for reading the entry without an operation
    (None: every call runs :func:`rcache.objects._fill.call`, e.g. with a local tier).
    """
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
    memo: dict[tuple[Any, ...], _Plan] | None = {} if memoizable(fn, options.key) else None
    tags = options.tags
    tags_of = tags if callable(tags) else None
    static = () if callable(tags) else tag_ids(tags)

    def make_plan(key: str, tids: tuple[str, ...], redis_key: str | None = None) -> _Plan:
        if redis_key is None:
            redis_key = ctx.key(key)
        cmds: tuple[Command, ...] = (("GET", redis_key), ("PTTL", redis_key))
        if tids:
            cmds += (("MGET", *[ctx.tag_key(t) for t in tids]),)
        return _Plan(key, redis_key, tids, Batch(cmds))

    def plan_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Plan:
        """Return the call's plan (remembered for scalar arguments)."""
        plan = None
        if memo is not None:
            call = scalar_call(args, kwargs)
            if call is not None:
                plan = memo.get(call)
                if plan is None:
                    plan = make_plan(key_of(args, kwargs), static)
                    remember(memo, call, plan, KEY_MEMO_SIZE)
        if plan is None:
            plan = make_plan(key_of(args, kwargs), static)
        if tags_of is not None:  # the tags depend on the call: never remembered
            plan = make_plan(plan.key, tag_ids(tags_of(*args, **kwargs)), plan.redis_key)
        return plan

    def served(
        plan: _Plan, replies: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[bool, Any]:
        """Return ``(True, value)`` for a fresh hit, else ``(False, operation to run)``."""
        ctx.failures.ok()
        tids = plan.tids
        tokens = dict(zip(tids, replies[2], strict=True)) if tids else {}
        found = open_entry(ctx, replies[0], tokens, tids)
        state = FRESH
        if type(found) is tuple:
            state = freshness(policy, found[0], replies[1])
            if state == FRESH:
                ctx.stats.hits += 1
                return True, found[1]
        job = Job(ctx, policy, plan.redis_key, tids, fn, args, kwargs)
        return False, _fill.resume(job, tokens, found, state)

    wrapper: Any
    if send is None or policy.ttl_ms == 0:
        if is_async:

            @functools.wraps(fn)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                plan = plan_of(args, kwargs)
                op = _fill.call(ctx, policy, plan.redis_key, plan.tids, fn, args, kwargs)
                return await run(op)

        else:

            @functools.wraps(fn)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                plan = plan_of(args, kwargs)
                return run(_fill.call(ctx, policy, plan.redis_key, plan.tids, fn, args, kwargs))

    elif is_async:
        asend = send

        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            plan = plan_of(args, kwargs)
            try:
                replies = await asend(plan.read)
            except BackendError as err:
                ctx.failures.backend(err, "cached read")
                return await fn(*args, **kwargs)
            hit, result = served(plan, replies, args, kwargs)
            return result if hit else await run(result)

    else:
        sync_send = send

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            plan = plan_of(args, kwargs)
            try:
                replies = sync_send(plan.read)
            except BackendError as err:
                ctx.failures.backend(err, "cached read")
                return fn(*args, **kwargs)
            hit, result = served(plan, replies, args, kwargs)
            return result if hit else run(result)

    def key_for(*args: Any, **kwargs: Any) -> str:
        return plan_of(args, kwargs).key

    def invalidate(*args: Any, **kwargs: Any) -> Any:
        return run(delete(ctx, plan_of(args, kwargs).key))

    def refresh(*args: Any, **kwargs: Any) -> Any:
        plan = plan_of(args, kwargs)
        return run(_fill.refresh(ctx, policy, plan.redis_key, plan.tids, fn, args, kwargs))

    wrapper.key_for = key_for
    wrapper.invalidate = invalidate
    wrapper.refresh = refresh
    return cast(Any, wrapper)
