"""BoundedOutput: the head and the tail survive, the middle is counted, memory stays bounded."""

from __future__ import annotations

import pytest

from sandbox.docker_engine.output import BoundedOutput


def test_small_output_is_kept_whole() -> None:
    out = BoundedOutput(100)
    out.feed(b"hello ")
    out.feed(b"world\n")
    result = out.result()
    assert result.text == "hello world\n"
    assert (result.total_bytes, result.truncated_bytes) == (12, 0)


def test_output_exactly_at_the_limit_is_not_cut() -> None:
    out = BoundedOutput(10)
    out.feed(b"0123456789")
    assert out.result().text == "0123456789"
    assert out.result().truncated_bytes == 0


def test_large_output_keeps_head_and_tail_and_counts_the_cut() -> None:
    out = BoundedOutput(10)
    out.feed(b"HEADx")
    for _ in range(1000):
        out.feed(b"middle")
    out.feed(b"xTAIL")
    result = out.result()
    assert result.total_bytes == 6010
    assert result.truncated_bytes == 6000
    assert result.text == "HEADx\n…[6000 bytes truncated]…\nxTAIL"


def test_one_huge_chunk_is_cut_the_same_way() -> None:
    out = BoundedOutput(8)
    out.feed(b"abcd" + b"-" * 1_000_000 + b"wxyz")
    result = out.result()
    assert result.text == "abcd\n…[1000000 bytes truncated]…\nwxyz"


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 5000])
def test_never_holds_more_than_the_limit(chunk: int) -> None:
    out = BoundedOutput(64)
    data = bytes(range(256)) * 40
    for i in range(0, len(data), chunk):
        out.feed(data[i : i + chunk])
        assert len(out._head) + len(out._tail) <= 64
    assert out.total_bytes == len(data)
    assert out.truncated_bytes == len(data) - 64


def test_invalid_utf8_is_replaced() -> None:
    out = BoundedOutput(100)
    out.feed(b"ok \xff\xfe end")
    assert out.result().text == "ok \ufffd\ufffd end"


def test_characters_split_by_the_cut_are_dropped_not_garbled() -> None:
    # é is 2 bytes: the 4-byte head ends and the 5-byte tail starts in the middle of one.
    out = BoundedOutput(9)
    out.feed("aéé".encode() + b"." * 100 + "ééé".encode())
    text = out.result().text
    assert text.startswith("aé\n…[")
    assert text.endswith("]…\néé")
    assert "\ufffd" not in text


def test_a_tiny_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        BoundedOutput(1)
