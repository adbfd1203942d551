"""`make run`'s demo gives every "My data" page something to show: the learner's
consent, a use of their data through the demo grant, a correction before the steward
and an objection before the committee; and loading it again adds nothing."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.test import Client

from analytics.models import AccessEvent
from consent.models import Consent, ConsentReceipt, Correction, Objection
from governance.management.commands import load_demo
from governance.models import User

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(monkeypatch, tmp_path):
    # The synthetic 2,000 rows, not OULAD's 32,593: the same shape, faster.
    monkeypatch.setattr(load_demo, "OULAD", tmp_path / "no-oulad-here")
    call_command("load_demo", stdout=io.StringIO())


def signed_in(email: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def test_the_demo_learner_has_something_on_every_my_data_page(demo):
    learner = signed_in("learner@example.org")

    consents = learner.get("/api/v1/me/consents").json()["results"]
    assert [(c["purpose"]["slug"], c["state"]) for c in consents] == [("learning-support", "given")]
    (use,) = learner.get("/api/v1/me/access-log").json()["results"]
    assert use["request"]["title"] == "Pass rates by module and presentation"
    assert use["output_level"] == "aggregate"
    (dataset,) = learner.get("/api/v1/me/data").json()["datasets"]
    assert dataset["slug"] == "oulad-student-info"

    steward_queue = signed_in("steward@example.org").get("/reviews/corrections/")
    assert steward_queue.status_code == 200
    assert "Studied credits" in steward_queue.content.decode()
    committee_queue = signed_in("chair@example.org").get("/reviews/objections/")
    assert committee_queue.status_code == 200
    assert "Pass rates by module and presentation" in committee_queue.content.decode()
    assert Correction.objects.get().status == "open"
    assert Objection.objects.get().kind == "objection"


def test_loading_the_demo_again_adds_nothing(demo):
    counts = [
        model.objects.count()
        for model in (Consent, ConsentReceipt, AccessEvent, Correction, Objection)
    ]

    call_command("load_demo", stdout=io.StringIO())

    assert counts == [
        model.objects.count()
        for model in (Consent, ConsentReceipt, AccessEvent, Correction, Objection)
    ]
    assert counts[2] == 1
