"""Issue 11, "Responses", replayed: no Content-Security-Policy and no Cache-Control on
the sensitive URLs. Every URL of the authorization matrix, for every role, must now
carry a strict CSP and ``Cache-Control: no-store``; the pages it renders must hold no
inline script without the response's nonce, no inline style and no event handler
attribute; and static files keep being cached (docs/security.md)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests.governance import test_authorization_matrix as matrix

world = matrix.world

# The policy every response must carry, directive by directive.
REQUIRED = {
    "default-src": {"'self'"},
    "style-src": {"'self'"},
    "object-src": {"'none'"},
    "base-uri": {"'self'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
}
NONCE = re.compile(r"^'nonce-([A-Za-z0-9+/=]+)'$")


def parse_csp(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


def csp_problems(response) -> list[str]:
    """What is missing from, or too loose in, the response's Content-Security-Policy."""
    header = response.get("Content-Security-Policy")
    if not header:
        return ["no Content-Security-Policy header"]
    directives = parse_csp(header)
    problems = []
    for name, sources in REQUIRED.items():
        if set(directives.get(name, [])) != sources:
            problems.append(f"{name} is {directives.get(name)}, expected {sorted(sources)}")
    scripts = directives.get("script-src", [])
    if "'self'" not in scripts or any(s != "'self'" and not NONCE.match(s) for s in scripts):
        problems.append(f"script-src is {scripts}: only 'self' and a nonce may run")
    for name, sources in directives.items():
        for source in sources:
            loose = "unsafe" in source or "*" in source or source.startswith(("http", "//"))
            # data: images cannot run anything; Swagger UI draws its icons with them.
            if loose or (source == "data:" and name != "img-src"):
                problems.append(f"{name} allows {source}")
    if "report-only" in " ".join(response.headers).lower():
        problems.append("a report-only policy enforces nothing")
    return problems


def nonce_of(response) -> str | None:
    sources = parse_csp(response.get("Content-Security-Policy", "")).get("script-src", [])
    for source in sources:
        match = NONCE.match(source)
        if match:
            return match.group(1)
    return None


class InlineCode(HTMLParser):
    """Collects what a strict policy would block in a rendered page."""

    def __init__(self, nonce: str | None):
        super().__init__(convert_charrefs=True)
        self.nonce = nonce
        self.problems: list[str] = []
        self._script: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if name == "style":
                self.problems.append(f"style attribute on <{tag}>: {value!r}")
            elif name.startswith("on"):
                self.problems.append(f"event handler {name}= on <{tag}>")
            elif name in ("href", "src", "action") and (value or "").lower().startswith(
                "javascript:"
            ):
                self.problems.append(f"javascript: URL in <{tag} {name}>")
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script":
            self._script = attrs
            src = attrs.get("src")
            if src and not src.startswith("/"):
                self.problems.append(f"script from elsewhere: {src}")
            if "nonce" in attrs and attrs["nonce"] != self.nonce:
                self.problems.append("script nonce does not match the header's")

    def handle_data(self, data):
        if self._script is not None and not self._script.get("src") and data.strip():
            if self._script.get("type") in ("application/json", "application/ld+json"):
                return
            if self.nonce is None or self._script.get("nonce") != self.nonce:
                self.problems.append(f"inline script without the nonce: {data.strip()[:60]!r}")

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None


def page_problems(response) -> list[str]:
    if not response.get("Content-Type", "").startswith("text/html"):
        return []
    if getattr(response, "streaming", False):
        return []
    parser = InlineCode(nonce_of(response))
    parser.feed(response.content.decode())
    return parser.problems


def _request(client, row, placeholders):
    path = row.path.format(**placeholders)
    if row.method == "post":
        return path, client.post(path, data=b"", content_type="text/csv")
    return path, client.get(path)


def _walk_matrix(users, placeholders):
    """Every row of the matrix for every role, as the matrix test requests it."""
    for role in matrix.ROLES:
        client = Client()
        if role != "anonymous":
            client.force_login(users[role])
        for row in matrix.ROWS:
            path, response = _request(client, row, placeholders)
            yield role, row, path, response


@pytest.mark.django_db
def test_every_url_of_the_matrix_is_under_a_strict_policy_and_not_stored(world):
    users, placeholders = world
    failures = []
    walked = 0
    for role, row, path, response in _walk_matrix(users, placeholders):
        walked += 1
        where = f"{role:14} {row.method.upper():4} {path} ({response.status_code})"
        failures += [f"{where}: {problem}" for problem in csp_problems(response)]
        failures += [f"{where}: {problem}" for problem in page_problems(response)]
        if "no-store" not in response.get("Cache-Control", ""):
            failures.append(f"{where}: Cache-Control is {response.get('Cache-Control')!r}")
    assert walked == len(matrix.ROLES) * len(matrix.ROWS)
    assert not failures, "\n" + "\n".join(failures)


