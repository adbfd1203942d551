"""The API's request parser: JSON, bounded in size and depth, refusing NUL characters.

DRF's own JSONParser lets a RecursionError through (50,000 nested brackets were a
500). The size bound is Django's DATA_UPLOAD_MAX_MEMORY_SIZE, which DRF applies when it
reads a JSON body (RequestDataTooBig, answered 413 by ``governance.api``); it is
checked here again so the bound holds whichever way the body arrives. Uploads of
records do not come through here: they stream through their own parser
(``governance.api.CSVBodyParser``) and are bounded by the import's row checks.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework import exceptions, parsers, status

from . import jsonsafe


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


def too_large_message() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"The request body is larger than {limit // 1024} kB; nothing was changed."


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1)
        if len(raw) > limit:
            raise RequestTooLarge(too_large_message())
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = raw.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            raise exceptions.ParseError("The request body is not UTF-8 text.") from None
        try:
            return jsonsafe.loads(text)
        except jsonsafe.UnsafeJSON as exc:
            raise exceptions.ParseError(str(exc)) from None
