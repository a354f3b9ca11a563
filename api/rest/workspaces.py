"""``/api/v1/workspaces``: create-or-ensure and list; and how every scoped route finds its workspace."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.web.http import json_model, parse_body
from api.web.keys import USER, WORKSPACES
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.workspaces.placement import PlacementRecord
from runtime.workspaces.records import DEFAULT_WORKSPACE, PythonMode, WorkspaceRecord

__all__ = ["setup_workspace_routes", "workspace_of"]


async def workspace_of(request: web.Request) -> str:
    """The workspace a scoped route addresses (the default one when unscoped); 404 if not the user's."""
    workspace_id = request.match_info.get("workspace_id", DEFAULT_WORKSPACE)
    await request.app[WORKSPACES].get(request[USER], workspace_id)
    return workspace_id


class WorkspaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workspace_id: str = Field(
        min_length=1, max_length=64, strict=True, description="Letters, digits, '.', '_', '-'."
    )
    python_mode: PythonMode | None = Field(
        None,
        description="stateful (the default of a new workspace): execute_python keeps one interpreter "
        "per conversation; fresh: a new process per call. Omitted: an existing workspace keeps its own.",
    )


class WorkspaceResponse(BaseModel):
    success: bool = True
    workspace_id: str
    created_at: float
    python_mode: PythonMode


class WorkspaceDetail(WorkspaceResponse):
    placement: PlacementRecord | None = Field(
        description="With several Docker engines (AGENT_DOCKER_HOSTS): the engine holding the "
        "workspace's sandbox and files, and the files lost when an engine it was on went away; "
        "null with one engine, or before the workspace's first use.",
    )


class WorkspaceList(BaseModel):
    success: bool = True
    workspaces: list[WorkspaceRecord]


async def create_workspace(request: web.Request) -> web.Response:
    body = await parse_body(request, WorkspaceCreate)
    record = await request.app[WORKSPACES].ensure(request[USER], body.workspace_id, body.python_mode)
    return json_model(WorkspaceResponse(**record.model_dump()))


async def list_workspaces(request: web.Request) -> web.Response:
    return json_model(WorkspaceList(workspaces=await request.app[WORKSPACES].list(request[USER])))


async def get_workspace(request: web.Request) -> web.Response:
    workspaces, owner = request.app[WORKSPACES], request[USER]
    record = await workspaces.get(owner, request.match_info["workspace_id"])
    placement = await workspaces.placement(owner, record.workspace_id)
    return json_model(WorkspaceDetail(**record.model_dump(), placement=placement))


def setup_workspace_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    registry.add(
        app.router,
        Operation(
            "POST",
            "/api/v1/workspaces",
            "Create a workspace, or ensure it exists (and set its python_mode)",
            "workspaces",
            request=WorkspaceCreate,
            response=WorkspaceResponse,
        ),
        create_workspace,
    )
    registry.add(
        app.router,
        Operation(
            "GET",
            "/api/v1/workspaces",
            "List the user's workspaces (the default one included)",
            "workspaces",
            response=WorkspaceList,
        ),
        list_workspaces,
    )
    registry.add(
        app.router,
        Operation(
            "GET",
            "/api/v1/workspaces/{workspace_id}",
            "A workspace, and where its sandbox and files are",
            "workspaces",
            response=WorkspaceDetail,
            errors=(404,),
        ),
        get_workspace,
    )
