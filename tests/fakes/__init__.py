"""Test doubles that stand in for external services (never a real model)."""

from __future__ import annotations

from tests.fakes.model_server import Call, Error, Hang, Reply, ScriptedModelServer, ToolCalls, Turn, Usage

__all__ = ["Call", "Error", "Hang", "Reply", "ScriptedModelServer", "ToolCalls", "Turn", "Usage"]
