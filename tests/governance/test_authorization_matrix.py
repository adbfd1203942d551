"""Every URL × every role (and anonymous) against an expected status.

A URL added to the project without a row here fails ``test_every_url_has_a_row``.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import get_resolver

from governance.models import Person, Role
from governance.services import registry
from governance.services.records import records_import
from tests.factories import make_dataset, make_purpose, make_user

ROLES = [
    "anonymous",
    "learner",
    "steward",
    "other_steward",
    "analyst",
    "committee",
    "dpo",
    "auditor",
    "admin",
]


@dataclass(frozen=True)
class Row:
    name: str  # URL name
    path: str  # with {placeholders} filled from the world
    expect: tuple[int, ...]  # one status per role, in ROLES order
    method: str = "get"
    label: str = ""


def _all(anon: int, rest: int) -> tuple[int, ...]:
    return (anon,) + (rest,) * (len(ROLES) - 1)


#                                  anon learner stew other analyst committee dpo auditor admin
STEWARD_ONLY = (302, 403, 200, 403, 403, 403, 403, 403, 200)
DRAFT_STEWARD_ONLY = (302, 404, 200, 404, 404, 404, 403, 403, 200)
DPO_ONLY = (302, 403, 403, 403, 403, 403, 200, 403, 403)
DPO_OBJECT = (302, 404, 404, 404, 404, 404, 200, 404, 404)
ANALYST_ONLY = (302, 403, 403, 403, 200, 403, 403, 403, 403)
REQUEST_VISIBLE = (302, 404, 200, 404, 200, 200, 200, 200, 200)
REQUESTER_ONLY = (302, 404, 404, 404, 200, 404, 404, 404, 404)
API_REQUEST_VISIBLE = (401, 404, 200, 404, 200, 200, 200, 200, 200)
API_REQUESTER_ONLY = (401, 404, 404, 404, 200, 404, 404, 404, 404)
ME_OBJECT = (302, 200, 404, 404, 404, 404, 404, 404, 404)
ME_POST = (302, 302, 404, 404, 404, 404, 404, 404, 404)
API_ME = (401, 200, 404, 404, 404, 404, 404, 404, 404)
AUDIT_ONLY = (302, 403, 403, 403, 403, 403, 403, 200, 200)
API_AUDIT_ONLY = (401, 403, 403, 403, 403, 403, 403, 200, 200)

ROWS = [
    Row("dashboard", "/", _all(302, 200)),
    Row("account_login", "/accounts/login/", _all(200, 302)),
    Row("account_signup", "/accounts/signup/", _all(200, 302)),
    Row("account_reset_password", "/accounts/password/reset/", _all(200, 200)),
    Row("account_reset_password_done", "/accounts/password/reset/done/", _all(200, 200)),
    Row(
        "account_reset_password_from_key",
        "/accounts/password/reset/key/1-bad-token/",
        _all(200, 200),
    ),
    Row(
        "account_reset_password_from_key_done",
        "/accounts/password/reset/key/done/",
        _all(200, 200),
    ),
    Row("account_change_password", "/accounts/password/change/", _all(302, 200)),
    Row("mfa_index", "/accounts/2fa/", _all(302, 200)),
    Row("usersessions_list", "/accounts/sessions/", _all(302, 200)),
    Row("account_inactive", "/accounts/inactive/", _all(200, 200)),
    Row("account_reauthenticate", "/accounts/reauthenticate/", _all(302, 200)),
    Row("account_request_reauthentication_code", "/accounts/reauthenticate/code/", _all(302, 302)),
    Row(
        "account_confirm_reauthentication_code",
        "/accounts/reauthenticate/code/confirm/",
        _all(302, 302),
    ),
    Row("account_email", "/accounts/email/", _all(404, 404)),
    Row("lockout-list", "/accounts/lockouts/", (302, 403, 403, 403, 403, 403, 403, 403, 200)),
    Row("account_email_verification_sent", "/accounts/confirm-email/", _all(200, 200)),
    Row("account_set_password", "/accounts/password/set/", _all(302, 302)),
    Row("account_confirm_login_code", "/accounts/login/code/confirm/", _all(302, 302)),
    Row("account_confirm_email", "/accounts/confirm-email/bad-key/", _all(200, 200)),
    Row("mfa_authenticate", "/accounts/2fa/authenticate/", _all(302, 302)),
    Row("mfa_reauthenticate", "/accounts/2fa/reauthenticate/", _all(302, 302)),
    Row("mfa_activate_totp", "/accounts/2fa/totp/activate/", _all(302, 302)),
    Row("mfa_deactivate_totp", "/accounts/2fa/totp/deactivate/", _all(302, 404)),
    Row("mfa_view_recovery_codes", "/accounts/2fa/recovery-codes/", _all(302, 404)),
    Row("mfa_generate_recovery_codes", "/accounts/2fa/recovery-codes/generate/", _all(302, 302)),
    Row("mfa_download_recovery_codes", "/accounts/2fa/recovery-codes/download/", _all(302, 404)),
    Row("mfa_list_webauthn", "/accounts/2fa/webauthn/", _all(302, 200)),
    Row("mfa_add_webauthn", "/accounts/2fa/webauthn/add/", _all(302, 302)),
    Row("mfa_reauthenticate_webauthn", "/accounts/2fa/webauthn/reauthenticate/", _all(302, 302)),
    Row("mfa_remove_webauthn", "/accounts/2fa/webauthn/keys/999999/remove/", _all(302, 302)),
    Row("mfa_edit_webauthn", "/accounts/2fa/webauthn/keys/999999/edit/", _all(302, 302)),
    Row("mfa_login_webauthn", "/accounts/2fa/webauthn/login/", _all(302, 302)),
    Row("socialaccount_login_cancelled", "/accounts/3rdparty/login/cancelled/", _all(200, 200)),
    Row("socialaccount_login_error", "/accounts/3rdparty/login/error/", _all(401, 401)),
    Row("socialaccount_signup", "/accounts/3rdparty/signup/", _all(302, 302)),
    Row("socialaccount_connections", "/accounts/3rdparty/", _all(302, 200)),
    Row("openid_connect_login", "/accounts/oidc/no-such-provider/login/", _all(404, 404)),
    Row(
        "openid_connect_callback", "/accounts/oidc/no-such-provider/login/callback/", _all(404, 404)
    ),
    Row("profile", "/accounts/profile/", _all(302, 200)),
    Row("sign-out-everywhere", "/accounts/profile/sign-out-everywhere/", _all(302, 405)),
    Row("dataset-list", "/datasets/", _all(302, 200)),
    Row("dataset-create", "/datasets/new/", (302, 403, 200, 200, 403, 403, 403, 403, 403)),
    Row("dataset-detail", "/datasets/{active}/", _all(302, 200)),
    Row(
        "dataset-detail",
        "/datasets/{draft_dataset}/",
        (302, 404, 200, 404, 404, 404, 200, 200, 200),
        label="draft",
    ),
    Row("dataset-detail", "/datasets/no-such-dataset/", _all(302, 404), label="missing"),
    Row("dataset-edit", "/datasets/{active}/edit/", STEWARD_ONLY),
    Row("dataset-edit", "/datasets/{draft_dataset}/edit/", DRAFT_STEWARD_ONLY, label="draft"),
    Row("field-create", "/datasets/{active}/fields/new/", STEWARD_ONLY),
    Row("field-create", "/datasets/{draft_dataset}/fields/new/", DRAFT_STEWARD_ONLY, label="draft"),
    Row("field-edit", "/datasets/{active}/fields/module/edit/", STEWARD_ONLY),
    Row("dataset-upload", "/datasets/{active}/upload/", STEWARD_ONLY),
    Row("dataset-upload", "/datasets/{draft_dataset}/upload/", DRAFT_STEWARD_ONLY, label="draft"),
    Row("load-detail", "/loads/{load}/", (302, 404, 200, 404, 404, 404, 200, 200, 200)),
    # A finished load: the POST changes nothing, but who may ask is still checked.
    Row(
        "load-retry",
        "/loads/{load}/retry/",
        (302, 404, 302, 404, 404, 404, 403, 403, 302),
        method="post",
    ),
    Row("purpose-list", "/purposes/", _all(302, 200)),
    Row("purpose-create", "/purposes/new/", (302, 403, 200, 200, 403, 403, 200, 403, 403)),
    Row("purpose-detail", "/purposes/{purpose}/", _all(302, 200)),
    Row("purpose-edit", "/purposes/{purpose}/edit/", (302, 403, 200, 403, 403, 403, 200, 403, 403)),
    Row("policy-list", "/policies/", _all(302, 200)),
    Row("policy-create", "/policies/new/", DPO_ONLY),
    Row("policy-detail", "/policies/{policy}/", _all(302, 200)),
    Row("policy-edit", "/policies/{policy}/edit/", DPO_ONLY),
    Row("person-list", "/people/", DPO_ONLY),
    Row("person-import", "/people/import/", DPO_ONLY),
    Row("person-detail", "/people/{person}/", DPO_OBJECT),
    Row("api-dataset-list", "/api/v1/datasets/", _all(401, 200)),
    Row("api-dataset-detail", "/api/v1/datasets/{active}/", _all(401, 200)),
    Row(
        "api-dataset-detail",
        "/api/v1/datasets/{draft_dataset}/",
        (401, 404, 200, 404, 404, 404, 200, 200, 200),
        label="draft",
    ),
    Row(
        "api-dataset-records",
        "/api/v1/datasets/{active}/records/",
        (401, 403, 400, 403, 403, 403, 403, 403, 400),
        method="post",
    ),
    Row(
        "api-dataset-records",
        "/api/v1/datasets/{draft_dataset}/records/",
        (401, 404, 400, 404, 404, 404, 403, 403, 400),
        method="post",
        label="draft",
    ),
    Row("api-purpose-list", "/api/v1/purposes/", _all(401, 200)),
    Row("api-policy-list", "/api/v1/policies/", _all(401, 200)),
    Row("api-schema", "/api/schema/", _all(401, 200)),
    Row("api-docs", "/api/docs/", _all(401, 200)),
    # --- analytics requests (issue 3); the 'committee' user chairs the committee -----
    Row("request-list", "/requests/", ANALYST_ONLY),
    Row("request-create", "/requests/new/", ANALYST_ONLY),
    Row("request-findings-preview", "/requests/findings/", ANALYST_ONLY, method="post"),
    Row("request-detail", "/requests/{review}/", REQUEST_VISIBLE),
    Row("request-detail", "/requests/{draft}/", REQUESTER_ONLY, label="draft"),
    Row("request-detail", "/requests/999999/", _all(302, 404), label="missing"),
    Row("request-edit", "/requests/{draft}/edit/", REQUESTER_ONLY),
    # POSTs with no body on requests whose state refuses them: nothing changes.
    Row(
        "request-submit",
        "/requests/{review}/submit/",
        (302, 404, 403, 404, 400, 403, 403, 403, 403),
        method="post",
    ),
    Row(
        "request-withdraw",
        "/requests/{approved}/withdraw/",
        (302, 404, 403, 404, 200, 403, 403, 403, 403),
        method="post",
    ),
    Row(
        "request-signoff",
        "/requests/{waiting}/signoff/",
        (302, 404, 200, 404, 403, 403, 403, 403, 403),
    ),
    Row("request-vote", "/requests/{review}/vote/", (302, 404, 403, 404, 403, 200, 403, 403, 403)),
    Row(
        "request-decide",
        "/requests/{review}/decide/",
        (302, 404, 403, 404, 403, 200, 403, 403, 403),
    ),
    # Only the chair corrects, and only a decided request (the service checks the rest).
    Row(
        "request-correct",
        "/requests/{approved}/decision/correct/",
        (302, 404, 403, 404, 403, 200, 403, 403, 403),
    ),
    Row(
        "request-correct",
        "/requests/{review}/decision/correct/",
        (302, 404, 403, 404, 403, 403, 403, 403, 403),
        label="undecided",
    ),
    Row("steward-queue", "/reviews/stewards/", (302, 403, 200, 200, 403, 403, 403, 403, 403)),
    Row("committee-queue", "/reviews/committee/", (302, 403, 403, 403, 403, 200, 403, 403, 403)),
    Row("grant-detail", "/grants/{grant}/", (302, 404, 404, 404, 200, 200, 200, 200, 200)),
    Row(
        "grant-revoke",
        "/grants/{grant}/revoke/",
        (302, 404, 404, 404, 403, 200, 200, 403, 403),
        method="post",
    ),
    Row("inbox", "/inbox/", _all(302, 200)),
    Row(
        "inbox-read",
        "/inbox/{notification}/read/",
        (302, 404, 404, 404, 302, 404, 404, 404, 404),
        method="post",
    ),
    Row("rule-list", "/rules/", _all(302, 200)),
    Row("rule-edit", "/rules/{rule}/edit/", DPO_ONLY),
    Row("api-request-list", "/api/v1/requests/", _all(401, 200)),
    Row("api-request-detail", "/api/v1/requests/{review}/", API_REQUEST_VISIBLE),
    Row("api-request-detail", "/api/v1/requests/{draft}/", API_REQUESTER_ONLY, label="draft"),
    Row(
        "api-request-submit",
        "/api/v1/requests/{review}/submit",
        (401, 404, 403, 404, 400, 403, 403, 403, 403),
        method="post",
    ),
    Row(
        "api-request-withdraw",
        "/api/v1/requests/{approved}/withdraw",
        (401, 404, 403, 404, 400, 403, 403, 403, 403),
        method="post",
    ),
    Row(
        "api-request-signoffs",
        "/api/v1/requests/{waiting}/signoffs",
        (401, 404, 400, 404, 403, 403, 403, 403, 403),
        method="post",
    ),
    Row(
        "api-request-votes",
        "/api/v1/requests/{review}/votes",
        (401, 404, 403, 404, 403, 400, 403, 403, 403),
        method="post",
    ),
    Row(
        "api-request-decision",
        "/api/v1/requests/{review}/decision",
        (401, 404, 403, 404, 403, 400, 403, 403, 403),
        method="post",
    ),
    Row(
        "api-grant-detail", "/api/v1/grants/{grant}/", (401, 404, 404, 404, 200, 200, 200, 200, 200)
    ),
    Row(
        "api-grant-revoke",
        "/api/v1/grants/{grant}/revoke",
        (401, 404, 404, 404, 403, 400, 400, 403, 403),
        method="post",
    ),
    # --- governed data access (issue 4); the analyst holds the (aggregate-only) grant ---
    Row("grant-data", "/grants/{grant}/data/", REQUESTER_ONLY),
    Row("grant-aggregate", "/grants/{grant}/data/aggregate/?group_by=module", REQUESTER_ONLY),
    Row(
        "grant-download",
        "/grants/{grant}/data/download/",
        (302, 404, 404, 404, 403, 404, 404, 404, 404),
        method="post",
    ),
    Row("extract-detail", "/extracts/{extract}/", REQUESTER_ONLY),
    Row(
        "extract-retry",
        "/extracts/{extract}/retry/",
        (302, 404, 404, 404, 302, 404, 404, 404, 404),
        method="post",
    ),
    Row("extract-file", "/extracts/{extract}/file/", (302, 404, 404, 404, 403, 404, 404, 404, 404)),
    Row(
        "api-grant-extract",
        "/api/v1/grants/{grant}/extract.csv",
        (401, 404, 404, 404, 403, 404, 404, 404, 404),
    ),
    Row(
        "api-grant-aggregate",
        "/api/v1/grants/{grant}/aggregate?group_by=module",
        API_REQUESTER_ONLY,
    ),
    Row("api-grant-access-events", "/api/v1/grants/{grant}/access-events/", API_REQUESTER_ONLY),
    # --- consent and "my data" (issue 5): only the learner's login is linked to a person
    # (S1); a login linked to none sees the overview pages with an explanation, and its
    # object URLs answer 404.
    Row("my-data", "/me/", _all(302, 200)),
    Row("my-dataset", "/me/data/{active}/", ME_OBJECT),
    Row("my-dataset", "/me/data/{draft_dataset}/", _all(302, 404), label="holds nothing"),
    Row("my-uses", "/me/uses/", _all(302, 200)),
    Row("my-consents", "/me/consents/", _all(302, 200)),
    # Already given: a message and a redirect, nothing changed.
    Row("consent-give", "/me/consents/{consent_purpose}/give/", ME_POST, method="post"),
    Row("consent-give", "/me/consents/{consent_purpose}/give/", _all(302, 405), label="get"),
    Row("consent-withdraw", "/me/consents/{consent_purpose}/withdraw/", ME_OBJECT),
    Row("consent-withdraw", "/me/consents/{purpose}/withdraw/", _all(302, 404), label="no consent"),
    Row("receipt-download", "/me/receipts/{receipt}/", ME_OBJECT),
    Row("my-corrections", "/me/corrections/", _all(302, 200)),
    Row("correction-create", "/me/corrections/new/{record}/module/", ME_OBJECT),
    Row("my-objections", "/me/objections/", _all(302, 200)),
    Row("objection-create", "/me/objections/new/", ME_OBJECT),
    Row("my-export", "/me/export/", _all(302, 200)),
    Row("my-export", "/me/export/", ME_POST, method="post"),
    Row("export-download", "/me/export/{export}/json/", ME_OBJECT),
    Row("export-download", "/me/export/{export}/html/", ME_OBJECT, label="html"),
    Row("correction-queue", "/reviews/corrections/", (302, 403, 200, 200, 403, 403, 403, 403, 403)),
    Row(
        "correction-decide",
        "/reviews/corrections/{correction}/",
        (302, 404, 200, 404, 404, 404, 404, 404, 404),
    ),
    Row("objection-queue", "/reviews/objections/", (302, 403, 403, 403, 403, 200, 403, 403, 403)),
    Row(
        "objection-answer",
        "/reviews/objections/{objection}/",
        (302, 404, 404, 404, 404, 200, 404, 404, 404),
    ),
    Row("api-me-data", "/api/v1/me/data", API_ME),
    Row("api-me-access-log", "/api/v1/me/access-log", API_ME),
    Row("api-me-consents", "/api/v1/me/consents", API_ME),
    Row(
        "api-me-consents",
        "/api/v1/me/consents",
        (401, 400, 404, 404, 404, 404, 404, 404, 404),
        method="post",
    ),
    Row("api-me-export", "/api/v1/me/export", API_ME),
    # --- the auditor's workspace (issue 6): auditors and administrators only, read-only
    Row("audit-timeline", "/audit/", AUDIT_ONLY),
    Row("audit-timeline", "/audit/?kind=request&object={review}", AUDIT_ONLY, label="one object"),
    Row("audit-export", "/audit/export.csv?kind=vote", AUDIT_ONLY),
    Row("audit-object", "/audit/objects/request/{review}/", AUDIT_ONLY),
    Row(
        "audit-object",
        "/audit/objects/grant/999999/",
        _all(302, 403)[:7] + (404, 404),
        label="missing",
    ),
    Row("audit-as-of", "/audit/objects/request/{review}/as-of/?at=2030-01-01", AUDIT_ONLY),
    Row("audit-grants-as-of", "/audit/grants/as-of/?at=2030-01-01", AUDIT_ONLY),
    Row("api-audit-events", "/api/v1/audit/events", API_AUDIT_ONLY),
    Row(
        "api-audit-events",
        "/api/v1/audit/events",
        (401, 403, 403, 403, 403, 403, 403, 405, 405),
        method="post",
    ),
    Row("api-audit-history", "/api/v1/audit/objects/grant/{grant}/history", API_AUDIT_ONLY),
    Row(
        "api-audit-as-of", "/api/v1/audit/objects/grant/{grant}/as-of?at=2030-01-01", API_AUDIT_ONLY
    ),
    Row("api-audit-verify", "/api/v1/audit/verify", API_AUDIT_ONLY),
    Row("admin", "/admin/", (302, 302, 302, 302, 302, 302, 302, 302, 200)),
    # Last: it ends the session.
    Row("account_logout", "/accounts/logout/", _all(302, 302), method="post"),
]


@pytest.fixture
def world(db):
    users = {
        "learner": make_user(),
        "steward": make_user(Role.STEWARD, clearance="personal"),
        "other_steward": make_user(Role.STEWARD),
        "analyst": make_user(Role.ANALYST),
        "committee": make_user(Role.COMMITTEE),
        "dpo": make_user(Role.DPO, clearance="special"),
        "auditor": make_user(Role.AUDITOR),
        "admin": make_user(Role.ADMINISTRATOR, is_superuser=True, clearance="special"),
    }
    steward = users["steward"]
    fields = [("module", "category", "internal", {"values": ["AAA", "BBB"]})]
    active = make_dataset(steward, fields=fields, status="active", person_column="student")
    draft = make_dataset(steward, fields=fields, status="draft")
    load = records_import(
        actor=steward,
        dataset=active,
        stream=io.BytesIO(b"student,module\nS1,AAA\n"),
        file_name="one.csv",
    )
    purpose = make_purpose(steward)
    policy = registry.policy_create(
        actor=users["dpo"], slug="ethics", title="Ethics", body="Be good.", owner=users["dpo"]
    )
    person = Person.objects.get(external_id="S1")
    flow = _request_flow(users, active, purpose)
    me = _subject(users, person, active)
    placeholders = {
        **flow,
        **me,
        "active": active.slug,
        "draft_dataset": draft.slug,
        "load": load.pk,
        "purpose": purpose.slug,
        "policy": policy.slug,
        "person": person.pk,
    }
    return users, placeholders


def _request_flow(users, dataset, purpose) -> dict:
    """Requests at each stage, by the analyst, before a committee the 'committee' user chairs."""
    import datetime

    from analytics import services as flow
    from governance.models import Committee, CommitteeMembership, Notification

    registry.dataset_update(actor=users["steward"], dataset=dataset, purposes=[purpose])
    committee = Committee.objects.create(
        slug="oversight", name="Oversight", quorum=3, is_default=True
    )
    others = [make_user(Role.COMMITTEE), make_user(Role.COMMITTEE)]
    CommitteeMembership.objects.create(committee=committee, user=users["committee"], seat="chair")
    for member in others:
        CommitteeMembership.objects.create(committee=committee, user=member, seat="member")
    analyst = users["analyst"]
    content = {
        "purpose": purpose,
        "justification": "Why",
        "expected_benefit": "Better courses",
        "output_level": "aggregate",
        "starts_on": datetime.date.today(),  # noqa: DTZ011
        "ends_on": datetime.date.today() + datetime.timedelta(days=90),  # noqa: DTZ011
    }
    fields = list(dataset.fields.all())

    def submitted(title, *, signed_off=True):
        request = flow.request_create(actor=analyst, fields=fields, title=title, **content)
        flow.request_submit(actor=analyst, request=request)
        if signed_off:
            flow.signoff_record(
                actor=users["steward"], request=request, dataset=dataset, approve=True, note="Ok"
            )
        return request

    draft = flow.request_create(actor=analyst, fields=fields, title="Draft", **content)
    waiting = submitted("Awaiting stewards", signed_off=False)
    review = submitted("In review")
    approved = submitted("Approved")
    for member in [users["committee"], *others]:
        flow.vote_cast(actor=member, request=approved, choice="approve", rationale="Good")
    flow.decision_record(
        actor=users["committee"], request=approved, outcome="approved", rationale="Agreed"
    )
    grant = approved.grants.get()
    notification = Notification.objects.filter(user=analyst).first()
    from django.core.files.base import ContentFile
    from django.utils import timezone

    from analytics.models import ExtractFile

    extract = ExtractFile(
        grant=grant,
        owner=analyst,
        dataset=dataset,
        rows=1,
        status="ready",
        expires_at=timezone.now() + datetime.timedelta(hours=24),
    )
    extract.file.save("extract.csv", ContentFile(b"pseudonym,module\nabc,AAA\n"), save=False)
    extract.save()
    return {
        "draft": draft.pk,
        "review": review.pk,
        "waiting": waiting.pk,
        "approved": approved.pk,
        "grant": grant.pk,
        "extract": extract.pk,
        "notification": notification.pk,
        "rule": "learning-firewall",
    }


def _subject(users, person, dataset) -> dict:
    """The learner's login is linked to S1, who consented to a purpose and has one of
    everything: a receipt, a correction, an objection and a ready export."""
    from consent import services as consent
    from consent.tasks import subject_export_task
    from governance.services import accounts

    learner = users["learner"]
    accounts.person_link_user(actor=None, person=person, user=learner)
    consent_purpose = make_purpose(
        users["steward"], legal_basis="consent", consent_text="You agree.", category="research"
    )
    receipt = consent.consent_give(actor=learner, person=person, purpose=consent_purpose)
    record = person.records.get(dataset=dataset)
    correction = consent.correction_propose(
        actor=learner,
        person=person,
        record=record,
        field=dataset.fields.get(name="module"),
        proposed_value="BBB",
        note="I took BBB.",
    )
    objection = consent.objection_file(
        actor=learner, person=person, kind="feedback", message="Keep less."
    )
    export, _ = consent.export_request(actor=learner, person=person)
    subject_export_task(export.pk)  # ready, as the worker leaves it
    return {
        "consent_purpose": consent_purpose.slug,
        "receipt": receipt.pk,
        "record": record.pk,
        "correction": correction.pk,
        "objection": objection.pk,
        "export": export.pk,
    }


def test_every_url_has_a_row():
    resolver = get_resolver()
    names = {name for name in resolver.reverse_dict if isinstance(name, str)}
    names |= set(resolver.namespace_dict) - {"admin"} | {"admin"}
    covered = {row.name for row in ROWS}
    assert names - covered == set(), "URLs without a row in the authorization matrix"
    assert covered - names == set(), "rows for URLs that no longer exist"


def test_rows_have_one_status_per_role():
    for row in ROWS:
        assert len(row.expect) == len(ROLES), row


@pytest.mark.django_db
def test_authorization_matrix(world):
    users, placeholders = world
    mismatches = []
    for role_index, role in enumerate(ROLES):
        client = Client()
        if role != "anonymous":
            client.force_login(users[role])
        for row in ROWS:
            path = row.path.format(**placeholders)
            if row.method == "post":
                response = client.post(path, data=b"", content_type="text/csv")
            else:
                response = client.get(path)
            expected = row.expect[role_index]
            if response.status_code != expected:
                mismatches.append(
                    f"{role:14} {row.method.upper():4} {path:45} "
                    f"expected {expected}, got {response.status_code}"
                )
            if role == "anonymous" and response.status_code == 302 and row.name != "account_logout":
                assert "login" in response["Location"], path
    assert not mismatches, "\n" + "\n".join(mismatches)


def _without_csrf(response) -> str:
    """The page without what differs on every response: the CSRF token, the CSP nonce."""
    page = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
    return re.sub(r'nonce="[^"]+"', "", page)


@pytest.mark.django_db
def test_forbidden_and_missing_datasets_look_the_same(world):
    users, placeholders = world
    client = Client()
    client.force_login(users["analyst"])
    forbidden = client.get(f"/datasets/{placeholders['draft_dataset']}/")
    missing = client.get("/datasets/no-such-dataset/")
    assert forbidden.status_code == missing.status_code == 404
    assert _without_csrf(forbidden) == _without_csrf(missing)
    api_forbidden = client.get(f"/api/v1/datasets/{placeholders['draft_dataset']}/")
    api_missing = client.get("/api/v1/datasets/no-such-dataset/")
    assert api_forbidden.json() == api_missing.json() == {"message": "Not found."}
