"""An employee's own data, in a real browser: see it, see who used it, withdraw a consent,
and take away the receipt and a full export.

The world (tests/consent/factories.py) is a learner with a login, records in a learning
dataset, consent given to a consent-based purpose, and an approved grant that has read
their records once. With REDIS_URL set (CI) the export is prepared by a real Celery
worker and the page polls for it with htmx; without it the task runs eagerly. Either
way the test only waits on what the page shows.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from consent.models import Consent, ConsentReceipt, ConsentState
from consent.services import canonical_json
from tests.consent.factories import make_subject_world
from tests.e2e.helpers import sign_in

pytestmark = pytest.mark.browser

SCREENSHOT = "/tmp/e2e-my-data.png"  # noqa: S108 -- a fixed path to look at afterwards


def about_me(page, name: str):
    """Follow a link of the "About you" tabs shared by the person's pages."""
    page.get_by_role("navigation", name="About you").get_by_role("link", name=name).click()


def value_cell(table, value: str, field_label: str):
    """The cell holding ``value`` for the field: its text is the value, then its
    "Correct" link, whose hidden text names the field."""
    return table.get_by_role(
        "cell", name=re.compile(rf"^{re.escape(value)}\s+Correct\s+{re.escape(field_label)}$")
    )


def test_an_employee_sees_their_data_withdraws_consent_and_takes_the_receipt_and_export(
    page, celery_worker
):
    from playwright.sync_api import expect

    world = make_subject_world()
    dataset, purpose = world.oulad.dataset, world.purpose
    request_title = world.grant.request.title

    sign_in(page, world.user)

    # My data: the dataset, why it is held, and the person's own values, the special
    # category one (disability) included; nobody else's.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My data").click()
    expect(page.get_by_role("heading", name="My data", exact=True)).to_be_visible()
    holding = page.get_by_role("region", name=dataset.name, exact=True)
    expect(holding).to_contain_text(purpose.name)
    records = holding.get_by_role("table", name=re.compile(r"^Your records in"))
    expect(records.locator("tbody tr")).to_have_count(1)
    for value, field_label in [
        ("AAA", "Code module"),
        ("M", "Gender"),
        ("60", "Studied credits"),
        ("Y", "Disability"),
        ("Fail", "Final result"),
    ]:
        expect(value_cell(records, value, field_label)).to_have_count(1)
    expect(value_cell(records, "BBB", "Code module")).to_have_count(0)  # the other learner's
    fields = holding.get_by_role("table", name=re.compile(r"^The fields of"))
    expect(fields.get_by_role("row", name=re.compile(r"^Disability\b"))).to_contain_text("Special")

    # Who used my data: the one read the grant made, pseudonymised, and who allowed it.
    about_me(page, "Who used my data")
    expect(page.get_by_role("heading", name="Who used my data")).to_be_visible()
    uses = page.get_by_role("region", name="Uses of your data").locator("tbody tr")
    expect(uses).to_have_count(1)
    expect(uses).to_contain_text(request_title)
    expect(uses).to_contain_text(purpose.name)
    expect(uses).to_contain_text("Pseudonymised: your name and ids were replaced")
    expect(uses).to_contain_text("Approved")
    expect(uses).to_contain_text(dataset.name)

    # Consents: withdraw, confirming on the way; the page says so and shows the receipt.
    about_me(page, "Consents")
    expect(page.get_by_role("heading", name="Consents", exact=True)).to_be_visible()
    consent = page.get_by_role("region", name=purpose.name, exact=True)
    expect(consent.locator(".consent-state")).to_have_text("Given")
    consent.get_by_role("link", name=f"Withdraw consent for {purpose.name}").click()
    expect(
        page.get_by_role("heading", name=f"Withdraw your consent for “{purpose.name}”?")
    ).to_be_visible()
    assert Consent.objects.get(person=world.person, purpose=purpose).state == ConsentState.GIVEN
    page.get_by_role("button", name="Yes, withdraw my consent").click()
    expect(page.get_by_role("heading", name="Consents", exact=True)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(f"You withdrew consent for “{purpose.name}”")
    consent = page.get_by_role("region", name=purpose.name, exact=True)
    expect(consent.locator(".consent-state")).to_have_text("Withdrawn")
    expect(consent.get_by_role("button", name=re.compile(r"^Give consent"))).to_be_visible()

    # The receipt of the withdrawal, as a file.
    receipts = page.get_by_role("table", name=re.compile(r"^Receipts for your consent"))
    expect(receipts.locator("tbody tr")).to_have_count(2)  # given, then withdrawn
    withdrawal = receipts.get_by_role("row", name=re.compile("Given → Withdrawn"))
    with page.expect_download() as download_info:
        withdrawal.get_by_role("link", name=re.compile(r"^Download receipt")).click()
    download = download_info.value
    assert download.suggested_filename.endswith(".json")
    receipt = json.loads(open(download.path(), encoding="utf-8").read())
    content_sha256 = receipt.pop("content_sha256")
    assert content_sha256 == hashlib.sha256(canonical_json(receipt)).hexdigest()
    assert (receipt["state"], receipt["previous_state"]) == ("withdrawn", "given")
    assert receipt["purpose"]["slug"] == purpose.slug
    assert receipt["subject"]["external_id"] == world.person.external_id
    stored = ConsentReceipt.objects.get(pk=receipt["receipt_id"])
    assert stored.person == world.person and stored.content_hash == content_sha256

    # The export: asked for, prepared in the background, downloaded.
    about_me(page, "Export")
    expect(page.get_by_role("heading", name="Export my data")).to_be_visible()
    page.get_by_role("button", name="Prepare my export").click()
    expect(page.get_by_role("status")).to_contain_text("Your export is being prepared")
    exports = page.locator("#exports")
    download_json = exports.get_by_role("link", name=re.compile(r"^Download JSON"))
    expect(download_json).to_be_visible()  # polled until ready when a worker prepares it
    expect(exports.locator("tbody tr")).to_have_count(1)
    with page.expect_download() as download_info:
        download_json.click()
    download = download_info.value
    assert download.suggested_filename.endswith(".json")
    report = json.loads(open(download.path(), encoding="utf-8").read())
    assert report["subject"]["external_id"] == world.person.external_id
    [held] = report["datasets"]
    assert held["name"] == dataset.name
    [record] = held["records"]
    assert (record["values"]["disability"], record["values"]["final_result"]) == ("Y", "Fail")
    [use] = report["uses"]
    assert use["request"]["title"] == request_title
    [answer] = [c for c in report["consents"] if c["purpose_slug"] == purpose.slug]
    assert answer["state"] == "withdrawn"
    assert [r["state"] for r in report["consent_receipts"]] == ["withdrawn", "given"]

    with page.expect_download() as download_info:
        exports.get_by_role("link", name=re.compile(r"^Printable page")).click()
    printable = open(download_info.value.path(), encoding="utf-8").read()
    assert world.person.external_id in printable and dataset.name in printable

    page.screenshot(path=SCREENSHOT, full_page=True)
    assert page.problems == []
