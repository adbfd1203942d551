"""How django-allauth fits Custos: who may sign up, and where people land."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.db import transaction
from django.shortcuts import render

from .models import AccountEventKind, SignInMethod, User
from .selectors import sso_signup_allowed
from .signin import client_address, provider_name


class AccountAdapter(DefaultAccountAdapter):
    """Logins are created by administrators (and by single sign-on, where allowed):
    nobody signs themselves up with a password."""

    def is_open_for_signup(self, request):
        return False


def _verified_email(sociallogin) -> str | None:
    """The address the provider says it has verified (``email_verified``), if any."""
    for address in sociallogin.email_addresses:
        if address.verified and address.email:
            return address.email.strip().lower()
    return None


def _any_email(sociallogin) -> str:
    for address in sociallogin.email_addresses:
        if address.email:
            return address.email.strip().lower()
    return ""


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """Single sign-on through OpenID Connect; roles stay Custos's own.

    - An identity signed in before goes to its login.
    - Otherwise the login whose address the provider says it **verified** is used (and
      the identity remembered for next time). Custos's addresses are set by
      administrators, so the local address counts as verified too.
    - Otherwise, only if the DPO's ``sso_signup`` rule allows it, a data-subject login
      is created: no roles, the default clearance, linked to the person with that
      address (``user_create``).
    - Anyone else is refused with a page that says why: an unverified address never
      matches a login and never gets one.
    """

    def pre_social_login(self, request, sociallogin):
        if sociallogin.is_existing:
            email = getattr(sociallogin, "_did_authenticate_by_email", None)
            if email:
                self._trust_local_address(sociallogin.user, email)
            return
        email = _verified_email(sociallogin)
        if email is None:
            self._refuse(request, sociallogin, "unverified", _any_email(sociallogin))
        if not sso_signup_allowed(email=email):
            self._refuse(request, sociallogin, "unknown", email)

    def is_open_for_signup(self, request, sociallogin):
        email = _verified_email(sociallogin)
        return email is not None and sso_signup_allowed(email=email)

    def is_auto_signup_allowed(self, request, sociallogin):
        # Never the sign-up form: the login is made from the provider's verified address.
        return True

    @transaction.atomic
    def save_user(self, request, sociallogin, form=None):
        from .services.accounts import user_create

        email = _verified_email(sociallogin)
        if email is None or not sso_signup_allowed(email=email):
            raise ImmediateHttpResponse(self._refusal(request, sociallogin, "unknown", email))
        data = sociallogin.account.extra_data or {}
        userinfo = data.get("userinfo", data) if isinstance(data, dict) else {}
        name = str(userinfo.get("name") or "")[:200]
        user = user_create(actor=None, email=email, password=None, full_name=name)
        sociallogin.user = user
        sociallogin.account.user = user
        sociallogin.account.save()
        self._trust_local_address(user, email)
        return user

    @staticmethod
    def _trust_local_address(user: User, email: str) -> None:
        """Mark the login's own address verified in allauth's table: it was set by an
        administrator (or is the provider's verified address), and allauth otherwise
        wipes the password of a login it matched by an unverified address."""
        address = EmailAddress.objects.filter(user=user, email__iexact=email).first()
        if address is None:
            EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        elif not address.verified:
            address.verified = True
            address.save(update_fields=["verified"])

    def _refusal(self, request, sociallogin, reason: str, email: str | None):
        from .services.accounts import account_event_record

        provider = provider_name(sociallogin.account.provider)
        account_event_record(
            actor=None,
            event=AccountEventKind.SSO_REFUSED,
            user=None,
            email=email or "",
            ip_address=client_address(request),
            method=SignInMethod.SSO,
            detail=(
                f"{provider} did not say it verified the address"
                if reason == "unverified"
                else f"no login has this address, and creating one through {provider} "
                "is not allowed"
            ),
        )
        context = {"reason": reason, "email": email, "provider": provider}
        return render(request, "socialaccount/refused.html", context, status=403)

    def _refuse(self, request, sociallogin, reason, email):
        raise ImmediateHttpResponse(self._refusal(request, sociallogin, reason, email))
