"""Response headers that protect what Custos sends (docs/security.md)."""

from __future__ import annotations

from django.conf import settings


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every answer that may carry personal data, a token
    or an audit record, so that no browser, proxy or shared computer keeps a copy.

    Rule: every response to a signed-in person, or to a request carrying credentials
    (a session cookie, a bearer token), is ``no-store`` whatever its view said. An
    anonymous response is ``no-store`` too unless its view chose its own caching; the
    sign-in and password pages choose ``no-store``. Static files never reach this
    middleware: whitenoise answers them first, with their long-lived caching.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if self._carries_credentials(request) or not response.has_header("Cache-Control"):
            response["Cache-Control"] = "no-store"
            response.headers.pop("Expires", None)
        return response

    @staticmethod
    def _carries_credentials(request) -> bool:
        user = getattr(request, "user", None)
        return bool(
            (user is not None and user.is_authenticated)
            or request.META.get("HTTP_AUTHORIZATION")
            or settings.SESSION_COOKIE_NAME in request.COOKIES
        )
