"""OpenAPI 3.1, generated from the pydantic models the handlers actually use.

Each surface registers its routes through :meth:`OpenAPIRegistry.add`, which both adds the aiohttp
route and records the operation, so the document cannot drift from the routes that exist.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

__all__ = ["WORKSPACE_PREFIX", "ErrorBody", "OpenAPIRegistry", "Operation"]

WORKSPACE_PREFIX = "/api/v1/workspaces/{workspace_id}"

_REASONS = {
    400: "Bad request",
    401: "Missing or invalid token (Authorization: Bearer or X-Api-Key)",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable (see the Accept header this operation needs)",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Idempotency-Key already used for a different request",
    429: "Too many requests (see Retry-After)",
    503: "Unavailable",
}
_IDEMPOTENT_METHODS = frozenset({"POST", "PUT", "PATCH"})
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Send the request again with the same key: it runs once, and the retry gets the "
    "first answer (Idempotent-Replayed: true). See docs/protocols-safety.md.",
}


class ErrorBody(BaseModel):
    """Every error response."""

    success: Literal[False] = False
    error: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    tag: str
    request: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    query: type[BaseModel] | None = None  # documented as query parameters
    status: int = 200
    also: tuple[int, ...] = ()  # other statuses whose body is ``response`` too (a probe's 503)
    public: bool = False
    errors: tuple[int, ...] = ()
    description: str = ""
    responses_raw: dict[str, Any] = field(default_factory=dict)
    request_raw: dict[str, Any] = field(default_factory=dict)  # a non-JSON requestBody, as it is
    error_model: type[BaseModel] = ErrorBody  # the surface's error envelope (see api.web.errors)


class OpenAPIRegistry:
    def __init__(self) -> None:
        self._operations: list[Operation] = []

    def add(self, router: web.UrlDispatcher, operation: Operation, handler: Handler) -> None:
        router.add_route(operation.method, operation.path, handler)
        self._operations.append(operation)

    def add_scoped(self, router: web.UrlDispatcher, operation: Operation, handler: Handler) -> None:
        """Register ``/api/v1<path>`` (the user's default workspace) and its workspace-scoped form.

        ``operation.path`` is the part after ``/api/v1``; the handler reads the workspace with
        :func:`api.rest.workspaces.workspace_of`.
        """
        self.add(router, replace(operation, path=f"/api/v1{operation.path}"), handler)
        self.add(router, replace(operation, path=f"{WORKSPACE_PREFIX}{operation.path}"), handler)

    def document(self, title: str, version: str, description: str) -> dict[str, Any]:
        models: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
            (ErrorBody, "serialization")
        ]
        for op in self._operations:
            if op.error_model is not ErrorBody:
                models.append((op.error_model, "serialization"))
            if op.request is not None:
                models.append((op.request, "validation"))
            if op.response is not None:
                models.append((op.response, "serialization"))
        refs, defs = models_json_schema(models, ref_template="#/components/schemas/{model}")
        paths: dict[str, dict[str, Any]] = {}
        for op in self._operations:
            paths.setdefault(op.path, {})[op.method.lower()] = self._operation(op, refs)
        return {
            "openapi": "3.1.0",
            "info": {"title": title, "version": version, "description": description},
            "paths": paths,
            "components": {
                "schemas": defs.get("$defs", {}),
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer"},
                    "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                },
            },
            "security": [{"bearerAuth": []}, {"apiKeyAuth": []}],
        }

    @staticmethod
    def _operation(op: Operation, refs: dict[Any, Any]) -> dict[str, Any]:
        error_ref = refs[(op.error_model, "serialization")]
        responses: dict[str, Any] = {}
        if op.response is not None:
            for status in (op.status, *op.also):
                responses[str(status)] = {
                    "description": "Success" if status == op.status else _REASONS.get(status, "Error"),
                    "content": {"application/json": {"schema": refs[(op.response, "serialization")]}},
                }
        responses.update(op.responses_raw)
        # Idempotency-Key applies where a body is buffered (JSON, or none), not to multipart uploads.
        keyed = op.method in _IDEMPOTENT_METHODS and not op.request_raw
        codes = (
            set(op.errors)
            | (
                {400} if op.request is not None or op.query is not None else set()
            )  # bodies and queries are validated
            | (set() if op.public else {401})
            | ({400, 409, 422} if keyed else set())
            | {429}
        )
        for code in sorted(codes):
            responses[str(code)] = {
                "description": _REASONS.get(code, "Error"),
                "content": {"application/json": {"schema": error_ref}},
            }
        spec: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": f"{op.method.lower()}_{op.path.strip('/').replace('/', '_').replace('{', '').replace('}', '') or 'root'}",
            "responses": responses,
        }
        if op.description:
            spec["description"] = op.description
        if op.public:
            spec["security"] = []
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"{(\w+)}", op.path)
        ]
        if op.query is not None:
            schema = op.query.model_json_schema()
            required = set(schema.get("required", []))
            for name, prop in schema.get("properties", {}).items():
                parameters.append(
                    {
                        "name": prop.get("alias", name),
                        "in": "query",
                        "required": name in required,
                        "schema": {k: v for k, v in prop.items() if k not in ("title", "description")},
                        "description": prop.get("description", ""),
                    }
                )
        if keyed:
            parameters.append(_IDEMPOTENCY_KEY)
        if parameters:
            spec["parameters"] = parameters
        if op.request is not None:
            spec["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(op.request, "validation")]}},
            }
        elif op.request_raw:
            spec["requestBody"] = op.request_raw
        return spec