@pytest.mark.django_db
def test_pages_that_run_a_script_give_it_the_nonce_of_their_own_response(world):
    """The nonce is in the header and on the page's script tags, and is new each time."""
    users, _ = world
    client = Client()
    client.force_login(users["analyst"])
    first, second = client.get("/"), client.get("/")
    nonces = {nonce_of(first), nonce_of(second)}
    assert None not in nonces and len(nonces) == 2
    for response in (first, second):
        tags = re.findall(r"<script[^>]*>", response.content.decode())
        assert tags, "the dashboard loads htmx"
        assert all(f'nonce="{nonce_of(response)}"' in tag for tag in tags), tags


# --- the 15 sensitive URLs of the finding (and their siblings) -------------------------


def _bearer(user) -> dict:
    from governance.services import accounts

    _, secret = accounts.api_token_create(actor=user, user=user, name="headers")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.fixture
def payload_grant(db):
    """A pseudonymised grant with records: its extracts are real CSV files."""
    from tests.analytics.test_csv_injection import make_payload_grant

    return make_payload_grant()


def _session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_the_sensitive_urls_of_the_finding_are_no_store_and_under_the_policy(world):
    users, p = world
    learner, analyst, auditor = users["learner"], users["analyst"], users["auditor"]
    pages = {
        "my data": (learner, "/me/"),
        "my data in one dataset": (learner, f"/me/data/{p['active']}/"),
        "my data's uses": (learner, "/me/uses/"),
        "a consent receipt": (learner, f"/me/receipts/{p['receipt']}/"),
        "my exports": (learner, "/me/export/"),
        "an export (JSON file)": (learner, f"/me/export/{p['export']}/json/"),
        "an export (HTML file)": (learner, f"/me/export/{p['export']}/html/"),
        "grant data": (analyst, f"/grants/{p['grant']}/data/"),
        "an aggregate": (analyst, f"/grants/{p['grant']}/data/aggregate/?group_by=module"),
        "the audit timeline": (auditor, "/audit/"),
        "the audit CSV export": (auditor, "/audit/export.csv?kind=vote"),
        "an audit object": (auditor, f"/audit/objects/request/{p['review']}/"),
    }
    api = {
        "the API: my data": (learner, "/api/v1/me/data"),
        "the API: an aggregate": (
            analyst,
            f"/api/v1/grants/{p['grant']}/aggregate?group_by=module",
        ),
        "the API: audit events": (auditor, "/api/v1/audit/events"),
    }
    failures = []
    for label, (user, path) in pages.items():
        failures += _sensitive_failures(label, _session(user).get(path))
    for label, (user, path) in api.items():
        failures += _sensitive_failures(label, Client().get(path, **_bearer(user)))
    profile = _session(analyst).post(
        "/accounts/profile/", {"name": "laptop", "scope": "read", "expires_in_days": "30"}
    )
    assert b"cst_" in profile.content, "the new token is on the page"
    failures += _sensitive_failures("the profile showing a new token", profile)
    assert not failures, "\n" + "\n".join(failures)


@pytest.mark.django_db
def test_csv_extracts_are_no_store_and_under_the_policy(payload_grant):
    from analytics import access, services
    from analytics.tasks import extract_prepare_task

    grantee, g = payload_grant.grantee, payload_grant.pk
    extract = services.extract_file_create(
        actor=grantee, scope=access.grant_scope(user=grantee, grant=payload_grant)
    )
    extract_prepare_task(extract.pk)
    responses = {
        "the API's CSV extract": Client().get(
            f"/api/v1/grants/{g}/extract.csv", **_bearer(grantee)
        ),
        "the CSV download of grant data": _session(grantee).post(f"/grants/{g}/data/download/"),
        "a prepared extract file": _session(grantee).get(f"/extracts/{extract.pk}/file/"),
    }
    failures = []
    for label, response in responses.items():
        assert response["Content-Type"].startswith("text/csv"), label
        failures += _sensitive_failures(label, response)
    assert not failures, "\n" + "\n".join(failures)


