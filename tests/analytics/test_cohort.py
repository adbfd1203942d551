"""A cohort is data use too (issue 10, section 3): a field that selects people is a field
used. It must be one the request names, within the requester's clearance, weighed by the
rules and seen by the committee; every read applies it or is refused (never widened);
every access event records it, and the person sees it named in plain words.

Each finding is replayed through the API and the pages as a user meets it."""

from __future__ import annotations

import csv
import datetime
import html
import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from analytics import access, services
from analytics.models import AccessEvent, AnalyticsRequest, RequestVersion
from governance.models import Clearance, Field, Record, User
from governance.services import accounts
from tests.analytics.factories import (
    approve,
    make_analyst,
    make_board,
    make_oulad,
    make_ready_request,
    today,
)
from tests.consent.factories import make_subject_world
from tests.factories import PersonFactory

pytestmark = pytest.mark.django_db

DISABLED = 4  # of the twelve people loaded, S00000, S00003, S00006 and S00009


@pytest.fixture
def oulad():
    oulad = make_oulad()
    for i in range(12):
        Record.objects.create(
            dataset=oulad.dataset,
            person=PersonFactory(external_id=f"S{i:05d}"),
            values={
                "code_module": "AAA" if i % 2 else "BBB",
                "final_result": "Pass" if i % 4 else "Fail",
                "disability": "Y" if i % 3 == 0 else "N",
            },
        )
    return oulad


@pytest.fixture
def board():
    return make_board()


@pytest.fixture
def personal():
    """The analyst of the finding: personal clearance."""
    return make_analyst(clearance=Clearance.PERSONAL, email="personal.analyst@example.org")


@pytest.fixture
def special():
    return make_analyst(clearance=Clearance.SPECIAL, email="special.analyst@example.org")


def key(oulad, name: str) -> str:
    return f"{oulad.dataset.slug}.{name}"


def bearer(user) -> dict:
    _, secret = accounts.api_token_create(actor=user, user=user, name="tests")
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def post_json(client, user, url, body):
    return client.post(url, json.dumps(body), content_type="application/json", **bearer(user))


def api_body(oulad, *, fields, cohort) -> dict:
    return {
        "title": "Outcomes of disabled students",
        "purpose": oulad.purpose.slug,
        "justification": "See how disabled students do.",
        "expected_benefit": "Better support for disabled students.",
        "fields": [key(oulad, name) for name in fields],
        "cohort": cohort,
        "output_level": "aggregate",
        "starts_on": today().isoformat(),
        "ends_on": (today() + datetime.timedelta(days=90)).isoformat(),
    }


def form_data(oulad, *, fields, cohort: str) -> dict:
    return {
        "title": "Outcomes of disabled students",
        "purpose": oulad.purpose.pk,
        "justification": "See how disabled students do.",
        "expected_benefit": "Better support for disabled students.",
        "fields": [oulad.field(name).pk for name in fields],
        "cohort": cohort,
        "output_level": "aggregate",
        "human_reviewer": "",
        "minimisation_justification": "",
        "retention_days": "365",
        "starts_on": today().isoformat(),
        "ends_on": (today() + datetime.timedelta(days=90)).isoformat(),
    }


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page(response) -> str:
    return html.unescape(response.content.decode())


def disability_grant(oulad, board, analyst, *, output_level="pseudonymised"):
    """Approved: code_module, final_result and disability, for the disabled students only."""
    request = make_ready_request(
        analyst,
        oulad,
        fields=oulad.fields("code_module", "final_result", "disability"),
        cohort={key(oulad, "disability"): "Y"},
        output_level=output_level,
    )
    decision, _ = approve(request, oulad, board, min_cohort=2)
    return decision.grant


# --- the finding: a personal-clearance analyst selects people by a special field ---------


def test_api_refuses_a_cohort_on_a_special_field_above_the_requesters_clearance(
    client, oulad, personal
):
    response = post_json(
        client,
        personal,
        "/api/v1/requests/",
        api_body(
            oulad,
            fields=["code_module", "final_result", "disability"],
            cohort={key(oulad, "disability"): "Y"},
        ),
    )

    assert response.status_code == 400
    body = response.json()
    expected = (
        f"{key(oulad, 'disability')}: Disability is special category data, above your "
        "clearance (personal): you may not select people by it."
    )
    assert body["message"] == expected
    assert body["errors"] == {"cohort": [expected]}
    assert not AnalyticsRequest.objects.exists()


