"""Workspace files below HTTP: path rules, the listing's caps, files that are not regular."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.errors import ConflictError, InputError, NotFoundError
from runtime.workspaces import files as workspace_files
from runtime.workspaces.files import WorkspaceFiles, check_file_name, split_path


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("", []),
        (".", []),
        ("user_upload/", ["user_upload"]),
        ("./a//b/./c", ["a", "b", "c"]),
        ("a..b", ["a..b"]),
    ],
)
def test_relative_paths_split_into_components(path: str, parts: list[str]) -> None:
    assert split_path(path) == parts


@pytest.mark.parametrize(
    ("path", "reason"),
    [("..", "'..'"), ("a/../../b", "'..'"), ("/etc/passwd", "absolute"), ("a\x00b", "NUL")],
)
def test_paths_that_could_leave_the_root_are_refused(path: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        split_path(path)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "/x", "a\x00b"])
def test_file_names_must_be_one_plain_component(name: str) -> None:
    with pytest.raises(InputError, match="invalid file name"):
        check_file_name(name)


def test_ordinary_file_names_are_kept() -> None:
    assert check_file_name("..hidden 报告.tar.gz") == "..hidden 报告.tar.gz"


async def test_listing_stops_at_the_entry_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workspace_files, "MAX_LIST_ENTRIES", 3)
    for name in "abcde":
        (tmp_path / name).write_text(name)

    tree = await WorkspaceFiles(tmp_path).list_tree()

    assert [entry.path for entry in tree.files] == ["a", "b", "c"]
    assert tree.truncated is True


async def test_listing_exactly_at_the_cap_is_not_truncated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workspace_files, "MAX_LIST_ENTRIES", 3)
    for name in "abc":
        (tmp_path / name).write_text(name)

    tree = await WorkspaceFiles(tmp_path).list_tree()

    assert len(tree.files) == 3
    assert tree.truncated is False


async def test_listing_does_not_enter_directories_past_the_depth_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(workspace_files, "MAX_LIST_DEPTH", 2)
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)

    tree = await WorkspaceFiles(tmp_path).list_tree()

    assert [entry.path for entry in tree.files] == ["a", "a/b"]
    assert tree.truncated is True


async def test_names_that_are_not_utf8_are_listed_readably(tmp_path: Path) -> None:
    os.close(os.open(bytes(tmp_path) + b"/caf\xe9.txt", os.O_CREAT | os.O_WRONLY))

    tree = await WorkspaceFiles(tmp_path).list_tree()

    assert [entry.path for entry in tree.files] == ["caf\ufffd.txt"]
    tree.model_dump_json()  # serialisable: no lone surrogates left


async def test_a_fifo_is_listed_as_other_and_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    files = WorkspaceFiles(tmp_path)

    tree = await files.list_tree()
    with pytest.raises(InputError, match="not a regular file"):
        await files.open_file("pipe")

    assert [(entry.path, entry.type) for entry in tree.files] == [("pipe", "other")]


async def test_a_missing_directory_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nowhere not found"):
        await WorkspaceFiles(tmp_path).list_tree("nowhere")


async def test_a_write_makes_its_directories_and_replaces_the_file_whole(tmp_path: Path) -> None:
    files = WorkspaceFiles(tmp_path)

    assert await files.write_file("a/b/c.txt", b"first") == "a/b/c.txt"
    assert await files.write_file("./a//b/c.txt", b"second") == "a/b/c.txt"

    assert (tmp_path / "a/b/c.txt").read_bytes() == b"second"
    assert sorted(p.name for p in (tmp_path / "a/b").iterdir()) == ["c.txt"]  # no temp file left


async def test_a_write_never_goes_through_a_symlink_or_onto_a_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "link").symlink_to(outside)
    (root / "file-link").symlink_to(outside / "target")
    files = WorkspaceFiles(root)

    with pytest.raises(InputError, match="link is a symlink"):
        await files.write_file("link/x", b"x")
    with pytest.raises(ConflictError, match="dir is a directory"):
        await files.write_file("dir", b"x")
    await files.write_file("file-link", b"x")  # replaces the link itself, never writes its target

    assert list(outside.iterdir()) == []
    assert (root / "file-link").read_bytes() == b"x" and not (root / "file-link").is_symlink()
    assert sorted(p.name for p in root.iterdir()) == ["dir", "file-link", "link"]


async def test_a_file_is_read_in_ranges(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"0123456789")
    files = WorkspaceFiles(tmp_path)

    assert await files.read_file("f", 0, 4) == (b"0123", 10)
    assert await files.read_file("f", 8, 4) == (b"89", 10)
    assert await files.read_file("f", 20, 4) == (b"", 10)