def _sensitive_failures(label, response) -> list[str]:
    failures = []
    if response.status_code != 200:
        failures.append(f"{label}: answered {response.status_code}")
    if response.get("Cache-Control") is None or "no-store" not in response["Cache-Control"]:
        failures.append(f"{label}: Cache-Control is {response.get('Cache-Control')!r}")
    failures += [f"{label}: {problem}" for problem in csp_problems(response)]
    return failures


@pytest.mark.django_db
def test_a_view_that_allows_caching_cannot_for_a_signed_in_person(rf):
    """The rule is the middleware's, not each view's: a view that marks its answer
    cacheable still sends ``no-store`` to a signed-in person."""
    from django.http import HttpResponse
    from django.utils.cache import patch_cache_control

    from governance.middleware import NoStoreMiddleware
    from tests.factories import make_user

    def cacheable(request):
        response = HttpResponse("hello")
        patch_cache_control(response, public=True, max_age=3600)
        return response

    request = rf.get("/anything/")
    request.user = make_user()
    response = NoStoreMiddleware(cacheable)(request)
    assert response["Cache-Control"] == "no-store"

    from django.contrib.auth.models import AnonymousUser

    request = rf.get("/anything/")
    request.user = AnonymousUser()
    assert "max-age=3600" in NoStoreMiddleware(cacheable)(request)["Cache-Control"]


def test_static_files_keep_their_caching(settings):
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    response = Client().get("/static/css/custos.css")
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")
    assert "max-age" in response["Cache-Control"]


# --- what the templates hold -------------------------------------------------------------

TEMPLATES = Path(settings.BASE_DIR) / "templates"
# A subject access report is a file the person downloads and keeps: it must read and
# print offline, so it carries its own stylesheet. It is only ever sent as an
# attachment (consent/views.py export_download), never rendered as one of our pages.
SELF_CONTAINED_DOCUMENTS = {"consent/export_print.html"}


def _template_problems(text: str) -> list[str]:
    problems = []
    for match in re.finditer(r"<script\b([^>]*)>(.*?)</script>", text, flags=re.S | re.I):
        attrs, body = match.groups()
        # A JSON data block (allauth's passkey pages) is never run, so CSP allows it.
        is_data = re.search(r"""type=["']application/json["']""", attrs)
        if body.strip() and "nonce=" not in attrs and not is_data:
            problems.append(f"inline script without a nonce: {body.strip()[:60]!r}")
        if "src=" in attrs and re.search(r"src=\"(https?:)?//", attrs):
            problems.append(f"script from another origin: {attrs.strip()}")
    if re.search(r"<style\b", text, flags=re.I):
        problems.append("<style> element")
    for match in re.finditer(r"""\sstyle\s*=\s*["']""", text, flags=re.I):
        problems.append(f"style attribute: {text[match.start() : match.start() + 60]!r}")
    for match in re.finditer(r"""\son[a-z]+\s*=\s*["']""", text, flags=re.I):
        problems.append(f"event handler attribute: {text[match.start() : match.start() + 60]!r}")
    if re.search(r"""(href|src|action)\s*=\s*["']\s*javascript:""", text, flags=re.I):
        problems.append("javascript: URL")
    if re.search(
        r"""<(link|script|img|iframe)\b[^>]*(href|src)\s*=\s*["'](https?:)?//""", text, re.I
    ):
        problems.append("a resource from another origin")
    return problems


def test_no_template_holds_inline_script_or_style():
    found = []
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) > 50
    for template in templates:
        name = template.relative_to(TEMPLATES).as_posix()
        if name in SELF_CONTAINED_DOCUMENTS:
            continue
        found += [f"{name}: {p}" for p in _template_problems(template.read_text())]
    assert not found, "\n" + "\n".join(found)


def test_the_template_scan_finds_what_it_looks_for():
    """The scan is only worth something if it catches each kind of inline code."""
    assert _template_problems("<script>alert(1)</script>")
    assert not _template_problems('<script nonce="{{ request.csp_nonce }}">go()</script>')
    assert _template_problems("<style>p{}</style>")
    assert _template_problems('<p style="color: red">')
    assert _template_problems('<button onclick="go()">')
    assert _template_problems('<a href="javascript:go()">')
    assert _template_problems('<script src="https://cdn.example.org/x.js"></script>')
    assert not _template_problems("<script src=\"{% static 'x.js' %}\" defer></script>")


def test_the_downloaded_report_is_only_ever_an_attachment(world):
    """Why export_print.html may keep its stylesheet: it leaves as a file."""
    users, p = world
    client = Client()
    client.force_login(users["learner"])
    response = client.get(f"/me/export/{p['export']}/html/")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