def test_the_form_refuses_a_cohort_on_a_special_field_above_the_requesters_clearance(
    oulad, personal
):
    response = login(personal).post(
        "/requests/new/",
        form_data(
            oulad,
            fields=["code_module", "final_result", "disability"],
            cohort=f"{key(oulad, 'disability')}=Y",
        ),
    )

    assert response.status_code == 200
    text = page(response)
    assert (
        f"{key(oulad, 'disability')}: Disability is special category data, above your "
        "clearance (personal): you may not select people by it."
    ) in text
    assert not AnalyticsRequest.objects.exists()


def test_a_cohort_field_must_be_one_the_request_names_api_and_form(client, oulad, special):
    """Minimisation: the finding's cohort named no field at all, so no rule saw it."""
    cohort = {key(oulad, "disability"): "Y"}
    expected = (
        f"{key(oulad, 'disability')}: not one of the request's fields. A field that selects "
        "people is a field used: add it to the fields (the rules and the committee then "
        "weigh it) or remove it from the cohort."
    )

    response = post_json(
        client,
        special,
        "/api/v1/requests/",
        api_body(oulad, fields=["final_result"], cohort=cohort),
    )
    assert response.status_code == 400
    assert response.json()["errors"] == {"cohort": [expected]}

    form = login(special).post(
        "/requests/new/",
        form_data(oulad, fields=["final_result"], cohort=f"{key(oulad, 'disability')}=Y"),
    )
    assert form.status_code == 200
    assert expected in page(form)
    assert not AnalyticsRequest.objects.exists()


def test_an_excluded_cohort_field_blocks_like_any_excluded_field(client, oulad, special):
    response = post_json(
        client,
        special,
        "/api/v1/requests/",
        api_body(
            oulad,
            fields=["final_result", "imd_band"],
            cohort={key(oulad, "imd_band"): "20-30%"},
        ),
    )

    assert response.status_code == 201, response.json()
    [excluded] = [f for f in response.json()["findings"] if f["rule"] == "excluded-fields"]
    assert excluded["severity"] == "block"
    assert excluded["fields"] == [key(oulad, "imd_band")]
    submitted = post_json(client, special, f"/api/v1/requests/{response.json()['id']}/submit", {})
    assert submitted.status_code == 400
    assert key(oulad, "imd_band") in str(submitted.json()["findings"])


# --- the committee sees it and approves it ---------------------------------------------------


