"""Discovery: the node descriptor, its controller document, the JSON Schemas, and the OpenAPI bearer scheme."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, FastAPI, Request

from biofed.node.routes.shared import JSON, ApiError, answers, cached, node_of

router = APIRouter()


def describe_bearer_tokens(app: FastAPI) -> None:
    """The app's OpenAPI document names the bearer token the write routes declare (`security`)."""
    describe = app.openapi

    def openapi_with_bearer() -> dict:
        document = describe()
        document.setdefault("components", {}).setdefault("securitySchemes", {})["bearerToken"] = {
            "type": "http", "scheme": "bearer", "description": "A node token (`biofed node token create`)"}
        return document

    app.openapi = openapi_with_bearer


@router.get("/.well-known/biofed-node.json", summary="Node descriptor: id, licence, keys",
            responses=answers(ok=(200, JSON, {"type": "object", "required": ["id", "keys"]}), not_modified=True))
def descriptor(request: Request):
    return cached(request, orjson.dumps(node_of(request).descriptor()), JSON, {"Cache-Control": "no-cache"})


@router.get("/controller.json", summary="Controller document of the node's keys (W3C Controlled Identifiers)",
            responses=answers(ok=(200, JSON, {"type": "object", "required": ["id", "verificationMethod", "assertionMethod"]}),
                              not_modified=True))
def controller(request: Request):
    from biofed.protocol.controller import controller_document

    node = node_of(request)
    body = orjson.dumps(controller_document(node.id, node.keys()))
    return cached(request, body, JSON, {"Cache-Control": "no-cache"})


@router.get("/schemas/{name}.json", summary="A JSON Schema the node validates against",
            responses=answers(404, 422, ok=(200, "application/schema+json", {"type": "object"}), not_modified=True))
def schema(name: str, request: Request):
    from biofed.schema import schema_documents, schema_file

    documents = schema_documents()
    if name not in documents:
        raise ApiError(404, "not-found", f"no schema {name!r}; known: {', '.join(sorted(documents))}")
    # the published file, byte for byte
    return cached(request, schema_file(name), "application/schema+json")
