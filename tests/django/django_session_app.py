"""A tiny Django app whose views use the session the ways real apps do.

``HOOKS["after_load"]``, when a test sets it, runs inside a view right after the session
was loaded and before it is changed: the place where a concurrent request, a logout or an
outage is staged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpResponse, JsonResponse
from django.urls import path

HOOKS: dict[str, Callable[[], None]] = {}


def _after_load() -> None:
    hook = HOOKS.get("after_load")
    if hook is not None:
        hook()


def read(request: Any) -> JsonResponse:
    return JsonResponse(dict(request.session.items()))


def untouched(request: Any) -> HttpResponse:
    return HttpResponse("no session here")


def set_value(request: Any, key: str, value: str) -> JsonResponse:
    request.session.get("user")  # load first, as a view that checks the login would
    _after_load()
    request.session[key] = value
    return JsonResponse({"set": key})


def login(request: Any, name: str) -> JsonResponse:
    request.session.cycle_key()  # what django.contrib.auth.login does for a new login
    request.session["user"] = name
    return JsonResponse({"user": name})


def logout(request: Any) -> JsonResponse:
    request.session.flush()
    return JsonResponse({"user": None})


def append(request: Any, value: str) -> JsonResponse:
    cart = request.session.setdefault("cart", [])
    _after_load()
    cart.append(value)  # a change inside a value: Django's idiom is to say so
    request.session.modified = True
    return JsonResponse({"cart": cart})


def expire(request: Any, seconds: int) -> JsonResponse:
    request.session["user"] = request.session.get("user", "someone")
    request.session.set_expiry(seconds)
    return JsonResponse({"expiry": request.session.get_expiry_age()})


async def aread(request: Any) -> JsonResponse:
    return JsonResponse(dict(await request.session.aitems()))


async def aset_value(request: Any, key: str, value: str) -> JsonResponse:
    await request.session.aget("user")
    await request.session.aset(key, value)
    return JsonResponse({"set": key})


async def alogin(request: Any, name: str) -> JsonResponse:
    await request.session.acycle_key()
    await request.session.aset("user", name)
    return JsonResponse({"user": name})


urlpatterns = [
    path("read/", read),
    path("untouched/", untouched),
    path("set/<str:key>/<str:value>/", set_value),
    path("login/<str:name>/", login),
    path("logout/", logout),
    path("append/<str:value>/", append),
    path("expire/<int:seconds>/", expire),
    path("aread/", aread),
    path("aset/<str:key>/<str:value>/", aset_value),
    path("alogin/<str:name>/", alogin),
]
