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
    from django.urls import reverse

    from governance.models import Role
    from tests.factories import make_user

    admin = make_user(Role.ADMINISTRATOR, is_superuser=True)
    client = Client()
    client.force_login(admin)
    analyst, oulad, board = make_analyst(), make_oulad(), make_board()
    approve(make_ready_request(analyst, oulad), oulad, board)
    for name in [
        "analytics_analyticsrequest",
        "analytics_requestversion",
        "analytics_finding",
        "analytics_stewardsignoff",
        "analytics_vote",
        "analytics_decision",
        "analytics_obligation",
        "analytics_grant",
        "analytics_accessevent",
        "analytics_extractfile",
        "consent_consent",
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
