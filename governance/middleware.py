"""Rules that apply to every request: input no field can hold is refused, how long a
session lasts, two-factor authentication before the pages of a role that needs it, and
the response headers that protect what Custos sends (docs/security.md).

Both run after Django's authentication and messages middleware and allauth's
AccountMiddleware (settings.MIDDLEWARE).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone
from django.utils.http import urlencode

from . import signin
from .signin import SEEN_KEY, SIGNED_IN_KEY

IDLE_MESSAGE = "You were signed out after 30 minutes without activity. Please sign in again."
MAX_AGE_MESSAGE = "You were signed out 12 hours after signing in. Please sign in again."
ENDED_MESSAGE = "Your session has ended. Please sign in again."
SETUP_MESSAGE = (
    "Your role needs two-factor authentication. Set up an authenticator app or a "
    "security key to continue."
)
CONFIRM_MESSAGE = "Confirm it is you with your second factor to continue."
API_MESSAGE = (
    "Your role needs two-factor authentication: set it up in the browser "
    "(Your profile → Two-factor authentication), or use an API token."
)


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def _has_bearer_token(request) -> bool:
    return request.headers.get("Authorization", "").lower().startswith("bearer ")


class SessionLimits:
    """A signed-in session ends 30 minutes after its last request and 12 hours after
    sign-in, whatever the browser does; each with a message on the sign-in page.

    The idle limit is the session's own expiry (SESSION_COOKIE_AGE from its last save):
    renewing it on every request would write the session store on every page, so this
    renews it at most once a minute (CUSTOS_SESSION_RENEW_EVERY), and checks the time of
    the last renewal itself so the person is told why they were signed out.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            ended = self._limit_reached(request)
            if ended:
                auth.logout(request)
                messages.info(request, ended)
                if not is_api(request):
                    return redirect_to_login(request.get_full_path())
        return self.get_response(request)

    def _limit_reached(self, request) -> str | None:
        session = request.session
        now = timezone.now().timestamp()
        signed_in, seen = session.get(SIGNED_IN_KEY), session.get(SEEN_KEY)
        if not isinstance(signed_in, int | float) or not isinstance(seen, int | float):
            # A session from before these limits, or one not made by a sign-in.
            return ENDED_MESSAGE
        if now - signed_in > settings.CUSTOS_SESSION_MAX_AGE:
            return MAX_AGE_MESSAGE
        if now - seen > settings.SESSION_COOKIE_AGE:
            return IDLE_MESSAGE
        if now - seen >= settings.CUSTOS_SESSION_RENEW_EVERY:
            session[SEEN_KEY] = now  # modified: saved with a fresh expiry
        return None


# What a session of a login that already has a second factor, but has not used it in
# this session, may reach: the pages that ask for that factor, and sign-out. Nothing
# that manages factors (recovery codes, deactivating, adding a key): allauth guards
# those with the password alone, which would make the password enough.
_CONFIRM_PAGES = frozenset(
    {
        "mfa_authenticate",
        "mfa_reauthenticate",
        "mfa_reauthenticate_webauthn",
        "account_logout",
    }
)


def _allowed_without_mfa(request, *, has_factor: bool) -> bool:
    """Static files, and: for a login with a factor, only the pages that ask for it
    (``_CONFIRM_PAGES``); for one without, allauth's own pages (sign-out, password,
    two-factor set-up, sessions): everything a person needs to set up a second factor,
    nothing of a role."""
    path = request.path_info
    if settings.STATIC_URL and path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return True
    try:
        match = resolve(path)
    except Resolver404:
        return False
    if has_factor:
        return match.url_name in _CONFIRM_PAGES
    return match.func.__module__.startswith("allauth.")


class MFARequired:
    """Stewards, committee members, the DPO, auditors and administrators reach no page
    until their session has passed two-factor authentication (governance.signin).

    Such a session is taken to set up an authenticator (or, if the login has one, to
    enter a code); a session-authenticated API call gets 403 with a JSON message. A call
    with an API token is not a session: tokens are made on the profile page, which this
    middleware keeps from anyone who has not passed two-factor authentication.
    CUSTOS_DEMO_SKIP_MFA (a demo setting) turns this off.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            settings.CUSTOS_DEMO_SKIP_MFA
            or not request.user.is_authenticated
            or signin.session_passed_mfa(request)
            or (is_api(request) and _has_bearer_token(request))
            or not signin.mfa_required(request.user)
        ):
            return self.get_response(request)
        factors = signin.second_factors(request.user)
        if _allowed_without_mfa(request, has_factor=bool(factors)):
            return self.get_response(request)
        if is_api(request):
            return JsonResponse({"message": API_MESSAGE}, status=403)
        if factors:
            # The login has a factor but this session did not use it (it was added in
            # another browser, or the session predates it): ask for it now.
            messages.info(request, CONFIRM_MESSAGE)
            view = "mfa_reauthenticate" if "totp" in factors else "mfa_reauthenticate_webauthn"
            return redirect(f"{reverse(view)}?{urlencode({'next': request.get_full_path()})}")
        messages.info(request, SETUP_MESSAGE)
        return redirect("mfa_index")


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


# --- input no field can hold ----------------------------------------------------------
# A NUL character (``%00`` in a URL, ``\\u0000`` in JSON) cannot be stored in PostgreSQL
# text and means nothing in a name, an e-mail or a search; letting it through turned into
# 500s wherever it reached the database (a lookup, a filter, a save). One check here
# answers every page and API with a 400 and a plain reason instead.

NUL = "\x00"
NUL_MESSAGE = "The request holds a NUL character (0x00), which no field accepts."


def bad_request(request: HttpRequest, message: str, status: int = 400):
    """A 400 (or ``status``) the way the surface speaks: JSON for the API, a page otherwise."""
    if is_api(request):
        return JsonResponse({"message": message}, status=status)
    return render(request, "400.html", {"message": message}, status=status)


def _holds_nul(query) -> bool:
    return any(NUL in key or any(NUL in v for v in values) for key, values in query.lists())


def _headers_hold_nul(request: HttpRequest) -> bool:
    """A NUL in any header or cookie: the sign-in records the User-Agent and the session
    store looks the cookie up, and PostgreSQL refused both with a 500 (so a failed
    sign-in went uncounted by the lockout)."""
    return any(
        NUL in value for key, value in request.META.items() if key.startswith("HTTP_")
    ) or any(NUL in key or NUL in value for key, value in request.COOKIES.items())


class RejectNulMiddleware:
    """400 for a NUL in the path, the query string, a header or cookie, or a form's
    (non-file) fields. Runs before the session and authentication middleware.

    File contents are not looked at here: an uploaded CSV is checked row by row by the
    import, which names the row. JSON bodies are checked by ``governance.parsers``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        if NUL in request.path_info or _holds_nul(request.GET) or _headers_hold_nul(request):
            return bad_request(request, NUL_MESSAGE)
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            if _holds_nul(request.POST):
                return bad_request(request, NUL_MESSAGE)
        return self.get_response(request)
