"""A Django session engine on the rcache session store.

::

    SESSION_ENGINE = "rcache_django.sessions"
    RCACHE_SESSIONS = {
        "URL": "redis://127.0.0.1:6379/0",      # any rcache URL: TLS, unix, Sentinel, Cluster
        "OPTIONS": {                            # optional; SessionConfig and RedisSettings fields
            "on_load_error": "anonymous",       # or "raise": a failed load answers 503
            "idle_timeout": 3600,
            "socket_timeout": 0.5,
        },
    }
    MIDDLEWARE = [
        ...,
        "rcache_django.sessions.SessionMiddleware",   # in place of Django's (see below)
        ...,
    ]

Settings. Sessions get their own ``RCACHE_SESSIONS`` block rather than a ``CACHES`` alias:
a session store is not a cache (a save never fails open, an eviction is a logout), and it
often deserves its own Redis or database. ``OPTIONS`` takes the fields of
:class:`~rcache.sessions.SessionConfig` and of :class:`~rcache.config.RedisSettings` (an
unknown name is an error). The fields Django already has a setting for are taken from it
and refused in ``OPTIONS``: ``cookie_name`` and the cookie attributes (Django's middleware
writes the cookie from its ``SESSION_COOKIE_*`` settings) and ``absolute_lifetime``
(``SESSION_COOKIE_AGE``). Other defaults: ``secret_keys = [SECRET_KEY,
*SECRET_KEY_FALLBACKS]``, ``idle_timeout = SESSION_COOKIE_AGE``. Values go through the
store's codec (json by default), not ``SESSION_SERIALIZER``, so Flask and ASGI apps
configured alike read the same sessions.

Signed ids. Django's SessionMiddleware puts ``session_key`` in the cookie as it is and signs
nothing, so the engine makes ``session_key`` the signed cookie value of the core,
``<id>.<HMAC-SHA256 signature>`` (256 random bits, then a signature by the newest secret
key). Cookies are therefore the very cookies Flask and ASGI apps send. Every read of a key
(``load``, ``exists``, ``delete``) checks the signature first: a guessed, tampered,
unsigned or retired-key value never reaches Redis and reads as "no such session". Django's
own ``_validate_session_key`` (8 characters or more) is kept, as its test contract expects.

Sessions and Django's API. ``request.session`` holds an :class:`rcache.sessions.Session`,
which records which keys a request set or deleted, and ``save()`` writes only those: two
concurrent requests that change different keys both keep their change, and a save never
recreates a session deleted meanwhile (``save()`` raises ``UpdateError``, which Django's
middleware turns into ``SessionInterrupted``). A change inside a value
(``request.session["cart"].append(1)``) counts when Django's idiom
``request.session.modified = True`` follows it: the engine compares the mutable values with
the bytes they were stored as (nothing is copied at load). ``cycle_key()`` is the core's
atomic rotation (the old key stops working at once); ``flush()`` deletes the stored session.
``create()`` and an explicit ``save()`` store a session even when it is empty, as Django's
API promises; the middleware never saves an empty new session, so bots do not fill Redis.
The ``a*`` methods (``aload``, ``asave``, ``aexists``, ``acycle_key``, ...) are native
asyncio, through an :class:`~rcache.sessions.AsyncSessionStore` of the running event loop;
the blocking methods use a :class:`~rcache.sessions.SessionStore`. Both run the same plans.

Lifetimes. ``SESSION_COOKIE_AGE`` is the absolute lifetime: a session ends that long after
its creation whatever the activity, which is also how long its cookie lives (rotation keeps
the creation time). Within it, a session ends ``idle_timeout`` after its last load or save
(default: ``SESSION_COOKIE_AGE``; set it lower in ``OPTIONS`` for an idle logout). Django's
own backends come close: their sessions end ``SESSION_COOKIE_AGE`` after the last save, and
reads do not extend them. ``get_expiry_age()`` (the cookie's Max-Age) is what is left of the
absolute lifetime. ``set_expiry()`` can shorten a session's life, never lengthen it (see
:mod:`rcache_django._sessions_policy`): seconds become a shorter idle timeout, a datetime or
timedelta a deadline, 0 a browser-session cookie. ``clear_expired()`` has nothing to do:
Redis expires the sessions.

Middleware. Django's ``SessionMiddleware`` works with this engine. The engine's
:class:`SessionMiddleware` is a drop-in replacement that sends ``Set-Cookie`` only when the
key changes (not after every change of the data, since the key stays and the expiry slides
in Redis) and answers 503 instead of 500 when Redis fails.

Failures. With ``on_load_error="anonymous"`` (the default) a request whose session cannot
be loaded sees an empty read-only session; its cookie is left alone. Saving changes to it,
rotating it, or any failed save raises a :class:`~rcache.errors.BackendError`, which
:class:`SessionMiddleware` answers with 503 (Django's own middleware would give 500), as it
does for a load that raises (``on_load_error="raise"``) inside a view.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings  # type: ignore[import-untyped, unused-ignore]
from django.contrib.sessions.backends.base import (  # type: ignore[import-untyped, unused-ignore]
    CreateError,
    SessionBase,
    UpdateError,
)
from django.utils import timezone  # type: ignore[import-untyped, unused-ignore]
from django.utils.module_loading import (  # type: ignore[import-untyped, unused-ignore]
    import_string,
)

from rcache.ops import Batch, Op

# The core's session operations, composed into the engine's own plans below so the blocking
# and the asyncio methods share one code path (the core's stores offer them as methods).
from rcache.sessions import (
    SaveStatus,
    Session,
    cookie_value,
    load_id_from_cookie,
    new_session_id,
)
from rcache.sessions import _ops as core_ops
from rcache.sessions import _rotation as core_rotation
from rcache.sessions._layout import Storage
from rcache_django._sessions_middleware import SessionMiddleware
from rcache_django._sessions_policy import EXPIRY_KEY, expiry_command
from rcache_django._sessions_stores import storage, stores

__all__ = ["SessionMiddleware", "SessionStore"]

T = TypeVar("T")
Plan = Callable[..., Op[T]]


class SessionStore(SessionBase):  # type: ignore[misc, unused-ignore]
    """Django's ``SessionBase`` on the rcache session store (see the module docstring).

    ``session_key`` is the signed cookie value of the session, or None for a session that
    is not stored yet. ``request.session`` maps keys to codec-encodable values (json: str,
    numbers, bools, None, lists and dicts).
    """

    _session_cache: Session
    _session_key: str | None  # SessionBase's validating property (8 characters or more)

    def __init__(self, session_key: str | None = None) -> None:
        # SessionBase.__init__ without its import of SESSION_SERIALIZER on every request:
        # values go through the store's codec (see the serializer property).
        self._session_key = session_key
        self.accessed = False
        self.modified = False

    @property
    def serializer(self) -> Any:
        """``SESSION_SERIALIZER``, for SessionBase's ``encode()`` and ``decode()`` only."""
        return import_string(settings.SESSION_SERIALIZER)

    # -- driving the plans -------------------------------------------------------------------

    @staticmethod
    def _run(plan: Plan[T], *args: Any) -> T:
        store = stores.sync()
        return store.adapter.run(plan(storage(store), *args))

    @staticmethod
    async def _arun(plan: Plan[T], *args: Any) -> T:
        store = await stores.async_()
        return await store.adapter.run(plan(storage(store), *args))

    def _adopt(self, session: Session) -> Session:
        self._session_cache = session
        return session

    def _cached(self) -> Session | None:
        cached: Session | None = self.__dict__.get("_session_cache")
        return cached

    # -- the session data --------------------------------------------------------------------

    def _get_session(self, no_load: bool = False) -> Session:
        self.accessed = True
        session = self._cached()
        if session is not None:
            return session
        if self.session_key is None or no_load:
            return self._adopt(Session())
        return self._adopt(self.load())

    async def _aget_session(self, no_load: bool = False) -> Session:
        self.accessed = True
        session = self._cached()
        if session is not None:
            return session
        if self.session_key is None or no_load:
            return self._adopt(Session())
        return self._adopt(await self.aload())

    _session = property(_get_session)

    def clear(self) -> None:
        """Remove every key; the next save deletes them from the stored session.

        Unlike Django's backends this loads the session first (one round trip, if not
        loaded yet), to know which keys to delete.
        """
        self._get_session().clear()
        self.accessed = True
        self.modified = True

    # -- the plans: written once, run by the blocking and the asyncio store ----------------

    def _session_plan(self, st: Storage) -> Op[Session]:
        self.accessed = True
        session = self._cached()
        if session is not None:
            return session
        if self.session_key is None:
            return self._adopt(Session())
        loaded = yield from self._load_plan(st)
        return self._adopt(loaded)

    def _load_plan(self, st: Storage) -> Op[Session]:
        session_id = load_id_from_cookie(self.session_key, st.config)
        session = yield from core_ops.load(st, session_id)
        if session.degraded:
            return session  # keep the key: the visitor's real session must survive
        if session.is_new:
            self._session_key = None  # unknown, expired or forged: never adopt the key
            return session
        if EXPIRY_KEY in session:
            command = expiry_command(
                st.key(session.id), session[EXPIRY_KEY], timezone.now(), st.config.idle_ms
            )
            if command is not None:
                yield Batch([command])
                if command[0] == "DEL":  # its custom deadline has passed
                    self._session_key = None
                    return Session()
        return session

    def _expiry_plan(self, st: Storage, session: Session) -> Op[None]:
        if EXPIRY_KEY not in session or not session.stored:
            return
        command = expiry_command(
            st.key(session.id), session[EXPIRY_KEY], timezone.now(), st.config.idle_ms
        )
        if command is not None:
            yield Batch([command])

    def _create_plan(self, st: Storage, session: Session) -> Op[None]:
        session.mark_modified()
        # The core never stores an empty session from save(); Django's create() and an
        # explicit save() of a new session promise a stored (possibly empty) one.
        yield from core_ops._create(st, session)
        self._session_key = cookie_value(session.id, st.config)
        yield from self._expiry_plan(st, session)

    def _save_plan(self, st: Storage, must_create: bool) -> Op[None]:
        session = self._cached()
        if session is None:
            had_key = self.session_key is not None
            session = yield from self._session_plan(st)
            if had_key and self.session_key is None:
                raise UpdateError  # the stored session is gone: never recreate it
        if session.stored or session.degraded:
            if must_create and session.stored:
                raise CreateError
            if self.modified:
                for key in core_ops.changed_in_place(st, session):
                    session.mark_modified(key)
            status = yield from core_ops.save(st, session)
            if status is SaveStatus.GONE:
                raise UpdateError
            if status is not SaveStatus.UNCHANGED:
                yield from self._expiry_plan(st, session)
            return
        if session.gone:
            raise UpdateError
        yield from self._create_plan(st, session)

    def _new_plan(self, st: Storage) -> Op[None]:
        current = self._cached()
        session = Session()
        if current is not None:
            session.update(current.items())
        yield from self._create_plan(st, session)
        self._session_cache = session
        self.modified = True

    def _exists_plan(self, st: Storage, session_key: str | None) -> Op[bool]:
        session_id = load_id_from_cookie(session_key, st.config)
        if session_id is None:
            return False
        (found,) = yield Batch([("EXISTS", st.key(session_id))])
        return bool(found)

    def _delete_plan(self, st: Storage, session_key: str | None) -> Op[None]:
        session_id = load_id_from_cookie(session_key, st.config)
        if session_id is not None:
            yield from core_rotation.delete(st, session_id)

    def _cycle_plan(self, st: Storage) -> Op[None]:
        session = yield from self._session_plan(st)
        yield from core_rotation.rotate(st, session)
        self._session_key = cookie_value(session.id, st.config) if session.stored else None
        self.modified = True

    def _flush_plan(self, st: Storage) -> Op[None]:
        session = self._cached()
        if session is not None and (session.stored or session.degraded):
            yield from core_rotation.flush(st, session)  # a stand-in's real session too
        else:  # not loaded (or not stored): delete whatever the key names
            yield from self._delete_plan(st, self.session_key)
            session = Session()
        self._adopt(session)
        self._session_key = None
        self.accessed = True
        self.modified = True

    # -- SessionBase's storage API ----------------------------------------------------------

    def load(self) -> Session:
        """Load the session named by ``session_key`` (a new empty one if there is none).

        An unknown, expired or forged key is dropped (``session_key`` becomes None).
        """
        return self._run(self._load_plan)

    async def aload(self) -> Session:
        """Load the session named by ``session_key``: :meth:`load`, awaited."""
        return await self._arun(self._load_plan)

    def exists(self, session_key: str | None) -> bool:
        """Return whether ``session_key`` names a stored session (a forged one never does)."""
        return self._run(self._exists_plan, session_key)

    async def aexists(self, session_key: str | None) -> bool:
        """Return whether ``session_key`` names a stored session: :meth:`exists`, awaited."""
        return await self._arun(self._exists_plan, session_key)

    def create(self) -> None:
        """Store a new session (with the current data, possibly none) under a new key."""
        self._run(self._new_plan)

    async def acreate(self) -> None:
        """Store a new session under a new key: :meth:`create`, awaited."""
        await self._arun(self._new_plan)

    def save(self, must_create: bool = False) -> None:
        """Write the keys that changed; store the session first if it is new.

        Raises ``UpdateError`` when the stored session was deleted meanwhile (it is not
        recreated), ``CreateError`` for ``must_create`` on a stored session,
        :class:`~rcache.sessions.SessionTooLarge` above ``max_session_bytes`` and
        :class:`~rcache.errors.BackendError` when Redis fails (nothing is dropped silently).
        """
        self._run(self._save_plan, must_create)

    async def asave(self, must_create: bool = False) -> None:
        """Write the keys that changed: :meth:`save`, awaited."""
        await self._arun(self._save_plan, must_create)

    def delete(self, session_key: str | None = None) -> None:
        """Delete the stored session ``session_key`` (default: this one)."""
        key = self.session_key if session_key is None else session_key
        if key is not None:
            self._run(self._delete_plan, key)

    async def adelete(self, session_key: str | None = None) -> None:
        """Delete the stored session ``session_key``: :meth:`delete`, awaited."""
        key = self.session_key if session_key is None else session_key
        if key is not None:
            await self._arun(self._delete_plan, key)

    def cycle_key(self) -> None:
        """Give the session a new key, keeping its data; the old key stops working at once."""
        self._run(self._cycle_plan)

    async def acycle_key(self) -> None:
        """Give the session a new key: :meth:`cycle_key`, awaited."""
        await self._arun(self._cycle_plan)

    def flush(self) -> None:
        """Delete the stored session and start a new, empty one without a key (logout)."""
        self._run(self._flush_plan)

    async def aflush(self) -> None:
        """Delete the stored session and start a new one: :meth:`flush`, awaited."""
        await self._arun(self._flush_plan)

    def get_session_cookie_age(self) -> int:
        """Return ``SESSION_COOKIE_AGE``, capped by the absolute lifetime left (seconds)."""
        age: int = settings.SESSION_COOKIE_AGE
        session = self._cached()
        left = session.lifetime_left if session is not None else None
        if left is not None:
            return max(0, min(age, int(left)))
        return age

    def _get_new_session_key(self) -> str:
        return cookie_value(new_session_id(), stores.config().session)

    async def _aget_new_session_key(self) -> str:
        return self._get_new_session_key()

    @classmethod
    def clear_expired(cls) -> None:
        """Do nothing: Redis removes expired sessions itself."""

    @classmethod
    async def aclear_expired(cls) -> None:
        """Do nothing: Redis removes expired sessions itself."""
