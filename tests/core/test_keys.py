"""Tests for rcache.keys: the layout, hashing of odd keys, hash tags, patterns, validation."""

from __future__ import annotations

import ast
import hashlib
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from prefixes import unique_prefix

import rcache.keys
from rcache.errors import ConfigurationError
from rcache.keys import KeySpace

PROPERTY = settings(max_examples=300, deadline=None)

keys_st = st.text() | st.binary()
limits_st = st.integers(min_value=80, max_value=300)  # room for the longest prefix
prefixes_st = st.sampled_from(["", "app", "shop:sessions", "é-ü", "a*b?[c]\\d", "x" * 40])


def raw(k: str | bytes) -> bytes:
    """Return the bytes a key stands for (str as UTF-8, lone surrogates passed through)."""
    return k if isinstance(k, bytes) else k.encode("utf-8", "surrogatepass")


def digest(k: str | bytes) -> str:
    return hashlib.sha256(raw(k)).hexdigest()[:32]


def redis_glob(pattern: str, text: str) -> bool:
    """Match like Redis' stringmatchlen for the subset pattern() emits (\\x, *, ?)."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        else:
            assert c not in "[]", f"unescaped {c!r} in {pattern!r}"
            out.append(re.escape(c))
        i += 1
    return re.fullmatch("".join(out), text, re.DOTALL) is not None


def cluster_tag(key: str) -> str:
    """Return what Redis Cluster hashes for ``key`` (the hash tag rule of the spec)."""
    start = key.find("{")
    if start != -1:
        end = key.find("}", start + 1)
        if end != -1 and end != start + 1:
            return key[start + 1 : end]
    return key


# --- layout -------------------------------------------------------------------------------


def test_layout_prefix_version_key() -> None:
    assert KeySpace("shop", 3).key("cart:42") == "shop:3:cart:42"
    assert KeySpace().key("k") == "1:k"  # empty prefix: no leading colon
    assert KeySpace("shop").key("k", version=7) == "shop:7:k"
    assert KeySpace("shop").key("") == "shop:1:"
    assert KeySpace("shop", version=-2).key("k") == "shop:-2:k"


def test_valid_utf8_bytes_give_the_same_key_as_str() -> None:
    ks = KeySpace("p")
    assert ks.key("naïve") == ks.key("naïve".encode()) == "p:1:naïve"


def test_hashed_form_is_readable_head_then_sha256() -> None:
    ks = KeySpace("p")
    spaced = "a key\twith\nspaces"
    assert ks.key(spaced) == f"p:1:a_key_with_spaces#{digest(spaced)}"
    invalid = b"\xff\xfeok"
    assert ks.key(invalid) == f"p:1:__ok#{digest(invalid)}"
    surrogate = "lone \ud800"  # not valid text: its 3 surrogate bytes become 3 underscores
    assert ks.key(surrogate) == f"p:1:lone____#{digest(surrogate)}"
    long = "x" * 500
    out = ks.key(long)
    assert out == "p:1:" + "x" * 60 + "#" + digest(long)


def test_hash_mark_in_a_plain_key_forces_the_hashed_form() -> None:
    ks = KeySpace("p")
    odd = "a b"
    hashed = ks.key(odd)
    lookalike = ks.unkey(hashed)  # "a_b#<digest>": a user could pass this text as a key
    assert ks.key(lookalike) != hashed
    assert ks.key(lookalike) == f"p:1:a_b_{digest(odd)}#{digest(lookalike)}"
    assert ks.key("issue#12") == f"p:1:issue_12#{digest('issue#12')}"


def test_key_exactly_at_the_limit_is_kept_one_more_byte_is_hashed() -> None:
    ks = KeySpace("p", max_key_length=50)
    fits = "y" * (50 - len("p:1:"))
    assert ks.key(fits) == "p:1:" + fits
    over = fits + "y"
    assert ks.key(over) == f"p:1:{'y' * (50 - 4 - 33)}#{digest(over)}"
    assert len(ks.key(over)) == 50
    # The limit counts UTF-8 bytes, not characters: 23 two-byte characters fit, 24 do not.
    assert ks.key("é" * 23) == "p:1:" + "é" * 23
    assert ks.key("é" * 24) == f"p:1:{'é' * 6}#{digest('é' * 24)}"
    assert ks.key(("é" * 23).encode()) == "p:1:" + "é" * 23
    assert ks.key(("é" * 24).encode()) == ks.key("é" * 24)


def test_multibyte_head_is_cut_on_a_character_boundary() -> None:
    ks = KeySpace("p", max_key_length=4 + 33 + 5)  # room for 5 head bytes: two 2-byte chars
    out = ks.key("é" * 100)
    assert out == f"p:1:éé#{digest('é' * 100)}"
    assert len(out.encode()) <= 42


def test_unicode_whitespace_and_c1_controls_are_hashed() -> None:
    ks = KeySpace("p")
    for k in ("a\u00a0b", "a\u2028b", "a\u3000b", "a\x85b", "a\x7fb", "a\x00b"):
        assert ks.key(k) == f"p:1:a_b#{digest(k)}", repr(k)


def test_rejects_non_text_keys() -> None:
    ks = KeySpace("p")
    with pytest.raises(TypeError):
        ks.key(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ks.key("k", version=True)
    with pytest.raises(TypeError):
        ks.tagged("k", 5)  # type: ignore[arg-type]


# --- properties ---------------------------------------------------------------------------


@PROPERTY
@given(k=keys_st, prefix=prefixes_st, limit=limits_st)
def test_any_key_is_short_safe_and_deterministic(k: str | bytes, prefix: str, limit: int) -> None:
    ks = KeySpace(prefix, max_key_length=limit)
    out = ks.key(k)
    data = out.encode("utf-8")  # valid text: no lone surrogates survive
    assert len(data) <= limit
    assert all(b >= 0x21 and b != 0x7F for b in data)
    assert not any(ch.isspace() or 0x80 <= ord(ch) <= 0x9F for ch in out)
    assert out == ks.key(k) == KeySpace(prefix, max_key_length=limit).key(k)
    assert out[: len(out) - len(ks.unkey(out))] == (f"{prefix}:1:" if prefix else "1:")
    assert redis_glob(ks.pattern(), out)


@PROPERTY
@given(a=keys_st, b=keys_st, limit=limits_st)
def test_different_keys_give_different_redis_keys(
    a: str | bytes, b: str | bytes, limit: int
) -> None:
    assume(raw(a) != raw(b))
    ks = KeySpace("p", max_key_length=limit)
    assert ks.key(a) != ks.key(b)


@PROPERTY
@given(common=st.text(min_size=200, max_size=300), a=st.text(max_size=3), b=st.text(max_size=3))
def test_long_keys_that_differ_only_at_the_end_stay_distinct(common: str, a: str, b: str) -> None:
    assume(a != b)
    ks = KeySpace("p")
    assert ks.key(common + a) != ks.key(common + b)


@PROPERTY
@given(k=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=150))
def test_plain_keys_are_stored_as_they_are_and_unkey_returns_them(k: str) -> None:
    assume("#" not in k)
    ks = KeySpace("app", max_key_length=250)
    assert ks.key(k) == f"app:1:{k}"
    assert ks.unkey(ks.key(k)) == k
    assert ks.unkey(ks.key(k).encode()) == k


@PROPERTY
@given(k=keys_st, tag=keys_st)
def test_tagged_keys_are_safe_and_share_the_tags_slot(k: str | bytes, tag: str | bytes) -> None:
    ks = KeySpace("app")
    out = ks.tagged(k, tag)
    other = ks.tagged("another-field", tag)
    assert cluster_tag(out) == cluster_tag(other) != out
    data = out.encode("utf-8")
    assert all(b >= 0x21 and b != 0x7F for b in data)
    assert len(data) <= ks.max_key_length  # a short prefix leaves room for any tag


def test_tagged_key_may_pass_a_tight_limit_by_the_tag_only() -> None:
    ks = KeySpace("p", max_key_length=4 + 33)
    out = ks.tagged("field " * 20, "t" * 64)
    assert len(out) == 4 + (2 + 64 + 1) + 33
    assert out.startswith("p:1:{" + "t" * 64 + "}:#")


@PROPERTY
@given(t1=keys_st, t2=keys_st)
def test_different_tags_give_different_slot_groups(t1: str | bytes, t2: str | bytes) -> None:
    assume(raw(t1) != raw(t2))
    ks = KeySpace("app")
    assert cluster_tag(ks.tagged("f", t1)) != cluster_tag(ks.tagged("f", t2))


def test_keys_are_the_same_in_another_process_with_another_hash_seed() -> None:
    samples = ["plain", "with space", "x" * 400, "ünï"]
    code = (
        "from rcache.keys import KeySpace;"
        f"ks = KeySpace('p', max_key_length=80);"
        f"print('\\n'.join(ks.key(k) for k in {samples!r}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    ks = KeySpace("p", max_key_length=80)
    assert out.stdout.splitlines() == [ks.key(k) for k in samples]


def test_spaces_never_share_keys() -> None:
    parent = KeySpace("app")
    child = parent.child("sub")
    bare = KeySpace()
    # The same text in three spaces, and keys crafted to look like another space's keys.
    assert parent.key("sub:1:x") != child.key("x")
    assert bare.key("app:1:x") != parent.key("x")
    assert not redis_glob(parent.pattern(), child.key("x"))
    assert not redis_glob(bare.pattern(), parent.key("x"))
    assert not redis_glob(parent.pattern(), parent.key("x", version=2))
    assert redis_glob(parent.pattern(version=2), parent.key("x", version=2))


# --- hash tags ----------------------------------------------------------------------------


def test_hash_tag_puts_every_key_of_the_space_in_one_slot() -> None:
    ks = KeySpace("app", hash_tag="app")
    assert ks.key("a") == "{app}:app:1:a"
    assert {cluster_tag(ks.key(k)) for k in ("a", "b", "x" * 500, "a b")} == {"app"}
    assert cluster_tag(ks.child("sessions").key("s")) == "app"
    assert cluster_tag(ks.tagged("f", "sess1")) == "app"  # the space's tag comes first
    assert KeySpace(hash_tag="t").key("k") == "{t}:1:k"


def test_tagged_wraps_the_entity_tag() -> None:
    ks = KeySpace("app")
    assert ks.tagged("field", "sessid") == "app:1:{sessid}:field"
    assert ks.tagged("field", b"sessid", version=4) == "app:4:{sessid}:field"
    odd = ks.tagged("f", "has}brace")
    assert odd == f"app:1:{{has_brace#{digest('has}brace')}}}:f"
    assert cluster_tag(odd) == f"has_brace#{digest('has}brace')}"
    assert ks.tagged("f", "") == f"app:1:{{#{digest('')}}}:f"
    long_tag = "t" * 65
    assert ks.tagged("f", long_tag) == f"app:1:{{{'t' * 16}#{digest(long_tag)}}}:f"
    assert ks.tagged("f", "t" * 64) == f"app:1:{{{'t' * 64}}}:f"


# --- patterns and unkey -------------------------------------------------------------------


def test_pattern_escapes_glob_metacharacters() -> None:
    ks = KeySpace("a*b?[c]\\d")
    assert ks.pattern() == "a\\*b\\?\\[c\\]\\\\d:1:*"
    assert redis_glob(ks.pattern(), ks.key("anything"))
    assert not redis_glob(ks.pattern(), "aXbY[c]\\d:1:k")
    assert not redis_glob(ks.pattern(), "a*b?c\\d:1:k")
    assert KeySpace().pattern() == "1:*"
    assert KeySpace("p", hash_tag="t*").pattern() == "{t\\*}:p:1:*"


def test_unkey_strips_prefix_and_any_version() -> None:
    ks = KeySpace("app")
    assert ks.unkey("app:1:a:b") == "a:b"
    assert ks.unkey(b"app:12:x") == "x"
    assert ks.unkey("app:-3:x") == "x"
    assert KeySpace().unkey("1:k") == "k"
    assert KeySpace("p", hash_tag="t").unkey("{t}:p:1:k") == "k"
    assert ks.unkey(ks.tagged("f", "s")) == "{s}:f"
    for foreign in ("other:1:x", "app:sub:1:x", "app:x", "ap", b"app:1:\xff"):
        with pytest.raises(ValueError):
            ks.unkey(foreign)
    with pytest.raises(TypeError):
        ks.unkey(1)  # type: ignore[arg-type]


# --- derived spaces and validation --------------------------------------------------------


def test_child_and_with_version() -> None:
    ks = KeySpace("app", version=2, max_key_length=120, hash_tag="t")
    assert ks.child("sessions") == KeySpace("app:sessions", 2, 120, "t")
    assert KeySpace().child("sessions").prefix == "sessions"
    assert ks.with_version(9).key("k") == "{t}:app:9:k"
    assert ks.with_version(9) == KeySpace("app", 9, 120, "t")
    with pytest.raises(ConfigurationError):
        ks.child("")
    with pytest.raises(ConfigurationError):
        ks.child("7")
    with pytest.raises(ConfigurationError):
        ks.child("a b")


@pytest.mark.parametrize(
    "prefix",
    ["a b", "a\tb", "a\nb", "a\x00b", "a\x7fb", "a\u00a0b", "a{b", "a}b", "\ud800", "1", "a:2"],
)
def test_bad_prefix_is_a_configuration_error(prefix: str) -> None:
    with pytest.raises(ConfigurationError):
        KeySpace(prefix)


def test_other_settings_are_validated() -> None:
    for bad in ("", "a b", "a{b", "a}b", "a#b"):
        with pytest.raises(ConfigurationError):
            KeySpace("p", hash_tag=bad)
    with pytest.raises(ConfigurationError):
        KeySpace("p", version="1")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        KeySpace("p", version=True)
    with pytest.raises(ConfigurationError):
        KeySpace("p", max_key_length=4 + 32)  # one byte short of "p:1:" + "#" + 32 hex
    KeySpace("p", max_key_length=4 + 33)
    with pytest.raises(ConfigurationError):
        KeySpace(42)  # type: ignore[arg-type]


def test_key_space_is_frozen_hashable_and_picklable() -> None:
    ks = KeySpace("app", 3)
    with pytest.raises(AttributeError):
        ks.prefix = "other"  # type: ignore[misc]
    assert hash(ks) == hash(KeySpace("app", 3))
    copy = pickle.loads(pickle.dumps(ks))
    assert copy == ks and copy.key("a b") == ks.key("a b")
    assert "_head" not in repr(ks)


def test_module_never_imports_redis() -> None:
    tree = ast.parse(Path(rcache.keys.__file__).read_text(encoding="utf-8"))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        )
    }
    assert "hashlib" in imported  # the walk sees the module's imports
    assert "redis" not in imported


def test_the_tests_unique_prefixes_are_always_valid_key_space_prefixes() -> None:
    """A random hex segment made only of decimal digits was refused as a prefix."""
    for _ in range(3000):
        prefix = unique_prefix()
        KeySpace(prefix=prefix.strip(":"))  # never raises ConfigurationError