def test_a_cohort_field_is_weighed_by_the_rules_and_shown_to_the_committee(
    client, oulad, board, special
):
    created = post_json(
        client,
        special,
        "/api/v1/requests/",
        api_body(
            oulad,
            fields=["code_module", "final_result", "disability"],
            cohort={key(oulad, "disability"): "Y"},
        ),
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    [flagged] = [f for f in body["findings"] if f["rule"] == "special-category"]
    assert flagged["fields"] == [key(oulad, "disability")]

    request = AnalyticsRequest.objects.get(pk=body["id"])
    detail = page(login(special).get(f"/requests/{request.pk}/"))
    cohort = detail[detail.index('<dd id="request-cohort">') :]
    assert cohort.startswith(
        f'<dd id="request-cohort">Only people with <span title="{key(oulad, "disability")}">'
        "Disability</span> = Y</dd>"
    )
    assert "selects the cohort" in detail

    services.request_submit(actor=special, request=request)
    version = RequestVersion.objects.get(request=request)
    assert version.content["cohort"] == {key(oulad, "disability"): "Y"}
    assert key(oulad, "disability") in version.content["fields"]
    services.signoff_record(
        actor=oulad.steward, request=request, dataset=oulad.dataset, approve=True, note="Ok."
    )
    vote_page = page(login(board.members[0]).get(f"/requests/{request.pk}/vote/"))
    assert (
        f'<dd id="review-cohort">Only people with <span title="{key(oulad, "disability")}">'
        "Disability</span> = Y</dd>"
    ) in vote_page


def test_dropping_the_cohort_field_from_the_fields_is_refused(oulad, special):
    request = make_ready_request(
        special,
        oulad,
        fields=oulad.fields("final_result", "disability"),
        cohort={key(oulad, "disability"): "Y"},
    )

    response = login(special).post(
        f"/requests/{request.pk}/edit/",
        form_data(oulad, fields=["final_result"], cohort=f"{key(oulad, 'disability')}=Y"),
    )

    assert response.status_code == 200
    assert f"{key(oulad, 'disability')}: not one of the request's fields." in page(response)
    assert {f.name for f in request.fields.all()} == {"final_result", "disability"}


def test_submission_checks_the_cohort_again(client, oulad, board, special):
    """Clearance lowered after drafting: the committee is never asked to approve a cohort
    its requester may not use."""
    request = make_ready_request(
        special,
        oulad,
        fields=oulad.fields("final_result", "disability"),
        cohort={key(oulad, "disability"): "Y"},
    )
    User.objects.filter(pk=special.pk).update(clearance=Clearance.PERSONAL)

    response = post_json(client, special, f"/api/v1/requests/{request.pk}/submit", {})

    assert response.status_code == 400
    assert (
        "Disability is special category data, above your clearance" in (response.json()["message"])
    )
    request.refresh_from_db()
    assert request.round == 0 and not request.versions.exists()


# --- reads: the cohort is applied, or the read is refused ------------------------------------


def test_every_read_records_the_cohort_that_chose_the_people(client, oulad, board, special):
    grant = disability_grant(oulad, board, special)
    headers = bearer(special)
    web = login(special)
    cohort = {key(oulad, "disability"): "Y"}

    preview = page(web.get(f"/grants/{grant.pk}/data/"))
    assert (
        f'<dd id="data-cohort">Only people with <span title="{key(oulad, "disability")}">'
        "Disability</span> = Y</dd>"
    ) in preview
    download = web.post(f"/grants/{grant.pk}/data/download/", {"dataset": oulad.dataset.slug})
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert {row["disability"] for row in rows} == {"Y"} and len(rows) == DISABLED
    extract = client.get(f"/api/v1/grants/{grant.pk}/extract.csv", **headers)
    assert b"".join(extract.streaming_content).decode().count("\n") == DISABLED + 1
    aggregate = client.get(f"/api/v1/grants/{grant.pk}/aggregate", **headers)
    assert aggregate.status_code == 200, aggregate.content

    events = list(AccessEvent.objects.order_by("pk"))
    assert [e.kind for e in events] == ["preview", "download", "extract", "aggregate"]
    assert [e.detail["cohort"] for e in events] == [cohort] * 4
    assert [e.people for e in events[:3]] == [DISABLED] * 3
    logged = client.get(f"/api/v1/grants/{grant.pk}/access-events/", **headers).json()
    assert [e["cohort"] for e in logged["results"]] == [cohort] * 4


def test_the_cohort_of_the_approved_version_applies_even_if_the_request_is_changed(
    oulad, board, special
):
    """Removing the cohort by hand after approval would widen it: the approved one holds."""
    grant = disability_grant(oulad, board, special)
    AnalyticsRequest.objects.filter(pk=grant.request_id).update(cohort=None)

    scope = access.grant_scope(user=special, grant=access.grant_for_user(user=special, pk=grant.pk))

    rows = list(csv.DictReader(io.StringIO(b"".join(access.extract_csv(scope)).decode())))
    assert len(rows) == DISABLED and {row["disability"] for row in rows} == {"Y"}
    assert AccessEvent.objects.get().detail["cohort"] == {key(oulad, "disability"): "Y"}


def refusals(client, grant, user) -> list[tuple[int, str]]:
    """What each surface answers: the preview page, the download, the API extract and
    aggregate."""
    web, headers = login(user), bearer(user)
    answers = []
    for response in (
        web.get(f"/grants/{grant.pk}/data/"),
        web.post(f"/grants/{grant.pk}/data/download/"),
    ):
        text = page(response)
        answers.append((response.status_code, text[text.index('id="access-denied"') :]))
    for url in (f"/api/v1/grants/{grant.pk}/extract.csv", f"/api/v1/grants/{grant.pk}/aggregate"):
        response = client.get(url, **headers)
        answers.append((response.status_code, response.json()["message"]))
    return answers


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (
            lambda grant, oulad: User.objects.filter(pk=grant.grantee_id).update(
                clearance=Clearance.PERSONAL
            ),
            "which is special category data, above your clearance",
        ),
        (
            lambda grant, oulad: Field.objects.filter(pk=oulad.field("disability").pk).update(
                excluded=True
            ),
            "which is excluded from analytics in the registry",
        ),
    ],
    ids=["clearance-lowered", "field-excluded"],
)
def test_a_cohort_field_the_user_may_no_longer_use_refuses_every_read(
    client, oulad, board, special, spoil, reason
):
    grant = disability_grant(oulad, board, special)
    spoil(grant, oulad)
    special.refresh_from_db()

    answers = refusals(client, grant, special)

    expected = (
        f"This grant's cohort selects people by Disability ({key(oulad, 'disability')} = Y), "
        f"{reason}. Nothing is read: leaving the filter out would widen the cohort."
    )
    assert [status for status, _ in answers] == [403] * 4
    assert all(expected in message for _, message in answers), answers
    assert not AccessEvent.objects.exists()


