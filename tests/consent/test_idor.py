"""Another employee, with their own person record, tries every consent, receipt,
correction, objection and export URL of someone else's objects: 404 each time (the same
as a missing object), and nothing about the first person changes. Staff roles (the DPO,
an administrator) get no way around this on the person's pages."""

from __future__ import annotations

import html

import pytest
from django.test import Client

from analytics import access
from consent import services
from consent.models import Consent, ConsentReceipt, Correction, Objection, SubjectExport
from consent.tasks import subject_export_task
from governance.models import Clearance, Person, Role
from governance.services import accounts
from tests.analytics.factories import approve, make_analyst, make_oulad, make_ready_request
from tests.consent.factories import make_subject_world
from tests.consent.test_pages import add_records
from tests.factories import PersonFactory, make_user

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(django_capture_on_commit_callbacks):
    """The first person with one of everything: a receipt, a correction, an objection,
    a ready export, a dataset only they are in, and a use that read only them."""
    world = make_subject_world()
    person, user = world.person, world.user
    record = world.oulad.dataset.records.get(person=person)
    services.correction_propose(
        actor=user,
        person=person,
        record=record,
        field=world.oulad.field("final_result"),
        proposed_value="Pass",
        note="My secret note about my result.",
    )
    services.objection_file(
        actor=user,
        person=person,
        kind="objection",
        message="My secret objection.",
        request_id=world.grant.request_id,
    )
    with django_capture_on_commit_callbacks(execute=False):
        export, _ = services.export_request(actor=user, person=person)
    subject_export_task(export.pk)
    alone = make_oulad()
    add_records(alone, person.external_id, 2)
    # A use of the first person's data that did not include the other: the other
    # withdrew before this grant read.
    services.consent_withdraw(
        actor=world.other_user, person=world.other_person, purpose=world.purpose
    )
    analyst = make_analyst()
    only_first = make_ready_request(
        analyst,
        world.oulad,
        title="A use that read only the first person",
        output_level="pseudonymised",
        fields=world.oulad.fields("code_module", "final_result"),
    )
    only_first = approve(only_first, world.oulad, world.board)[1]
    b"".join(access.extract_csv(access.grant_scope(user=analyst, grant=only_first.grants.get())))
    world.alone = alone
    world.only_first = only_first
    return world


def snapshot(world) -> dict:
    """Everything about the first person another login could change."""
    person = world.person
    return {
        "consents": list(
            Consent.objects.filter(person=person).values_list(
                "purpose_id", "state", "text_version", "changed_at"
            )
        ),
        "receipts": sorted(
            str(pk)
            for pk in ConsentReceipt.objects.filter(person=person).values_list("pk", flat=True)
        ),
        "corrections": list(
            Correction.objects.filter(person=person).values_list("pk", "status", "reason")
        ),
        "objections": list(
            Objection.objects.filter(person=person).values_list("pk", "status", "answer")
        ),
        "exports": list(SubjectExport.objects.filter(person=person).values_list("pk", "status")),
        "records": sorted((r.pk, sorted(r.values.items())) for r in person.records.all()),
        "all corrections": Correction.objects.count(),
        "all objections": Objection.objects.count(),
        "all exports": SubjectExport.objects.count(),
    }


def linked_login(*roles: str, **kwargs):
    user = make_user(*roles, **kwargs)
    accounts.person_link_user(actor=None, person=PersonFactory(), user=user)
    return user


@pytest.fixture(params=["another employee", "a DPO", "an administrator"])
def intruder(request, world):
    if request.param == "another employee":
        return world.other_user
    if request.param == "a DPO":
        return linked_login(Role.DPO, clearance=Clearance.SPECIAL)
    return linked_login(Role.ADMINISTRATOR, is_superuser=True, clearance=Clearance.SPECIAL)


