"""``/api/v1/prompts`` and ``/api/v1/personalizations``: a user's named system prompts and preferences.

Both resources have the same three routes (list, create-or-replace, get by name); only the kind
and the response keys differ. Another user's items answer 404, like missing ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field

from api.web.http import json_model, parse_body
from api.web.keys import LIBRARY, USER
from api.web.openapi import OpenAPIRegistry, Operation
from runtime.features.library import MAX_CONTENT_CHARS, MAX_ITEMS, NAME_PATTERN, Kind, LibraryItem

__all__ = ["setup_library_routes"]


class LibraryItemWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=NAME_PATTERN,
        strict=True,
        description="1-64 letters, digits, '.', '_', '-', starting with a letter or digit.",
    )
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS, strict=True)


class PromptList(BaseModel):
    success: bool = True
    prompts: list[LibraryItem]


class PromptResponse(BaseModel):
    success: bool = True
    prompt: LibraryItem


class PersonalizationList(BaseModel):
    success: bool = True
    personalizations: list[LibraryItem]


class PersonalizationResponse(BaseModel):
    success: bool = True
    personalization: LibraryItem


@dataclass(frozen=True)
class _Resource:
    kind: Kind
    plural: str
    list_model: type[BaseModel]
    item_model: type[BaseModel]

    def list_handler(self) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            items = await request.app[LIBRARY].list(self.kind, request[USER])
            return json_model(self.list_model.model_validate({self.plural: items}))

        return handler

    def get_handler(self) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            item = await request.app[LIBRARY].get(self.kind, request[USER], request.match_info["name"])
            return json_model(self.item_model.model_validate({self.kind: item}))

        return handler

    def put_handler(self) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            body = await parse_body(request, LibraryItemWrite)
            item = await request.app[LIBRARY].put(self.kind, request[USER], body.name, body.content)
            return json_model(self.item_model.model_validate({self.kind: item}))

        return handler


_RESOURCES = [
    _Resource("prompt", "prompts", PromptList, PromptResponse),
    _Resource("personalization", "personalizations", PersonalizationList, PersonalizationResponse),
]


def setup_library_routes(app: web.Application, registry: OpenAPIRegistry) -> None:
    for res in _RESOURCES:
        path = f"/api/v1/{res.plural}"
        registry.add(
            app.router,
            Operation("GET", path, f"List the user's {res.plural}", res.plural, response=res.list_model),
            res.list_handler(),
        )
        registry.add(
            app.router,
            Operation(
                "POST",
                path,
                f"Create a {res.kind}, or replace the content of the one with that name",
                res.plural,
                request=LibraryItemWrite,
                response=res.item_model,
                errors=(409, 413),
                description=f"At most {MAX_ITEMS} {res.plural} per user: a new name beyond that is a 409.",
            ),
            res.put_handler(),
        )
        registry.add(
            app.router,
            Operation(
                "GET",
                f"{path}/{{name}}",
                f"One {res.kind} by name",
                res.plural,
                response=res.item_model,
                errors=(404,),
            ),
            res.get_handler(),
        )
