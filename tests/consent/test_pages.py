"""The person's own pages as they see them: their values, who used them, their consents
(give, withdraw, receipts), corrections, objections and the subject access export;
bad input gives a clear message and changes nothing; the lists run a fixed number of
queries however much there is."""

from __future__ import annotations

import hashlib
import html
import io
import json
import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from analytics import access, disclosure
from consent import selectors
from consent import views as consent_views
from consent.models import (
    Consent,
    ConsentReceipt,
    ConsentState,
    Correction,
    Objection,
    SubjectExport,
)
from consent.tasks import subject_export_task
from governance.models import Dataset, Notification, Record
from governance.services import registry
from governance.services.records import records_import
from tests.analytics.factories import (
    OULAD_FIELDS,
    approve,
    make_analyst,
    make_oulad,
    make_ready_request,
)
from tests.consent.factories import CONSENT_TEXT, make_subject_world, read
from tests.factories import make_purpose, make_user

pytestmark = pytest.mark.django_db

UNLINKED = "Your login is not linked to a person record; ask the data protection officer."


@pytest.fixture
def world():
    return make_subject_world()


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def me(world) -> Client:
    return login(world.user)


def text(response) -> str:
    """The page as a person reads it: tags kept, entities decoded."""
    assert response.status_code == 200, response.status_code
    return html.unescape(response.content.decode())


