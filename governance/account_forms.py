"""django-allauth's account forms in Custos's words (settings.ACCOUNT_FORMS)."""

from __future__ import annotations

from allauth.account.forms import ChangePasswordForm, LoginForm


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
