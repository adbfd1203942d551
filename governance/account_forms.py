"""django-allauth's account forms in Custos's words (settings.ACCOUNT_FORMS)."""

from __future__ import annotations

from allauth.account.forms import LoginForm


class SignInForm(LoginForm):
    """Sign in with the e-mail address of the login and its password."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "E-mail address"
        self.fields["login"].widget.attrs.pop("placeholder", None)
        self.fields["password"].widget.attrs.pop("placeholder", None)
