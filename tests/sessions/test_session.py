"""The Session object's bookkeeping, and the field layout: pure, no Redis."""

from __future__ import annotations

import pytest

from rcache.sessions import Session, SessionConfig, new_session_id
from rcache.sessions._layout import (
    META_CREATED,
    META_TOKEN,
    META_USER,
    Storage,
    field_name,
    key_of_field,
)


def loaded(data: dict[str, object]) -> Session:
    """A session as the store builds it after a load: stored, nothing changed."""
    s = Session()
    s._data.update(data)
    s._is_new = False
    s._stored = True
    return s


def test_ids_are_256_random_bits_url_safe() -> None:
    ids = {new_session_id() for _ in range(1000)}
    assert len(ids) == 1000
    for i in ids:
        assert len(i) == 43
        assert set(i) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_a_new_session_is_empty_and_untouched() -> None:
    s = Session()
    assert s.is_new and not s.stored
    assert not s.accessed and not s.modified
    assert s.user_id is None and s.lifetime_left is None


def test_reads_mark_accessed_but_not_modified() -> None:
    for read in (
        lambda s: s.get("a"),
        lambda s: "a" in s,
        lambda s: list(s),
        lambda s: len(s),
        lambda s: s["a"],
        lambda s: dict(s.items()),
    ):
        s = loaded({"a": 1})
        read(s)
        assert s.accessed and not s.modified


def test_writes_are_tracked_per_top_level_key() -> None:
    s = loaded({"a": 1, "b": 2, "c": 3})
    s["a"] = 10
    del s["b"]
    s["new"] = "x"
    assert s.modified
    assert s.changed_keys == {"a", "new"}
    assert s.deleted_keys == {"b"}
    s.pop("new")  # set then removed: a delete of a field that may not exist (harmless)
    assert s.changed_keys == {"a"} and s.deleted_keys == {"b", "new"}


def test_clear_deletes_every_key() -> None:
    s = loaded({"a": 1, "b": 2})
    s.clear()
    assert len(s) == 0
    assert s.deleted_keys == {"a", "b"} and not s.changed_keys


def test_nested_mutation_is_not_detected_until_marked() -> None:
    s = loaded({"cart": [1]})
    s["cart"].append(2)
    assert not s.modified  # the documented rule
    s.mark_modified("cart")
    assert s.changed_keys == {"cart"}

    s2 = loaded({"a": {"x": 1}, "b": [1]})
    s2.mark_modified()
    assert s2.changed_keys == {"a", "b"}


def test_keys_must_be_str() -> None:
    s = Session()
    with pytest.raises(TypeError):
        s[1] = "x"  # type: ignore[index]


def test_repr_never_shows_the_id_or_values() -> None:
    s = Session()
    s["secret"] = "hunter2"
    text = repr(s)
    assert s.id not in text and "hunter2" not in text
    assert "secret" in text


@pytest.mark.parametrize("key", ["a", "", "é", "\x00", "\x00created", "\x00\x00user", "x\x00"])
def test_field_names_round_trip_and_never_look_like_meta(key: str) -> None:
    name = field_name(key)
    assert key_of_field(name) == key
    assert name not in (META_CREATED, META_TOKEN, META_USER)


@pytest.mark.parametrize(
    ("key_prefix", "prefix"),
    [
        ("", "session"),
        ("app:", "s"),
        ("", "p" * 150),
        ("x" * 120, "y" * 30),
        ("x" * 120, "y" * 35),
        ("app-1:", "se.ss"),
    ],
)
def test_session_keys_are_what_the_key_space_gives(key_prefix: str, prefix: str) -> None:
    # Storage.key takes a shortcut for session ids: it must give KeySpace.key's answer.
    storage = Storage.build(SessionConfig(secret_keys=["k"], prefix=prefix), key_prefix)
    for session_id in [new_session_id() for _ in range(20)] + ["-" * 43, "_" * 43, "x", "a b"]:
        assert storage.key(session_id) == storage.sessions.key(session_id)


def test_meta_fields_are_not_session_keys() -> None:
    for meta in (META_CREATED, META_TOKEN, META_USER):
        assert key_of_field(meta) is None


def test_the_public_api_is_what_all_says() -> None:
    import rcache.sessions

    assert sorted(rcache.sessions.__all__) == rcache.sessions.__all__
    for name in rcache.sessions.__all__:
        assert getattr(rcache.sessions, name).__module__.startswith("rcache.sessions"), name
