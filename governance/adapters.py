"""How django-allauth fits Custos: who may sign up, and where people land."""

from __future__ import annotations

from allauth.account.adapter import DefaultAccountAdapter


class AccountAdapter(DefaultAccountAdapter):
    """Logins are created by administrators (and by single sign-on, where allowed):
    nobody signs themselves up with a password."""

    def is_open_for_signup(self, request):
        return False
