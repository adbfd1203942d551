"""django-allauth's account forms in Custos's words (settings.ACCOUNT_FORMS)."""

from __future__ import annotations

from allauth.account.forms import ChangePasswordForm, LoginForm
from allauth.core import context, ratelimit
from allauth.mfa.base.forms import AuthenticateForm, ReauthenticateForm
from django import forms

# Wrong second-factor codes a login may enter in the window of
# ACCOUNT_RATE_LIMITS["mfa_code_failed"] before codes are refused (settings).
MFA_CODE_ACTION = "mfa_code_failed"
TOO_MANY_CODES = (
    "Too many wrong codes. Wait 15 minutes, then try again with a new code from your "
    "app or a recovery code."
)


class SignInForm(LoginForm):
    """Sign in with the e-mail address of the login and its password."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["login"].label = "E-mail address"
        self.fields["login"].widget.attrs.pop("placeholder", None)
        self.fields["password"].widget.attrs.pop("placeholder", None)


class PasswordChangeForm(ChangePasswordForm):
    """Change one's password: the current one, then the new one twice."""

    LABELS = {
        "oldpassword": "Current password",
        "password1": "New password",
        "password2": "New password again",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, label in self.LABELS.items():
            self.fields[name].label = label
            self.fields[name].widget.attrs.pop("placeholder", None)


class _LimitedCodes:
    """A wrong code counts against the login; once too many are wrong, every code is
    refused (even the right one) until the window has passed, so a six-digit code
    cannot be guessed by someone who has the password. A right code clears the count.

    (allauth's own limit on codes is its "login_failed" limit, which Custos switches
    off because django-axes counts failed passwords: governance/lockout.py.)"""

    def clean_code(self) -> str:
        key = f"mfa-code-{self.user.pk}"
        if not ratelimit.consume(context.request, action=MFA_CODE_ACTION, key=key):
            raise forms.ValidationError(TOO_MANY_CODES, code="too_many_codes")
        code = super().clean_code()
        ratelimit.clear(context.request, action=MFA_CODE_ACTION, key=key)
        return code


class MFAAuthenticateForm(_LimitedCodes, AuthenticateForm):
    """The code asked for after the password."""


class MFAReauthenticateForm(_LimitedCodes, ReauthenticateForm):
    """The code asked for again by pages that need a fresh second factor."""
