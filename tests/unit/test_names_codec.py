"""The POSIX name codec, lookup keys and unique local names (core/names.py)."""

from __future__ import annotations

import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st

from procorefs.core.names import (
    DOT_LOOKALIKE,
    NAME_MAX,
    NUL_LOOKALIKE,
    QUOTE,
    SLASH_LOOKALIKE,
    NameRequest,
    PosixNameCodec,
    assign_local_names,
    is_canonical,
    lookup_key,
    too_long,
)

codec = PosixNameCodec()

# Names made mostly of the characters the codec cares about, so hypothesis explores the
# tricky sequences (a quote before a look-alike, look-alikes next to real slashes) often.
tricky = st.text(alphabet=st.sampled_from(
    ["/", "\0", SLASH_LOOKALIKE, NUL_LOOKALIKE, QUOTE, DOT_LOOKALIKE, ".", "a", "é"]),
    max_size=12)
any_name = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)


@given(st.one_of(tricky, any_name))
@example("a/b")
@example(f"{QUOTE}/")
@example(f"{QUOTE}{SLASH_LOOKALIKE}")
@example(".")
@example("..")
@example(DOT_LOOKALIKE)
@example(f"{QUOTE}{DOT_LOOKALIKE}")
@example(f".{DOT_LOOKALIKE}")
def test_round_trip(remote: str) -> None:
    local = codec.to_local(remote)
    assert codec.to_remote(local) == remote
    assert "/" not in local and "\0" not in local
    assert local not in (".", "..")
    assert is_canonical(codec, local) or remote == ""


@given(st.lists(st.one_of(tricky, any_name), min_size=2, max_size=2, unique=True))
def test_injective(pair: list[str]) -> None:
    a, b = pair
    assert codec.to_local(a) != codec.to_local(b)


def test_look_alikes_are_what_rclone_shows() -> None:
    assert codec.to_local("RFI 12/13.pdf") == "RFI 12／13.pdf"
    assert codec.to_local("a\0b") == "a␀b"
    assert codec.to_local("..") == "．．"
    # a name that already holds the look-alike is quoted, so both can coexist
    assert codec.to_local("RFI 12／13.pdf") == "RFI 12‛／13.pdf"
    # a quote that precedes nothing special is shown as is
    assert codec.to_local("‛Quoted‛ name") == "‛Quoted‛ name"


def test_non_canonical_local_names_are_detected() -> None:
    # "‛‛x" decodes to "‛x", which is shown as "‛x": creating "‛‛x" would not show as typed
    assert not is_canonical(codec, f"{QUOTE}{QUOTE}x")
    assert is_canonical(codec, "plain name.txt")
    assert is_canonical(codec, "a／b")


def test_lookup_key_normalises_nfc() -> None:
    nfd = unicodedata.normalize("NFD", "Café.docx")
    assert nfd != "Café.docx"
    assert lookup_key(codec, nfd) == lookup_key(codec, "Café.docx")
    assert lookup_key(codec, "A") != lookup_key(codec, "a")  # POSIX is case-sensitive


def test_too_long_counts_bytes() -> None:
    assert not too_long("a" * NAME_MAX)
    assert too_long("a" * (NAME_MAX + 1))
    assert too_long("é" * 128)  # 256 bytes


def test_collisions_get_a_visible_id_suffix() -> None:
    nfc, nfd = "Café.docx", unicodedata.normalize("NFD", "Café.docx")
    names = assign_local_names(codec, [
        NameRequest(nfd, 20, True, (0, 20)),
        NameRequest(nfc, 10, True, (0, 10)),
        NameRequest("Plans", 30, False, (0, 30)),
    ])
    assert names[10] == nfc  # the oldest id keeps the plain name
    assert names[20] == unicodedata.normalize("NFD", "Café") + " [20].docx"  # as Procore has it
    assert names[30] == "Plans"
    keys = {lookup_key(codec, n) for n in names.values()}
    assert len(keys) == 3


def test_suffix_that_collides_again_is_extended() -> None:
    names = assign_local_names(codec, [
        NameRequest("a", 1, False, (0, 1)),
        NameRequest("a", 2, False, (0, 2)),
        NameRequest("a [2]", 3, False, (0, 3)),
    ])
    assert names == {1: "a", 3: "a [2]", 2: "a [2-2]"}


def test_rank_decides_who_keeps_the_name() -> None:
    names = assign_local_names(codec, [
        NameRequest("Tower", 5, False, (1, 5)),
        NameRequest("Tower", -1, False, (0, 900), tag=900),
    ])
    assert names[-1] == "Tower"
    assert names[5] == "Tower [5]"


def test_overlong_remote_names_are_shortened_with_their_id() -> None:
    long = "x" * 300 + ".pdf"
    names = assign_local_names(codec, [NameRequest(long, 77, True, (0, 77))])
    local = names[77]
    assert not too_long(local)
    assert local.endswith(" [77].pdf")


def test_empty_names_are_reachable() -> None:
    assert assign_local_names(codec, [NameRequest("", 9, False, (0, 9))]) == {9: "[9]"}


@given(st.lists(st.tuples(st.one_of(tricky, any_name), st.booleans()), max_size=12))
def test_assigned_names_are_unique_and_legal(children: list[tuple[str, bool]]) -> None:
    requests = [NameRequest(name, i, is_file, (0, i)) for i, (name, is_file) in
                enumerate(children)]
    names = assign_local_names(codec, requests)
    assert set(names) == set(range(len(children)))
    keys = [lookup_key(codec, n) for n in names.values()]
    assert len(set(keys)) == len(keys)
    for n in names.values():
        assert n and "/" not in n and "\0" not in n and not too_long(n)
        assert n not in (".", "..")
