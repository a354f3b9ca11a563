"""The ``agent-worker`` command: configuration errors and the anonymous-serving guard."""

from __future__ import annotations

import pytest

from api.cli import main


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "worker.example"])
def test_refuses_anonymous_serving_off_loopback(
    host: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AGENT_API_KEYS", raising=False)

    assert main(["serve", "--host", host, "--port", "0"]) == 2

    assert f"refusing to serve anonymously on {host}" in capsys.readouterr().err


def test_invalid_configuration_exits_with_a_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENT_SANDBOX_MEMORY_MB", "lots")

    assert main(["serve"]) == 2

    assert "sandbox_memory_mb" in capsys.readouterr().err


def test_sandbox_tmpfs_larger_than_its_memory_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AGENT_SANDBOX_WORKSPACE_MB", "1024")

    assert main(["serve"]) == 2

    assert "must leave 64 MB of it to processes" in capsys.readouterr().err


def test_serve_defaults_to_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])

    assert "default 127.0.0.1" in capsys.readouterr().out
