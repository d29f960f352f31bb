from __future__ import annotations

from redis.crc import key_slot

from rcache._cluster import split_commands


def slot(k: str) -> int:
    return int(key_slot(k.encode()))


def test_same_slot_commands_are_left_alone() -> None:
    assert split_commands([("GET", "a"), ("MGET", "{x}1", "{x}2")]) is None


def test_mget_is_split_per_slot_and_merged_in_key_order() -> None:
    keys = [f"k{i}" for i in range(20)]
    assert len({slot(k) for k in keys}) > 1
    split = split_commands([("MGET", *keys), ("GET", "solo")])
    assert split is not None
    commands, merge = split
    assert all(len({slot(k) for k in c[1:]}) == 1 for c in commands[:-1])
    assert commands[-1] == ("GET", "solo")
    # Fake the per-command replies: each MGET answers its keys' names upper-cased.
    replies = [[k.upper() for k in c[1:]] for c in commands[:-1]] + [b"solo-value"]
    assert merge(replies) == [[k.upper() for k in keys], b"solo-value"]


def test_counting_commands_are_summed_and_mset_all_true() -> None:
    keys = [f"k{i}" for i in range(10)]
    split = split_commands([("UNLINK", *keys), ("MSET", *[x for k in keys for x in (k, "v")])])
    assert split is not None
    commands, merge = split
    n_unlink = sum(1 for c in commands if c[0] == "UNLINK")
    n_mset = len(commands) - n_unlink
    assert merge([1] * n_unlink + [True] * n_mset) == [n_unlink, True]


def test_an_error_in_one_part_is_the_reply_of_the_whole_command() -> None:
    keys = [f"k{i}" for i in range(10)]
    split = split_commands([("DEL", *keys)])
    assert split is not None
    commands, merge = split
    boom = RuntimeError("x")
    merged = merge([1] * (len(commands) - 1) + [boom])
    assert merged == [boom]
