"""The feed cursor's secret outlives a restart; a cursor decodes only for its caller and ranking."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.platform.feed_cursor import CursorError, CursorSigner, FeedPosition, load_secret
from runtime.store.platform_feed import FeedKey

POSITION = FeedPosition(tier=1, key=FeedKey(0.7234567891, 1_790_000_000.123456, 1, "task_ab"))


def test_a_cursor_made_before_a_restart_is_read_after_it(tmp_path: Path) -> None:
    path = tmp_path / "data" / "feed-cursor.key"
    cursor = CursorSigner(load_secret(path)).encode("alice", ["ocr"], POSITION)

    assert path.stat().st_mode & 0o777 == 0o600
    assert CursorSigner(load_secret(path)).decode(cursor, "alice", ["ocr"]) == POSITION


def test_a_cursor_is_refused_for_another_secret_caller_or_ranking(tmp_path: Path) -> None:
    signer = CursorSigner(load_secret(tmp_path / "a.key"))
    cursor = signer.encode("alice", ["ocr", "nlp"], POSITION)

    assert signer.decode(cursor, "alice", ["nlp", "ocr"]) == POSITION  # the order does not matter
    for decode in (
        lambda: CursorSigner(load_secret(tmp_path / "b.key")).decode(cursor, "alice", ["ocr", "nlp"]),
        lambda: signer.decode(cursor, "bob", ["ocr", "nlp"]),
        lambda: signer.decode(cursor, "alice", ["ocr"]),
        lambda: signer.decode(cursor + "x", "alice", ["ocr", "nlp"]),
    ):
        with pytest.raises(CursorError):
            decode()