def test_a_grant_approved_before_the_rule_with_an_unnamed_cohort_field_is_refused(
    client, oulad, board, personal, monkeypatch
):
    """The finding as it was approved: a cohort on disability, a field the request did not
    name. Its reads are refused rather than run for everyone."""
    request = make_ready_request(personal, oulad, fields=oulad.fields("code_module"))
    # What the old code accepted and the committee approved (no service writes this now).
    AnalyticsRequest.objects.filter(pk=request.pk).update(cohort={key(oulad, "disability"): "Y"})
    request.refresh_from_db()
    with pytest.raises(ValidationError, match="not one of the request's fields"):
        services.request_submit(actor=personal, request=request)
    # Approved as it was then, when submission did not check the cohort.
    monkeypatch.setattr(services, "_check_cohort", lambda cohort, fields, *, actor: cohort)
    decision, request = approve(request, oulad, board, min_cohort=2)

    answers = refusals(client, decision.grant, personal)

    assert [status for status, _ in answers] == [403] * 4
    assert all(
        f"This grant's cohort selects people by {key(oulad, 'disability')} = Y, which is not "
        "one of the fields the committee approved. Nothing is read" in message
        for _, message in answers
    ), answers
    assert not AccessEvent.objects.exists()
    # The committee's pages flag it.
    detail = page(login(personal).get(f"/requests/{request.pk}/"))
    assert "not one of the request's fields" in detail


# --- the person sees the field that chose them -------------------------------------------


def test_the_person_sees_the_cohort_field_by_its_label_on_who_used_my_data():
    world = make_subject_world()  # the person (L…-1) is the only one with disability Y
    analyst = make_analyst(clearance=Clearance.SPECIAL)
    oulad = world.oulad
    request = make_ready_request(
        analyst,
        oulad,
        fields=oulad.fields("code_module", "disability"),
        cohort={key(oulad, "disability"): "Y"},
        output_level="pseudonymised",
    )
    _, request = approve(request, oulad, world.board)
    grant = request.grants.get()
    b"".join(access.extract_csv(access.grant_scope(user=analyst, grant=grant)))

    mine = page(login(world.user).get("/me/uses/"))
    row = mine[mine.index("<tbody>") : mine.index("</tbody>")].split("<tr>")[1]
    assert request.title in row
    assert "Only people with Disability = Y were included." in row
    assert f"{oulad.dataset.slug}.disability" not in row

    api = Client().get("/api/v1/me/access-log", **bearer(world.user)).json()
    assert api["results"][0]["chosen_by"] == [
        {
            "field": key(oulad, "disability"),
            "label": "Disability",
            "dataset": oulad.dataset.name,
            "value": "Y",
        }
    ]
    # The other learner (disability N) was not chosen: the read is not among their uses.
    theirs = page(login(world.other_user).get("/me/uses/"))
    assert request.title not in theirs


def test_who_used_my_data_names_the_cohorts_in_a_fixed_number_of_queries():
    world = make_subject_world()
    oulad = world.oulad
    analyst = make_analyst(clearance=Clearance.SPECIAL)

    def cohort_read(name, value):
        request = make_ready_request(
            analyst,
            oulad,
            fields=oulad.fields("final_result", name),
            cohort={key(oulad, name): value},
            output_level="pseudonymised",
        )
        _, request = approve(request, oulad, world.board)
        b"".join(access.extract_csv(access.grant_scope(user=analyst, grant=request.grants.get())))

    cohort_read("disability", "Y")
    me = login(world.user)
    me.get("/me/uses/")
    with CaptureQueriesContext(connection) as few:
        me.get("/me/uses/")

    for name, value in [("code_module", "AAA"), ("gender", "M"), ("disability", "Y")]:
        cohort_read(name, value)
    with CaptureQueriesContext(connection) as many:
        mine = page(me.get("/me/uses/"))

    assert len(many.captured_queries) == len(few.captured_queries)
    for words in ["Code module = AAA", "Gender = M", "Disability = Y"]:
        assert f"Only people with {words} were included." in mine
