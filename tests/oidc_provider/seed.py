"""Create the test provider's people and register Custos as its client.

``python -m tests.oidc_provider.seed CALLBACK_URL CLIENT_SECRET`` with
DJANGO_SETTINGS_MODULE=tests.oidc_provider.settings, after ``migrate``.
"""

import sys

import django

PASSWORD = "provider-password-42"  # noqa: S105 - a test provider's fixed password
# (e-mail, verified by the provider?, full name)
PEOPLE = [
    ("known@example.org", True, "Kim Known"),
    ("newcomer@example.org", True, "Nia Newcomer"),
    ("unverified@example.org", False, "Uma Unverified"),
]


def main(callback_url: str, client_secret: str) -> None:
    django.setup()
    from allauth.account.models import EmailAddress
    from allauth.idp.oidc.models import Client
    from django.contrib.auth import get_user_model

    User = get_user_model()
    for email, verified, name in PEOPLE:
        first, _, last = name.partition(" ")
        user = User.objects.create_user(
            username=email.split("@")[0], email=email, password=PASSWORD
        )
        user.first_name, user.last_name = first, last
        user.save()
        EmailAddress.objects.create(user=user, email=email, verified=verified, primary=True)
    client = Client(id="custos", name="Custos", skip_consent=False)
    client.set_secret(client_secret)
    client.set_scopes(["openid", "profile", "email"])
    client.set_redirect_uris([callback_url])
    client.set_grant_types([Client.GrantType.AUTHORIZATION_CODE])
    client.set_response_types([Client.ResponseType.CODE])
    client.save()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
