"""The agent platform's settings (``api.settings`` builds this from the environment)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["PlatformConfig"]


class PlatformConfig(BaseModel):
    registration: Literal["open", "closed"] = Field(
        "closed",
        description="open: anyone may register a node on POST /v1/auth/register; closed: only the "
        "operator's AGENT_API_KEYS users (and the house agents) are nodes.",
    )
    signup_credits: int = Field(
        1000, ge=0, le=1_000_000_000, description="Credits granted to each new node (0: none)."
    )
    registrations_per_day: int = Field(
        1000, ge=0, description="Registrations a client address may make a day; 0: no limit."
    )
    task_expiry_interval: float = Field(
        30.0,
        gt=0,
        le=86_400,
        description="Seconds between sweeps canceling open tasks past their deadline (escrow refunded); "
        "reading or accepting such a task cancels it at once anyway.",
    )
