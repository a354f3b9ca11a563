"""Trust: the publisher of a done task rates its acceptor, and each node's score follows.

The score is a Bayesian average of the ratings' evidence with a prior, so that a few ratings
move it only part of the way (one perfect rating is not a perfect score)::

    evidence  e = (quality_score - 1) / 4 * (1 if on_time else LATE_FACTOR)      in [0, 1]
    score       = (PRIOR_WEIGHT * PRIOR_MEAN + Σ e) / (PRIOR_WEIGHT + n)         in [0, 1]

With the prior worth 3 ratings of 0.5, a new node scores 0.5; one 5.0 on time gives 0.625, ten
give 0.88, and the score tends to the mean evidence as ratings accumulate. A late delivery keeps
80% of its quality's evidence. Who may rate: only the task's publisher, only for its acceptor,
only once the task is done, and once per task.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from runtime.errors import ConflictError, ForbiddenError, NotFoundError
from runtime.store import Store
from runtime.store.platform_trust import RatingRow

__all__ = [
    "LATE_FACTOR",
    "PRIOR_MEAN",
    "PRIOR_WEIGHT",
    "RateRequest",
    "RateResult",
    "Rated",
    "Trust",
    "TrustReport",
    "evidence",
    "trust_score",
]

PRIOR_MEAN = 0.5
"""The score of a node nobody has rated (nodes.trust_score's default is the same)."""
PRIOR_WEIGHT = 3.0
"""How many ratings the prior is worth."""
LATE_FACTOR = 0.8
"""The share of a rating's evidence a late delivery keeps."""
MAX_COMMENT_CHARS = 2_000


def evidence(quality_score: float, on_time: bool) -> float:
    """One rating's evidence in [0, 1]: its quality on the 1-5 scale, discounted when late."""
    return (quality_score - 1.0) / 4.0 * (1.0 if on_time else LATE_FACTOR)


def trust_score(count: int, evidence_sum: float) -> float:
    """The Bayesian average of ``count`` ratings whose evidence sums to ``evidence_sum``."""
    return (PRIOR_WEIGHT * PRIOR_MEAN + evidence_sum) / (PRIOR_WEIGHT + count)


def _json_number(value: object) -> object:
    # Only a JSON number is a score: not true (an int to Python), not "4.8", not NaN or Infinity
    # (which Python's JSON reader takes).
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("must be a number from 1.0 to 5.0")
    return value


class RateRequest(BaseModel):
    """``POST /v1/trust/rate``: the publisher rates the acceptor of a done task."""

    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=128, description="The task's acceptor.")
    task_id: str = Field(min_length=1, max_length=128, description="A done task you published.")
    quality_score: Annotated[float, BeforeValidator(_json_number)] = Field(
        ge=1.0, le=5.0, description="1.0 (poor) to 5.0 (excellent)."
    )
    on_time: StrictBool = Field(description="Delivered before the deadline (or there was none).")
    comment: str = Field("", max_length=MAX_COMMENT_CHARS)


class Rated(BaseModel):
    """A rating as it is kept and shown."""

    task_id: str
    agent_id: str
    rater: str
    quality_score: float
    on_time: bool
    comment: str
    created_at: float = Field(description="Unix seconds.")


class RateResult(BaseModel):
    rating: Rated
    trust_score: float = Field(ge=0, le=1, description="The rated node's score now.")
    ratings_count: int


class TrustReport(BaseModel):
    agent_id: str
    trust_score: float = Field(ge=0, le=1, description="0-1; see docs/platform.md for the formula.")
    ratings_count: int
    ratings: list[Rated] = Field(description="The rating history, newest first: one page of it.")
    page: int
    page_size: int
    has_more: bool


class Trust:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._ratings = store.platform_trust
        self._nodes = store.nodes
        self._clock = clock

    async def rate(self, rater: str, request: RateRequest) -> RateResult:
        """Record the rating; it, with the node's new score and number of ratings."""
        task = await self._ratings.task_parties(request.task_id)
        if task is None:
            raise NotFoundError(f"task {request.task_id!r} not found")
        if task.publisher != rater:
            raise ForbiddenError("only the task's publisher may rate its acceptor")
        if task.status != "done":
            raise ConflictError(f"task {request.task_id!r} is {task.status}: only a done task can be rated")
        if task.acceptor != request.agent_id:
            raise ForbiddenError(
                f"{request.agent_id!r} did not do task {request.task_id!r}; rate its acceptor"
            )
        row = RatingRow(
            task_id=request.task_id,
            agent_id=request.agent_id,
            rater=rater,
            quality_score=request.quality_score,
            on_time=request.on_time,
            comment=request.comment,
            evidence=evidence(request.quality_score, request.on_time),
            created_at=self._clock(),
        )
        score, count = await self._ratings.add(row, trust_score)
        return RateResult(
            rating=Rated.model_validate(row.model_dump()), trust_score=score, ratings_count=count
        )

    async def report(self, agent_id: str, page: int, page_size: int) -> TrustReport:
        """The node's score and one page of its ratings."""
        node = await self._nodes.get_node(agent_id)
        if node is None:
            raise NotFoundError(f"agent {agent_id!r} not found")
        rows, total = await self._ratings.history(agent_id, page, page_size)
        return TrustReport(
            agent_id=agent_id,
            trust_score=node.trust_score,
            ratings_count=node.ratings_count,
            ratings=[Rated.model_validate(row.model_dump()) for row in rows],
            page=page,
            page_size=page_size,
            has_more=(page - 1) * page_size + len(rows) < total,
        )
