"""The analyst's list of requests runs a fixed number of queries, however many there are."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.analytics.factories import (
    approve,
    make_analyst,
    make_board,
    make_oulad,
    make_ready_request,
    submit_and_sign_off,
)

pytestmark = pytest.mark.django_db


def test_the_analysts_request_list_runs_a_fixed_number_of_queries(django_assert_num_queries):
    analyst = make_analyst()
    oulad = make_oulad()
    board = make_board()
    client = Client()
    client.force_login(analyst)
    make_ready_request(analyst, oulad)
    client.get("/requests/")
    with CaptureQueriesContext(connection) as few:
        assert client.get("/requests/").status_code == 200

    for _ in range(3):
        make_ready_request(analyst, oulad)
    submit_and_sign_off(make_ready_request(analyst, oulad), oulad)
    approve(make_ready_request(analyst, oulad), oulad, board)
    make_ready_request(analyst, oulad, fields=oulad.fields("imd_band"))  # blocked draft

    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get("/requests/")
    page = response.content.decode()
    assert page.count("/requests/") >= 7  # every request is listed
    assert "Approved" in page and "In review" in page


def test_the_admin_lists_every_analytics_and_consent_model():
    from django.contrib import admin as django_admin
    from django.urls import reverse

    from governance.models import Role
    from tests.factories import make_user

    admin = make_user(Role.ADMINISTRATOR, is_superuser=True)
    client = Client()
    client.force_login(admin)
    analyst, oulad, board = make_analyst(), make_oulad(), make_board()
    approve(make_ready_request(analyst, oulad), oulad, board)
    # Every model the two apps register, so a new one cannot be left out.
    registered = sorted(
        f"{model._meta.app_label}_{model._meta.model_name}"
        for model in django_admin.site._registry
        if model._meta.app_label in {"analytics", "consent"}
    )
    assert {
        "consent_consent",
        "consent_consentreceipt",
        "consent_correction",
        "consent_objection",
        "consent_subjectexport",
    } <= set(registered)
    for name in [
        *registered,
        "governance_committee",
        "governance_rule",
        "governance_notification",
    ]:
        url = reverse(f"admin:{name}_changelist")
        assert client.get(url).status_code == 200, url
    from analytics.models import Decision

    decision = Decision.objects.get()
    page = client.get(reverse("admin:analytics_decision_change", args=[decision.pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()  # a decision is never edited here


def test_the_admin_shows_consent_records_and_cannot_change_them():
    """Receipts are proof issued to the person; consents, corrections, objections and
    exports change only through their services (who may act, who is told)."""
    from django.urls import reverse

    from consent import services as consent_services
    from consent.models import ConsentReceipt, Correction, Objection, SubjectExport
    from governance.models import Role
    from tests.consent.factories import make_subject_world
    from tests.factories import make_user

    world = make_subject_world(people=3)
    record = world.oulad.dataset.records.get(person=world.person)
    consent_services.correction_propose(
        actor=world.user,
        person=world.person,
        record=record,
        field=world.oulad.field("final_result"),
        proposed_value="Pass" if record.values["final_result"] != "Pass" else "Fail",
        note="My resit was passed.",
    )
    consent_services.objection_file(
        actor=world.user, person=world.person, kind="feedback", message="Too much data."
    )
    consent_services.export_request(actor=world.user, person=world.person)
    admin = make_user(Role.ADMINISTRATOR, is_superuser=True)
    client = Client()
    client.force_login(admin)
    objects = {
        "consent_consent": world.person.consents.get(),
        "consent_consentreceipt": ConsentReceipt.objects.filter(person=world.person).first(),
        "consent_correction": Correction.objects.get(),
        "consent_objection": Objection.objects.get(),
        "consent_subjectexport": SubjectExport.objects.get(),
    }
    receipt = objects["consent_consentreceipt"]
    found = client.get(
        reverse("admin:consent_consentreceipt_changelist"), {"q": str(receipt.pk)[:13]}
    )
    assert found.status_code == 200 and str(receipt.pk) in found.content.decode()
    for name, obj in objects.items():
        page = client.get(reverse(f"admin:{name}_change", args=[obj.pk]))
        assert page.status_code == 200, name
        assert 'name="_save"' not in page.content.decode(), name
        assert client.get(reverse(f"admin:{name}_add")).status_code == 403, name
        deleted = client.post(reverse(f"admin:{name}_delete", args=[obj.pk]), {"post": "yes"})
        assert deleted.status_code == 403, name
        assert type(obj).objects.filter(pk=obj.pk).exists(), name
