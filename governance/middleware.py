"""Refuse input no field of Custos can hold before it reaches a view.

A NUL character (``%00`` in a URL, ``\\u0000`` in JSON) cannot be stored in PostgreSQL
text and means nothing in a name, an e-mail or a search; letting it through turned into
500s wherever it reached the database (a lookup, a filter, a save). One check here
answers every page and API with a 400 and a plain reason instead.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.shortcuts import render

NUL = "\x00"
NUL_MESSAGE = "The request holds a NUL character (0x00), which no field accepts."


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def bad_request(request: HttpRequest, message: str, status: int = 400):
    """A 400 (or ``status``) the way the surface speaks: JSON for the API, a page otherwise."""
    if is_api(request):
        return JsonResponse({"message": message}, status=status)
    return render(request, "400.html", {"message": message}, status=status)


def _holds_nul(query) -> bool:
    return any(NUL in key or any(NUL in v for v in values) for key, values in query.lists())


class RejectNulMiddleware:
    """400 for a NUL in the path, the query string or a form's (non-file) fields.

    File contents are not looked at here: an uploaded CSV is checked row by row by the
    import, which names the row. JSON bodies are checked by ``governance.parsers``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if NUL in request.path_info or _holds_nul(request.GET):
            return bad_request(request, NUL_MESSAGE)
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            if _holds_nul(request.POST):
                return bad_request(request, NUL_MESSAGE)
        return self.get_response(request)
