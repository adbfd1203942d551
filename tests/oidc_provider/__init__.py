"""A real OpenID Connect provider for the single sign-on tests: allauth's own identity
provider (``allauth.idp.oidc``) as a small Django project of its own, run by
``tests/governance/test_sso.py`` in a separate process on a loopback port."""