def test_every_object_url_of_someone_else_is_a_404_and_changes_nothing(world, intruder):
    person = world.person
    receipt = ConsentReceipt.objects.get(person=person)
    record = world.oulad.dataset.records.get(person=person)
    correction = Correction.objects.get(person=person)
    objection = Objection.objects.get(person=person)
    export = SubjectExport.objects.get(person=person)
    assert export.status == "ready"
    before = snapshot(world)
    client = login(intruder)

    attempts = [
        ("get", f"/me/receipts/{receipt.pk}/", {}),
        ("get", f"/me/data/{world.alone.dataset.slug}/", {}),
        ("get", f"/me/corrections/new/{record.pk}/final_result/", {}),
        (
            "post",
            f"/me/corrections/new/{record.pk}/final_result/",
            {"proposed_value": "Withdrawn", "note": "Changed by someone else."},
        ),
        ("get", f"/me/export/{export.pk}/json/", {}),
        ("get", f"/me/export/{export.pk}/html/", {}),
        ("get", f"/reviews/corrections/{correction.pk}/", {}),
        ("post", f"/reviews/corrections/{correction.pk}/", {"decision": "accept"}),
        ("post", f"/reviews/corrections/{correction.pk}/", {"decision": "decline", "reason": "x"}),
        ("get", f"/reviews/objections/{objection.pk}/", {}),
        ("post", f"/reviews/objections/{objection.pk}/", {"answer": "Answered by someone else."}),
    ]
    for method, path, data in attempts:
        response = getattr(client, method)(path, data)
        assert response.status_code == 404, (method, path, response.status_code)

    assert snapshot(world) == before


def test_someone_elses_objects_never_show_on_my_pages(world, intruder):
    person = world.person
    receipt = ConsentReceipt.objects.get(person=person)
    export = SubjectExport.objects.get(person=person)
    record = world.oulad.dataset.records.get(person=person)
    client = login(intruder)

    pages = {
        path: html.unescape(client.get(path).content.decode())
        for path in [
            "/me/",
            "/me/uses/",
            "/me/consents/",
            "/me/corrections/",
            "/me/objections/",
            "/me/export/",
        ]
    }

    everything = "\n".join(pages.values())
    assert str(receipt.pk) not in everything
    assert f"/me/export/{export.pk}/" not in everything
    assert f"/me/corrections/new/{record.pk}/" not in everything
    assert "My secret note about my result." not in everything
    assert "My secret objection." not in everything
    assert world.alone.dataset.name not in everything
    assert world.only_first.title not in everything


def test_objecting_to_a_use_that_never_read_me_is_refused_and_reveals_nothing(world):
    client = login(world.other_user)
    before = snapshot(world)
    use = world.only_first

    form = html.unescape(client.get(f"/me/objections/new/?request={use.pk}").content.decode())
    refused = client.post(
        "/me/objections/new/",
        {"kind": "objection", "request_id": use.pk, "message": "Stop it."},
    )

    assert use.title not in form
    assert refused.status_code == 200
    assert "Select a valid choice." in refused.content.decode()
    assert not Objection.objects.filter(person=world.other_person).exists()
    assert snapshot(world) == before


def test_consent_urls_act_on_my_own_consent_only(world):
    """Consent addresses name a purpose, never a person: another login giving or
    withdrawing changes its own consent, and the first person's stays as it was."""
    intruder = linked_login()
    client = login(intruder)
    before = snapshot(world)

    confirm = html.unescape(
        client.get(f"/me/consents/{world.purpose.slug}/withdraw/").content.decode()
    )
    assert "so there is nothing to withdraw" in confirm  # their own state: not asked
    client.post(f"/me/consents/{world.purpose.slug}/withdraw/")
    client.post(f"/me/consents/{world.purpose.slug}/give/")
    client.post(f"/me/consents/{world.purpose.slug}/withdraw/")

    own = Consent.objects.get(person=Person.objects.get(user=intruder), purpose=world.purpose)
    assert own.state == "withdrawn"
    assert snapshot(world) == before
