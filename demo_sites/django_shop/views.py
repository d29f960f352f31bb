"""The shop's views and URLs (``ROOT_URLCONF``); see the package docstring."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.urls import path
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_POST

from demo_sites.shared import PAGE_TTL, TAG_HEADER, Catalog, item_tag, page, shows_visitor
from rcache_django.pages import page_cache, purge_tag

NAV = '<a href="/">products</a> · <a href="/cart">cart</a> · <a href="/login">login</a>'


class Visitor:
    """``request.user`` for the page cache: "authenticated" when the session is personal."""

    def __init__(self, session: Any) -> None:
        self.is_authenticated = shows_visitor(session)


def visitor_middleware(get_response: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Set a lazy ``request.user`` from the session (after the session middleware).

    The page cache asks it before a cached view runs: a visitor with a name or a cart is
    served a fresh page, never the shared copy; a request without the session cookie is
    known to be anonymous without loading anything.
    """

    def middleware(request: Any) -> Any:
        request.user = SimpleLazyObject(lambda: Visitor(request.session))
        return get_response(request)

    return middleware


def shop() -> Catalog:
    catalog: Catalog = settings.DEMO_SHOP
    return catalog


def render(request: Any, title: str, body: str) -> HttpResponse:
    return HttpResponse(page(title, body, request.session.get("user"), NAV))


def product_list(request: Any) -> HttpResponse:
    rows = "".join(
        f'<li><a href="/products/{pid}/">{html.escape(p["name"])}</a> {p["price"]:.2f}</li>'
        for pid, p in shop().items.items()
    )
    return render(request, "Shop", f"<ul>{rows}</ul>")


@page_cache(ttl=PAGE_TTL)
def product_detail(request: Any, pid: str) -> HttpResponse:
    product = shop().lookup(pid)
    if product is None:
        raise Http404(pid)
    body = (
        f"<p>{html.escape(product['text'])}</p><p>price {product['price']:.2f}</p>"
        f"<p><small>looked up at {product['computed_at']}</small></p>"
        f'<form method=post action="/cart/add/{pid}"><button>add to cart</button></form>'
        f'<form method=post action="/products/{pid}/edit">'
        f'<input name=name value="{html.escape(product["name"])}">'
        f'<input name=price value="{product["price"]}"><button>save</button></form>'
    )
    response = render(request, product["name"], body)
    response[TAG_HEADER] = item_tag("product", pid)  # purged by an edit
    return response


@require_POST
def product_edit(request: Any, pid: str) -> HttpResponse:
    if pid not in shop().items:
        raise Http404(pid)
    changes: dict[str, Any] = {}
    if request.POST.get("name"):
        changes["name"] = request.POST["name"]
    if request.POST.get("price"):
        try:
            changes["price"] = float(request.POST["price"])
        except ValueError:
            return HttpResponse("price must be a number", status=400)
    shop().edit(pid, **changes)
    purge_tag(item_tag("product", pid))  # the cached pages (every site's) of this product
    return HttpResponseRedirect(f"/products/{pid}/")


def login(request: Any) -> HttpResponse:
    if request.method == "POST":
        username = request.POST.get("username", "").strip()
        if username:
            request.session.cycle_key()  # a new session id at login
            request.session["user"] = username
            return HttpResponseRedirect("/")
    body = (
        "<form method=post><input name=username placeholder=username>"
        "<button>log in</button></form>"
        "<form method=post action=/logout><button>log out</button></form>"
    )
    return render(request, "Log in", body)


@require_POST
def logout(request: Any) -> HttpResponse:
    request.session.flush()
    return HttpResponseRedirect("/")


def cart(request: Any) -> HttpResponse:
    items = shop().items
    rows = "".join(
        f"<li>{html.escape(items[pid]['name'] if pid in items else pid)}"
        f'<form method=post action="/cart/remove/{pid}" style=display:inline>'
        "<button>remove</button></form></li>"
        for pid in request.session.get("cart", [])
    )
    return render(request, "Cart", f"<ul>{rows}</ul>" if rows else "<p>empty</p>")


@require_POST
def cart_add(request: Any, pid: str) -> HttpResponse:
    if pid not in shop().items:
        raise Http404(pid)
    request.session["cart"] = [*request.session.get("cart", []), pid]
    return HttpResponseRedirect("/cart")


@require_POST
def cart_remove(request: Any, pid: str) -> HttpResponse:
    items = list(request.session.get("cart", []))
    if pid in items:
        items.remove(pid)
        request.session["cart"] = items
    return HttpResponseRedirect("/cart")


urlpatterns = [
    path("", product_list),
    path("products/<str:pid>/", product_detail),
    path("products/<str:pid>/edit", product_edit),
    path("login", login),
    path("logout", logout),
    path("cart", cart),
    path("cart/add/<str:pid>", cart_add),
    path("cart/remove/<str:pid>", cart_remove),
]