def shown_messages(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def add_records(oulad, external_id: str, count: int, *, module: str = "BBB", **values) -> None:
    names = [spec[0] for spec in OULAD_FIELDS]
    row = {n: "" for n in names} | {"code_module": module, "studied_credits": "30"} | values
    lines = [",".join(["external_id", *names])]
    lines += [",".join([external_id, *(row[n] for n in names)])] * count
    records_import(
        actor=oulad.steward,
        dataset=oulad.dataset,
        stream=io.BytesIO("\n".join(lines).encode()),
        file_name="more.csv",
    )


def cell(page: str, record: Record, field: str) -> str:
    """The value shown in the cell of one record's field (the cell holds its Correct link)."""
    link = f'href="/me/corrections/new/{record.pk}/{field}/"'
    match = re.search(r'<td><span class="value">([^<]*)</span> <a class="correct" ' + link, page)
    assert match, f"no cell for {field} of record {record.pk}"
    return match.group(1)


def my_record(world) -> Record:
    """The person's first record (the world loads one; some tests add more)."""
    return world.oulad.dataset.records.filter(person=world.person).order_by("pk").first()


# --- My data --------------------------------------------------------------------------


def test_my_data_shows_each_dataset_its_metadata_and_all_my_values(world, me):
    dataset = world.oulad.dataset
    registry.dataset_update(
        actor=world.oulad.steward,
        dataset=dataset,
        description="Who studies which module, and how it went.",
        source_system="Student records",
    )
    registry.field_update(
        actor=world.oulad.steward,
        field=world.oulad.field("disability"),
        description="Whether you declared a disability.",
    )

    page = text(me.get("/me/"))

    assert f'<h2 id="dataset-{dataset.slug}">{dataset.name}</h2>' in page
    assert "Who studies which module, and how it went." in page
    assert f'{world.purpose.name} <span class="meta">(consent)</span>' in page
    assert "<dt>Lawful basis</dt><dd>Legitimate interest</dd>" in page
    assert "<dt>Kept for</dt><dd>365 days</dd>" in page
    assert "<dt>Source</dt><dd>Student records</dd>" in page
    assert f"<dt>Stewards</dt><dd>{world.oulad.steward.full_name}</dd>" in page
    assert (
        '<tr><th scope="row">Disability</th><td>Whether you declared a disability.</td>'
        '<td><span class="badge sens-special">Special category</span></td></tr>'
    ) in page
    record = my_record(world)
    # Every value, the special-category one included: it is the person's own.
    assert cell(page, record, "disability") == "Y"
    assert cell(page, record, "final_result") == "Fail"
    assert cell(page, record, "studied_credits") == "60"
    assert cell(page, record, "imd_band") == "20-30%"  # excluded from analytics, still held
    others = dataset.records.filter(person=world.other_person).values_list("pk", flat=True)
    for pk in others:
        assert f"/me/corrections/new/{pk}/" not in page


def test_my_data_shows_the_first_20_records_and_links_to_all_of_them(world, me):
    add_records(world.oulad, world.person.external_id, 24)
    dataset = world.oulad.dataset

    page = text(me.get("/me/"))

    assert page.count('<a class="correct" href="/me/corrections/new/') == 20 * len(OULAD_FIELDS)
    assert "(the first 20 of 25)" in page
    assert f'<a href="/me/data/{dataset.slug}/">All 25 of your records in {dataset.name}</a>' in (
        page
    )
    everything = text(me.get(f"/me/data/{dataset.slug}/"))
    assert everything.count('<a class="correct" href="/me/corrections/new/') == 25 * len(
        OULAD_FIELDS
    )
    for record in dataset.records.filter(person=world.person):
        assert cell(everything, record, "code_module") in {"AAA", "BBB"}


def test_values_are_shown_as_text_never_as_markup(world, me):
    registry.field_update(
        actor=world.oulad.steward,
        field=world.oulad.field("region"),
        description="Where you <em>live</em>",
    )
    add_records(world.oulad, world.person.external_id, 1, region="<b>Powys</b>")

    raw = me.get("/me/").content.decode()

    assert "<b>Powys</b>" not in raw and "<em>live</em>" not in raw
    assert '<span class="value">&lt;b&gt;Powys&lt;/b&gt;</span>' in raw
    assert "Where you &lt;em&gt;live&lt;/em&gt;" in raw


def test_a_dataset_holding_nothing_about_me_is_a_404(world, me):
    elsewhere = make_oulad()
    assert me.get(f"/me/data/{elsewhere.dataset.slug}/").status_code == 404
    assert me.get("/me/data/no-such-dataset/").status_code == 404


def test_a_login_linked_to_no_person_sees_why_and_no_object(world):
    nobody = login(make_user())
    for path in ["/me/", "/me/uses/", "/me/consents/", "/me/corrections/", "/me/objections/"]:
        page = text(nobody.get(path))
        assert UNLINKED in page, path
    assert UNLINKED in text(nobody.get("/me/export/"))
    record = my_record(world)
    for path in [
        f"/me/data/{world.oulad.dataset.slug}/",
        f"/me/corrections/new/{record.pk}/final_result/",
        "/me/objections/new/",
        f"/me/consents/{world.purpose.slug}/withdraw/",
    ]:
        assert nobody.get(path).status_code == 404, path
    assert nobody.post("/me/export/").status_code == 404
    assert nobody.post(f"/me/consents/{world.purpose.slug}/give/").status_code == 404
    assert not SubjectExport.objects.exists()
    # And the navigation offers no "My data" to a login that has none.
    assert 'href="/me/">My data</a></li>' not in text(nobody.get("/"))
    assert '<li><a href="/me/">My data</a></li>' in text(login(world.user).get("/"))


def test_what_is_held_is_read_in_three_queries_whatever_the_sizes(world, django_assert_num_queries):
    """``data_held_about`` (plain SQL, for speed) reads what the ORM holds: metadata,
    fields, purposes, stewards, tags and the person's records, capped per dataset."""
    add_records(world.oulad, world.person.external_id, 24)
    other = make_oulad(purpose=world.purpose)
    registry.dataset_update(actor=other.steward, dataset=other.dataset, tags=["learning", "vle"])
    add_records(other, world.person.external_id, 2, module="CCC")
    person = world.person

    with django_assert_num_queries(3):
        held = selectors.data_held_about(person=person)
    everything = selectors.data_held_about(person=person, per_dataset=None)

    datasets = Dataset.objects.filter(records__person=person).distinct().order_by("name")
    for mine, cap in [(held, 20), (everything, None)]:
        assert [h.slug for h in mine] == [d.slug for d in datasets]
        for h, d in zip(mine, datasets, strict=True):
            assert (h.name, h.description, h.source, h.retention_days) == (
                d.name,
                d.description,
                d.source_system,
                d.retention_days,
            )
            assert h.lawful_basis == d.get_lawful_basis_display()
            records = list(d.records.filter(person=person).order_by("id"))
            assert h.count == len(records)
            assert h.records == [(r.pk, r.values) for r in records[:cap]]
            fields = d.fields.order_by("position", "name")
            assert [(f.name, f.label, f.type, f.sensitivity_label) for f in h.fields] == [
                (f.name, f.display_label, f.type, f.get_sensitivity_display()) for f in fields
            ]
            assert [(p.slug, p.legal_basis, p.category) for p in h.purposes] == [
                (p.slug, p.get_legal_basis_display(), p.get_category_display())
                for p in d.purposes.order_by("name")
            ]
            assert h.stewards == [u.full_name or u.email for u in d.stewards.all()]
            assert sorted(h.tags) == sorted(t.name for t in d.tags.all())
    assert [h.count for h in held] == [25, 2] or [h.count for h in held] == [2, 25]
    assert sorted(len(h.records) for h in held) == [2, 20]
    assert sorted(len(h.records) for h in everything) == [2, 25]


# --- Who used my data -----------------------------------------------------------------


def test_who_used_my_data_shows_each_use_plainly(world, me):
    request = world.grant.request

    page = text(me.get("/me/uses/"))

    row = page[page.index("<tbody>") : page.index("</tbody>")]
    assert f'<th scope="row">{request.title}</th>' in row
    assert f"<td>{world.purpose.name}</td>" in row
    assert "Pseudonymised: your name and ids were replaced" in row
    assert f"<td>{world.analyst.full_name}</td>" in row  # read by, and requested by
    assert f"Approved by {world.board.committee.name}, " in row
    fields = re.search(rf"<td>{world.oulad.dataset.name}: ([^<]+)</td>", row).group(1)
    assert sorted(fields.split(", ")) == ["code_module", "final_result", "studied_credits"]
    assert f'href="/me/objections/new/?request={request.pk}"' in row


def test_an_aggregate_use_says_only_counts_of_groups_were_released(world, me):
    analyst = make_analyst()
    aggregate = approve(make_ready_request(analyst, world.oulad), world.oulad, world.board)[1]
    disclosure.aggregate(
        access.grant_scope(user=analyst, grant=aggregate.grants.get()), ["code_module"]
    )

    page = text(me.get("/me/uses/"))

    rows = page[page.index("<tbody>") : page.index("</tbody>")].split("<tr>")[1:]
    assert aggregate.title in rows[0]  # newest first
    assert "Aggregate: only counts of groups of at least k people" in rows[0]
    assert world.grant.request.title in rows[1]
    assert "Pseudonymised: your name and ids were replaced" in rows[1]


def test_who_used_my_data_pages_back_by_cursor(world, me, monkeypatch):
    monkeypatch.setattr(consent_views, "USES_PER_PAGE", 2)
    for _ in range(3):
        read(world)  # four reads in all

    first = text(me.get("/me/uses/"))
    cursor = re.search(r'href="\?before=([^"]+)" rel="next"', first).group(1)
    older = text(me.get(f"/me/uses/?before={cursor}"))

    def times(page):
        return re.findall(r"<tr>\s*<td>([^<]+)</td>", page)

    assert len(times(first)) == 2 and len(times(older)) == 2
    assert 'rel="next"' not in older
    assert 'href="/me/uses/">Newest uses</a>' in older
    bad = me.get("/me/uses/", {"before": "last-tuesday"})
    assert shown_messages(bad) == ["That page link was not valid; here are the latest uses."]
    assert times(text(bad)) == times(first)


# --- Consents -------------------------------------------------------------------------


@pytest.fixture
def research(world):
    """A second consent-based purpose the person has not been asked about."""
    return make_purpose(
        world.oulad.steward,
        slug="research",
        name="Research on study success",
        category="research",
        legal_basis="consent",
        consent_text="Your results may be studied by the research team.",
    )


def consent_section(page: str, slug: str) -> str:
    start = page.index(f'id="consent-{slug}"')
    return page[start : page.index("</section>", start)]


def test_my_consents_show_text_version_state_and_a_changed_text(world, me, research):
    page = text(me.get("/me/consents/"))

    given = consent_section(page, world.purpose.slug)
    assert "Your answer: <strong" in given and ">Given</strong>" in given
    assert CONSENT_TEXT in given
    assert "The consent text, version 1" in given
    assert "The text changed" not in given
    assert f'href="/me/consents/{world.purpose.slug}/withdraw/"' in given
    assert f'action="/me/consents/{world.purpose.slug}/give/"' not in given
    asked = consent_section(page, "research")
    assert ">Not asked</strong>" in asked
    assert 'action="/me/consents/research/give/"' in asked
    assert "/withdraw/" not in asked
    (receipt,) = ConsentReceipt.objects.filter(person=world.person)
    assert f'href="/me/receipts/{receipt.pk}/"' in page

    registry.purpose_update(
        actor=world.oulad.steward, purpose=world.purpose, consent_text="A new text."
    )

    changed = consent_section(text(me.get("/me/consents/")), world.purpose.slug)
    assert (
        "The text changed since you agreed (version 1 → 2): read it and agree again, or withdraw."
    ) in changed
    assert "A new text." in changed and CONSENT_TEXT not in changed
    assert ">Agree to version 2<" in changed
    assert f'href="/me/consents/{world.purpose.slug}/withdraw/"' in changed

    renewed = me.post(f"/me/consents/{world.purpose.slug}/give/", follow=True)
    assert "The text changed" not in consent_section(text(renewed), world.purpose.slug)
    assert Consent.objects.get(person=world.person, purpose=world.purpose).text_version == 2


def test_giving_and_withdrawing_through_the_pages(world, me, research):
    given = me.post("/me/consents/research/give/", follow=True)

    assert shown_messages(given) == [
        "You gave consent for “Research on study success” (text version 1). "
        "Your receipt is listed below."
    ]
    assert ">Given</strong>" in consent_section(text(given), "research")
    assert Consent.objects.get(person=world.person, purpose=research).state == "given"

    confirm = text(me.get("/me/consents/research/withdraw/"))
    assert "<h1>Withdraw your consent for “Research on study success”?</h1>" in confirm
    assert '<button type="submit">Yes, withdraw my consent</button>' in confirm
    assert Consent.objects.get(person=world.person, purpose=research).state == "given"

    withdrawn = me.post("/me/consents/research/withdraw/", follow=True)

    assert shown_messages(withdrawn) == [
        "You withdrew consent for “Research on study success”. From the next use, your data "
        "is left out. Your receipt is listed below."
    ]
    assert ">Withdrawn</strong>" in consent_section(text(withdrawn), "research")
    assert Consent.objects.get(person=world.person, purpose=research).state == "withdrawn"
    receipts = ConsentReceipt.objects.filter(person=world.person, purpose=research)
    assert sorted(r.state for r in receipts) == ["given", "withdrawn"]
    assert text(withdrawn).count('href="/me/receipts/') == 3


def test_withdrawing_what_is_not_given_or_giving_twice_says_so_and_changes_nothing(
    world, me, research
):
    before = list(ConsentReceipt.objects.values_list("pk", flat=True))
    consent = Consent.objects.get(person=world.person, purpose=world.purpose)

    confirm = text(me.get("/me/consents/research/withdraw/"))
    assert "so there is nothing to withdraw" in confirm
    assert "<button" not in confirm[confirm.index("<h1>") :]
    withdrawn = me.post("/me/consents/research/withdraw/", follow=True)
    assert shown_messages(withdrawn) == [
        "You have not given consent for “Research on study success”, so there is nothing to "
        "withdraw. Nothing was changed."
    ]
    twice = me.post(f"/me/consents/{world.purpose.slug}/give/", follow=True)
    assert shown_messages(twice) == [
        f"You have already given consent for “{world.purpose.name}” (text version 1). "
        "Nothing was changed."
    ]

    assert list(ConsentReceipt.objects.values_list("pk", flat=True)) == before
    assert not Consent.objects.filter(purpose=research).exists()
    again = Consent.objects.get(pk=consent.pk)
    assert (again.state, again.text_version, again.changed_at) == (
        ConsentState.GIVEN,
        1,
        consent.changed_at,
    )


def test_consent_pages_refuse_get_for_giving_and_unknown_purposes(world, me):
    assert me.get(f"/me/consents/{world.purpose.slug}/give/").status_code == 405
    interest = make_purpose(world.oulad.steward, slug="planning")  # legitimate interest
    assert me.post("/me/consents/planning/give/").status_code == 404
    assert me.get("/me/consents/no-such-purpose/withdraw/").status_code == 404
    assert not Consent.objects.filter(purpose=interest).exists()


def test_a_receipt_downloads_as_issued_with_its_hash(world, me):
    receipt = ConsentReceipt.objects.get(person=world.person)

    response = me.get(f"/me/receipts/{receipt.pk}/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == (
        f'attachment; filename="consent-receipt-{receipt.pk}.json"'
    )
    body = json.loads(response.content)
    content = {k: v for k, v in body.items() if k != "content_sha256"}
    assert content == receipt.content
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert body["content_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert body["subject"]["external_id"] == world.person.external_id
    assert (body["purpose"]["slug"], body["state"], body["previous_state"]) == (
        world.purpose.slug,
        "given",
        "not_asked",
    )
    assert body["consent_text"]["version"] == 1
    assert me.get("/me/receipts/00000000-0000-0000-0000-000000000000/").status_code == 404


# --- Corrections ----------------------------------------------------------------------


def propose(client, record, field, value, note="My result was a pass."):
    return client.post(
        f"/me/corrections/new/{record.pk}/{field}/",
        {"proposed_value": value, "note": note},
        follow=True,
    )


def test_a_correction_proposed_and_accepted_through_the_pages(world, me):
    record = my_record(world)
    form = text(me.get(f"/me/corrections/new/{record.pk}/final_result/"))
    assert '<dd id="current-value">Fail</dd>' in form
    assert '<option value="Pass">Pass</option>' in form  # a category offers its values

    sent = propose(me, record, "final_result", "Pass")

    assert shown_messages(sent) == [
        f"Your correction of “Final result” was sent to the stewards of "
        f"{world.oulad.dataset.name}. You will be told their answer."
    ]
    correction = Correction.objects.get(person=world.person)
    row = text(sent)[text(sent).index("<tbody>") :]
    assert 'Final result <span class="meta">in' in row and ">Open</span>" in row
    assert "My result was a pass." in row

    steward = login(world.oulad.steward)
    queue = text(steward.get("/reviews/corrections/"))
    assert f'href="/reviews/corrections/{correction.pk}/"' in queue
    assert f"<td>{world.person.external_id}</td>" in queue
    decide = text(steward.get(f"/reviews/corrections/{correction.pk}/"))
    assert '<dd id="held-value">Fail</dd>' in decide
    assert '<dd id="proposed-value">Pass</dd>' in decide
    assert "My result was a pass." in decide
    decided = steward.post(
        f"/reviews/corrections/{correction.pk}/",
        {"decision": "accept", "reason": "Checked with the exam board."},
        follow=True,
    )
    assert shown_messages(decided) == ["Correction accepted; the person is told."]

    record.refresh_from_db()
    assert record.values["final_result"] == "Pass"
    assert cell(text(me.get("/me/")), record, "final_result") == "Pass"
    mine = text(me.get("/me/corrections/"))
    assert ">Accepted</span>" in mine and "Checked with the exam board." in mine
    assert Notification.objects.filter(user=world.user, subject__contains="was accepted").exists()


def test_a_correction_declined_needs_a_reason_and_leaves_the_record(world, me):
    record = my_record(world)
    propose(me, record, "region", "Scotland", note="I moved.")
    correction = Correction.objects.get(person=world.person)
    steward = login(world.oulad.steward)

    missing = steward.post(f"/reviews/corrections/{correction.pk}/", {"decision": "decline"})
    assert "Tell the person why the correction is declined." in text(missing)
    assert Correction.objects.get(pk=correction.pk).status == "open"

    steward.post(
        f"/reviews/corrections/{correction.pk}/",
        {"decision": "decline", "reason": "Region is where you lived when you enrolled."},
    )

    record.refresh_from_db()
    assert record.values["region"] == "Wales"
    mine = text(me.get("/me/corrections/"))
    assert ">Declined</span>" in mine
    assert "Region is where you lived when you enrolled." in mine
    closed = text(steward.get(f"/reviews/corrections/{correction.pk}/"))
    assert "Record the decision" not in closed


def test_a_correction_to_the_value_held_is_refused_with_a_reason(world, me):
    record = my_record(world)

    same = me.post(
        f"/me/corrections/new/{record.pk}/region/", {"proposed_value": "Wales", "note": "x"}
    )
    no_note = me.post(
        f"/me/corrections/new/{record.pk}/studied_credits/",
        {"proposed_value": "ninety", "note": ""},
    )

    assert "That is the value already held." in text(same)
    page = text(no_note)
    assert "This field is required." in page  # the note
    assert not Correction.objects.exists()
    assert me.get(f"/me/corrections/new/{record.pk}/no_such_field/").status_code == 404


# --- Objections and feedback ----------------------------------------------------------


def test_an_objection_filed_and_answered_through_the_pages(world, me):
    request = world.grant.request
    form = text(me.get(f"/me/objections/new/?request={request.pk}"))
    assert f'<option value="{request.pk}" selected>{request.title}' in form

    sent = me.post(
        "/me/objections/new/",
        {"kind": "objection", "request_id": request.pk, "message": "I never agreed to this."},
        follow=True,
    )

    assert shown_messages(sent) == [
        f"Your objection was sent to {world.board.committee.name}. You will be told their answer."
    ]
    objection = Objection.objects.get(person=world.person)
    assert (objection.request_id, objection.request_title) == (request.pk, request.title)
    assert f"Objection to “{request.title}”" in text(sent)

    member = login(world.board.members[0])
    queue = text(member.get("/reviews/objections/"))
    assert f'href="/reviews/objections/{objection.pk}/"' in queue
    answer_page = text(member.get(f"/reviews/objections/{objection.pk}/"))
    assert "I never agreed to this." in answer_page
    missing = member.post(f"/reviews/objections/{objection.pk}/", {"answer": ""})
    assert "This field is required." in text(missing)
    answered = member.post(
        f"/reviews/objections/{objection.pk}/",
        {"answer": "You did, in March; you may withdraw."},
        follow=True,
    )
    assert shown_messages(answered) == ["Your answer was sent; the person is told."]

    mine = text(me.get("/me/objections/"))
    assert ">Answered</span>" in mine and "You did, in March; you may withdraw." in mine


def test_feedback_goes_to_the_default_committee_and_a_use_must_be_mine(world, me):
    sent = me.post(
        "/me/objections/new/",
        {"kind": "feedback", "message": "Please explain the retention period."},
        follow=True,
    )
    assert shown_messages(sent) == [
        f"Your feedback was sent to {world.board.committee.name}. You will be told their answer."
    ]
    feedback = Objection.objects.get(person=world.person)
    assert (feedback.kind, feedback.request_id) == ("feedback", None)

    wrong = me.post(
        "/me/objections/new/", {"kind": "objection", "request_id": "", "message": "No."}
    )
    assert "Choose a use of your data to object to." in text(wrong)
    unknown = me.post(
        "/me/objections/new/", {"kind": "objection", "request_id": "999999", "message": "No."}
    )
    assert "Select a valid choice." in text(unknown)
    assert Objection.objects.count() == 1


# --- Subject access export ------------------------------------------------------------


def test_an_export_asked_twice_while_running_is_one_export_then_downloads(
    world, me, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        first = me.post("/me/export/", follow=True)
        second = me.post("/me/export/", follow=True)

    assert shown_messages(first) == [
        "Your export is being prepared; this page shows when it is ready."
    ]
    assert shown_messages(second) == ["Your export is already being prepared."]
    export = SubjectExport.objects.get()
    pending = me.get("/me/export/", HTTP_HX_REQUEST="true")
    assert pending.content.decode().startswith('<section id="exports"')
    assert 'hx-trigger="every 2s"' in text(pending) and "Being prepared" in text(pending)

    subject_export_task(export.pk)  # what the worker does with the queued task

    ready = text(me.get("/me/export/"))
    assert "hx-trigger" not in ready
    assert f'href="/me/export/{export.pk}/json/"' in ready
    assert (
        Notification.objects.filter(user=world.user, subject="Your data export is ready").count()
        == 1
    )
    as_json = me.get(f"/me/export/{export.pk}/json/")
    assert as_json["Content-Disposition"].startswith("attachment;")
    report = json.loads(b"".join(as_json.streaming_content))
    assert report["subject"]["external_id"] == world.person.external_id
    assert report["datasets"][0]["records"][0]["values"]["disability"] == "Y"
    assert report["uses"][0]["request"]["title"] == world.grant.request.title
    as_html = me.get(f"/me/export/{export.pk}/html/")
    assert as_html["Content-Type"].startswith("text/html")
    assert world.person.external_id in b"".join(as_html.streaming_content).decode()
    assert me.get(f"/me/export/{export.pk}/csv/").status_code == 404


def test_an_export_not_ready_cannot_be_downloaded(world, me, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        me.post("/me/export/")
    export = SubjectExport.objects.get()
    assert me.get(f"/me/export/{export.pk}/json/").status_code == 404
    assert me.get(f"/me/export/{export.pk}/html/").status_code == 404


# --- fixed number of queries ----------------------------------------------------------


def test_my_data_and_who_used_it_run_a_fixed_number_of_queries(world, me):
    pages = ["/me/", "/me/uses/", "/me/consents/", "/me/corrections/", "/me/objections/"]
    few = {}
    for path in pages:
        me.get(path)
        with CaptureQueriesContext(connection) as captured:
            assert me.get(path).status_code == 200
        few[path] = len(captured.captured_queries)

    # More datasets, more records, more uses through more grants, more of everything.
    add_records(world.oulad, world.person.external_id, 30)
    for _ in range(2):
        other = make_oulad(purpose=world.purpose)
        add_records(other, world.person.external_id, 3, module="CCC")
    for _ in range(3):
        read(world)
    analyst = make_analyst()
    second = approve(make_ready_request(analyst, world.oulad), world.oulad, world.board)[1]
    disclosure.aggregate(access.grant_scope(user=analyst, grant=second.grants.get()), [])
    research = make_purpose(
        world.oulad.steward, legal_basis="consent", consent_text="Research.", category="research"
    )
    me.post(f"/me/consents/{research.slug}/give/", follow=True)
    propose(me, my_record(world), "region", "Scotland")
    me.post("/me/objections/new/", {"kind": "feedback", "message": "More."}, follow=True)

    for path in pages:
        with CaptureQueriesContext(connection) as captured:
            page = text(me.get(path))
        assert len(captured.captured_queries) == few[path], (path, captured.captured_queries)
        if path == "/me/":
            assert page.count('<section class="panel holding"') == 3
        if path == "/me/uses/":
            assert page.count('href="/me/objections/new/?request=') == 5
