"""The Windows name codec and the case-collision rule (adapters/winfsp/names.py)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from procorefs.adapters.winfsp.names import (
    DOT_LOOKALIKE,
    SPACE_LOOKALIKE,
    WindowsNameCodec,
    is_reserved_name,
    is_valid_windows_name,
    log_case_collisions,
    resolve_case_collisions,
)
from procorefs.core.names import QUOTE, NameRequest, is_canonical, lookup_key

codec = WindowsNameCodec()

SPECIALS = ['\\', '/', ':', '*', '?', '"', '<', '>', '|', '\0', '\x1f', '\t', '.', ' ',
            '＼', '／', '：', '＊', '？', '＂', '＜', '＞', '｜', '␀', '␟', '␉',
            DOT_LOOKALIKE, SPACE_LOOKALIKE, QUOTE, 'C', 'O', 'N', 'c', 'Ｃ', 'ｃ', '1', '¹', 'a']
tricky = st.text(alphabet=st.sampled_from(SPECIALS), min_size=1, max_size=10)
reserved_like = st.builds(
    lambda stem, first, tail: first + stem[1:] + tail,
    st.sampled_from(["CON", "prn", "Aux", "nul", "COM1", "com9", "LPT3", "lpt¹", "COM0"]),
    st.sampled_from(["", "C", "Ｃ", "c", "ｐ", "P", "Ｌ", "L", "ａ", "Ｎ"]),
    st.sampled_from(["", ".txt", ".tar.gz", " ", ".", " .x", "x", ":", "．"]),
).filter(bool)
any_name = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=40)


@given(st.one_of(tricky, reserved_like, any_name))
@example("RFI 012: Beam size?.pdf")
@example('Detail "A" | Section.dwg')
@example("CON")
@example("con.txt")
@example("ＣON")
@example(f"{QUOTE}ＣON")
@example("a.")
@example("a ")
@example(f"a{DOT_LOOKALIKE}")
@example(f"a{QUOTE}.")
@example(f"a{QUOTE}{DOT_LOOKALIKE}")
@example(f"{QUOTE}{QUOTE}：")
@example(".")
@example("..")
def test_round_trip_and_valid(remote: str) -> None:
    local = codec.to_local(remote)
    assert codec.to_remote(local) == remote
    assert is_valid_windows_name(local), (remote, local)
    assert is_canonical(codec, local)


@given(st.lists(st.one_of(tricky, reserved_like), min_size=2, max_size=2, unique=True))
def test_injective(pair: list[str]) -> None:
    a, b = pair
    assert codec.to_local(a) != codec.to_local(b)


@given(st.text(alphabet=st.sampled_from(SPECIALS), max_size=10))
def test_decoding_is_total(local: str) -> None:
    remote = codec.to_remote(local)
    assert codec.to_remote(codec.to_local(remote)) == remote


@pytest.mark.parametrize(("remote", "local"), [
    ("RFI 012: Beam size?.pdf", "RFI 012： Beam size？.pdf"),
    ('Detail "A" | Section.dwg', "Detail ＂A＂ ｜ Section.dwg"),
    ("08 71 00-002 Door Hardware <Group 3> *DRAFT*.docx",
     "08 71 00-002 Door Hardware ＜Group 3＞ ＊DRAFT＊.docx"),
    ("a\\b/c", "a＼b／c"),
    ("tab\there", "tab␉here"),
    ("ends with dot.", "ends with dot．"),
    ("ends with space ", "ends with space␠"),
    ("a. .", "a. ．"),
    ("CON", "ＣON"),
    ("con.txt", "ｃon.txt"),
    ("Lpt1.tar.gz", "Ｌpt1.tar.gz"),
    ("COM¹", "ＣOM¹"),
    ("NUL ", "ＮUL␠"),
    ("CONFIG.SYS", "CONFIG.SYS"),
    ("Console", "Console"),
    # Names that already hold look-alikes keep them, quoted where they would be read back.
    ("already：here", f"already{QUOTE}：here"),
    ("ends in fullwidth．", f"ends in fullwidth{QUOTE}．"),
    ("middle．dot", "middle．dot"),
    ("ＣON", f"{QUOTE}ＣON"),
    ("Ｃar", "Ｃar"),
    ("it‛s", "it‛s"),
    ("‛：", f"{QUOTE}{QUOTE}{QUOTE}："),
    ("Plan.pdf", "Plan.pdf"),
    ("Café ☕.docx", "Café ☕.docx"),
])
def test_examples(remote: str, local: str) -> None:
    assert codec.to_local(remote) == local
    assert codec.to_remote(local) == remote


@pytest.mark.parametrize("name", [
    "CON", "con", "PRN.txt", "aux.tar.gz", "NUL", "COM1", "com9.log", "LPT1", "LPT9.x",
    "COM¹", "lpt³.txt", "CON ", "nul .txt"])
def test_reserved(name: str) -> None:
    assert is_reserved_name(name)
    assert not is_valid_windows_name(name)


@pytest.mark.parametrize("name", ["CONSOLE", "COM10", "LPT", "xCON", "CON_x", "NULL.txt"])
def test_not_reserved(name: str) -> None:
    assert not is_reserved_name(name)


@pytest.mark.parametrize("name", ["", ".", "..", "a.", "a ", "a:b", "a\x01", "CON"])
def test_invalid(name: str) -> None:
    assert not is_valid_windows_name(name)


def test_user_typed_look_alikes_reach_procore_as_the_real_characters() -> None:
    assert codec.to_remote("Beam size？.pdf") == "Beam size?.pdf"
    assert codec.to_remote("ＣON") == "CON"
    assert codec.to_remote("v2．") == "v2."


def test_case_insensitive_lookups() -> None:
    assert codec.case_sensitive is False
    assert lookup_key(codec, "Report.PDF") == lookup_key(codec, "report.pdf")


def test_case_twins_are_both_reachable_and_reported() -> None:
    requests = [NameRequest("Plan.pdf", 11, True, (0, 11)),
                NameRequest("PLAN.pdf", 12, True, (0, 12)),
                NameRequest("Other.pdf", 13, True, (0, 13)),
                NameRequest("plan.PDF", 14, True, (0, 14))]
    names, collisions = resolve_case_collisions(requests, codec)
    assert names[11] == "Plan.pdf"  # the oldest keeps the plain name
    assert names[13] == "Other.pdf"
    assert names[12] == "PLAN [12].pdf"
    assert names[14] == "plan [14].PDF"
    keys = {lookup_key(codec, n) for n in names.values()}
    assert len(keys) == 4
    assert [(c.ident, c.kept, c.shown) for c in collisions] == [
        (12, "Plan.pdf", "PLAN [12].pdf"), (14, "Plan.pdf", "plan [14].PDF")]


def test_no_case_twins_no_report() -> None:
    names, collisions = resolve_case_collisions(
        [NameRequest("a.txt", 1, True, (0, 1)), NameRequest("b.txt", 2, True, (0, 2))])
    assert names == {1: "a.txt", 2: "b.txt"}
    assert collisions == []


@pytest.mark.allow_log("cannot tell apart")
def test_collisions_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    _, collisions = resolve_case_collisions(
        [NameRequest("Spec", 5, False, (0, 5)), NameRequest("SPEC", 6, False, (0, 6))])
    with caplog.at_level(logging.WARNING):
        log_case_collisions("/01 Drawings", collisions)
    assert "'SPEC' (Procore id 6)" not in caplog.text
    assert "/01 Drawings" in caplog.text and "'SPEC [6]'" in caplog.text


@pytest.mark.allow_log("cannot tell apart")
def test_the_codec_logs_each_collision_once(caplog: pytest.LogCaptureFixture) -> None:
    fresh = WindowsNameCodec()
    requests = [NameRequest("Spec", 5, False, (0, 5)), NameRequest("SPEC", 6, False, (0, 6))]
    with caplog.at_level(logging.WARNING):
        assert fresh.assign_local_names(requests, folder="/02") == {5: "Spec", 6: "SPEC [6]"}
        assert fresh.assign_local_names(requests, folder="/02") == {5: "Spec", 6: "SPEC [6]"}
    assert caplog.text.count("cannot tell apart") == 1
