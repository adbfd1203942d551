"""The OpenAPI schema says what the API really answers: list pages and error bodies.

Every error of the API is JSON with a ``message`` (``governance.api.exception_handler``,
the NUL middleware, the 404/403/400/413 handlers); a 400 about fields also carries
``errors``. Rather than repeat that on each operation, ``document_errors`` (a
drf-spectacular postprocessing hook) adds the errors any operation can answer when the
operation does not describe them itself:

- 400 (bad input, a NUL in the query string), 401 (no token, a bad or revoked one),
  403 (a role that may not do this, e.g. an auditor writing) on every operation;
- 404 where the path names an object or the list is paginated (a page past the end);
- 413 (body over DATA_UPLOAD_MAX_MEMORY_SIZE) and 415 (not JSON) where a body is taken.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, inline_serializer
from rest_framework import serializers

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every error: a plain-words message; field errors under errors.",
    "properties": {
        "message": {"type": "string"},
        "errors": {"description": "Per field (or a list, for CSV rows), when there are any."},
    },
    "required": ["message"],
}
_ERRORS = {
    "400": "The input was refused; the message says why. Nothing was changed.",
    "401": "No token, or a token that is not valid.",
    "403": "You may not do this; the message says why.",
}
_NOT_FOUND = "No such object (or page), or not one you may see."
_BODY_ERRORS = {
    "413": "The request body is too large. Nothing was changed.",
    "415": "The body is not of a type this operation reads.",
}
_METHODS = {"get", "post", "put", "patch", "delete"}

PAGE = OpenApiParameter("page", int, description="A page of the list, from 1.")


def paginated(name: str, item: type[serializers.Serializer]):
    """The shape of a PageNumberPagination page of ``item``."""
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


def document_errors(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorOut", ERROR_SCHEMA)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    for path, item in result.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            codes = dict(_ERRORS)
            names = {p.get("name") for p in operation.get("parameters", [])}
            if "{" in path or "page" in names:
                codes["404"] = _NOT_FOUND
            if "requestBody" in operation:
                codes.update(_BODY_ERRORS)
            responses = operation.setdefault("responses", {})
            for code, description in codes.items():
                responses.setdefault(code, {"description": description, "content": error})
    return result
