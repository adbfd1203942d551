from django.utils import dateformat, timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from .models import ApiToken
from .services.accounts import ApiTokenExpired, api_token_authenticate


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>`` with a personal token from the profile page.

    The token itself is ``request.auth``, so that permissions can read its scope.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            secret = header[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Malformed token.") from None
        try:
            token = api_token_authenticate(secret)
        except ApiTokenExpired as expired:
            when = dateformat.format(timezone.localtime(expired.expires_at), r"j F Y \a\t H:i T")
            raise exceptions.AuthenticationFailed(
                f"This token expired on {when}. Create a new one on your profile page."
            ) from None
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return (token.user, token)

    def authenticate_header(self, request):
        return self.keyword


class TokenScope(permissions.BasePermission):
    """A ``read`` token may only read: every method but GET, HEAD and OPTIONS is refused,
    on every endpoint. Sessions and ``read-write`` tokens are not limited here.

    It is in DEFAULT_PERMISSION_CLASSES; a view that sets its own permission classes
    must include it (tests/governance/test_token_scope_expiry.py walks every write).
    """

    message = (
        "This token may only read. Writing needs a read-write token, "
        "which you can create on your profile page."
    )

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS or not isinstance(request.auth, ApiToken):
            return True
        return request.auth.may_write


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents the bearer token in the OpenAPI schema."""

    target_class = "governance.api_auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token. A read-only token is refused every "
            "write (403); an expired token is refused (401).",
        }
