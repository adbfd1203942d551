"""The grantee's data pages: preview, CSV download, aggregates and prepared extracts.

Each test goes through the web views as the analyst would and checks what left Custos
and which access events were written.
"""

from __future__ import annotations

import csv
import datetime
import html as htmllib
import io
import re
import time

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from analytics import access, data_views, services
from analytics.models import AccessEvent, ExtractFile
from governance.services.records import records_import
from tests.analytics.factories import (
    OULAD_FIELDS,
    approve,
    make_analyst,
    make_board,
    make_oulad,
    make_ready_request,
)

pytestmark = pytest.mark.django_db

# 30 people on AAA, 25 on BBB, 5 on CCC: with k = 10, CCC is below k.
MODULES = ["AAA"] * 30 + ["BBB"] * 25 + ["CCC"] * 5
IDS = [f"S-{n:04d}" for n in range(1, len(MODULES) + 1)]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _text(response) -> str:
    """The page's text as users read it: tags stripped, entities decoded, spaces collapsed."""
    html = response.content.decode()
    return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _csv(payload: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(payload.decode())))


def _grant(output_level: str = "pseudonymised"):
    """An approved grant on code_module, final_result and studied_credits of a dataset
    holding 60 people, and the analyst who holds it."""
    oulad = make_oulad()
    names = [spec[0] for spec in OULAD_FIELDS]
    lines = [",".join(["external_id", *names])]
    for n, (external_id, module) in enumerate(zip(IDS, MODULES, strict=True)):
        values = {name: "" for name in names} | {
            "code_module": module,
            "code_presentation": "2014J",
            "gender": "F",
            "region": "Wales",
            "age_band": "0-35",
            "studied_credits": str(60 + n % 3 * 30),
            "disability": "N",
            "final_result": "Pass" if n % 2 else "Fail",
        }
        lines.append(",".join([external_id, *(values[name] for name in names)]))
    records_import(
        actor=oulad.steward,
        dataset=oulad.dataset,
        stream=io.BytesIO("\n".join(lines).encode()),
        file_name="studentInfo.csv",
    )
    analyst = make_analyst()
    request = make_ready_request(
        analyst,
        oulad,
        output_level=output_level,
        fields=oulad.fields("code_module", "final_result", "studied_credits"),
    )
    _decision, request = approve(request, oulad, make_board())
    return request.grants.get(), analyst, oulad


def _events(kind: str | None = None) -> int:
    events = AccessEvent.objects.all()
    return (events.filter(kind=kind) if kind else events).count()


def _ready_extract(grant, owner, **overrides) -> ExtractFile:
    values = {
        "grant": grant,
        "owner": owner,
        "dataset": grant.fields.first().dataset,
        "status": "ready",
        "rows": 1,
        "expires_at": timezone.now() + datetime.timedelta(hours=24),
    } | overrides
    extract = ExtractFile.objects.create(**values)
    extract.file.save("x.csv", ContentFile(b"pseudonym,code_module\nabc,AAA\n"))
    return extract


def test_grant_page_links_to_the_data_for_the_grantee_only():
    grant, analyst, _oulad = _grant()
    chair = grant.decision.decided_by
    assert "Open the data" in _text(_client(analyst).get(grant.get_absolute_url()))
    assert "Open the data" not in _text(_client(chair).get(grant.get_absolute_url()))


def test_pseudonymised_preview_shows_50_rows_of_pseudonyms_and_logs_them():
    grant, analyst, _oulad = _grant("pseudonymised")
    response = _client(analyst).get(reverse("grant-data", args=[grant.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    rows = re.findall(r"<tr>\s*<td>([0-9a-f]{64})</td>", page)
    assert len(rows) == 50
    key = bytes(grant.pseudonym_key)
    assert set(rows) == {access.pseudonym(key, external_id) for external_id in IDS[:50]}
    assert not any(external_id in page for external_id in IDS)
    assert "Download CSV" in page
    event = AccessEvent.objects.get()
    assert (event.kind, event.user, event.people, event.rows) == ("preview", analyst, 50, 50)


def test_identified_preview_shows_external_ids():
    grant, analyst, _oulad = _grant("identified")
    page = _client(analyst).get(reverse("grant-data", args=[grant.pk])).content.decode()
    assert all(f"<td>{external_id}</td>" in page for external_id in IDS[:50])
    assert IDS[50] not in page
    assert _events("preview") == 1


def test_download_streams_the_whole_extract_as_csv():
    grant, analyst, _oulad = _grant("pseudonymised")
    response = _client(analyst).post(reverse("grant-download", args=[grant.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = _csv(b"".join(response.streaming_content))
    assert rows[0] == ["pseudonym", "code_module", "studied_credits", "final_result"]
    key = bytes(grant.pseudonym_key)
    expected = {
        (access.pseudonym(key, external_id), module)
        for external_id, module in zip(IDS, MODULES, strict=True)
    }
    assert {(row[0], row[1]) for row in rows[1:]} == expected
    assert _events() == _events("download") == 1
    assert AccessEvent.objects.get().people == len(IDS)


def test_aggregate_page_shows_noisy_counts_their_precision_the_cost_and_the_budget():
    grant, analyst, _oulad = _grant()
    client = _client(analyst)
    page = _text(client.get(reverse("grant-data", args=[grant.pk])))
    assert "Privacy budget: ε 10 left of 10. A new aggregate costs ε 1." in page

    response = client.get(reverse("grant-aggregate", args=[grant.pk]), {"group_by": "code_module"})

    assert response.status_code == 200
    text = _text(response)
    assert "Code module People (about)" in text  # the field's label, not its name
    assert "differential privacy" in text
    assert "This aggregate spent ε 1; ε 9 of the budget is left." in text
    assert re.search(r"within about ±\d+ of the true number, 95 times in 100", text)
    # Every declared module is listed; CCC (5 people, under k = 10) is suppressed unless
    # its noise lifts it to k, and no cell under k is ever shown.
    table = text[text.index("Code module People") :]
    for label in ("AAA", "BBB", "CCC", "Not recorded"):
        assert label in table
    shown = [int(n) for n in re.findall(r"(?:AAA|BBB|CCC) (\d+)", table)]
    assert all(n >= 10 for n in shown)
    assert _events("aggregate") == 1

    again = _text(
        client.get(reverse("grant-aggregate", args=[grant.pk]), {"group_by": "code_module"})
    )
    assert "You asked this before: this is the same answer, and it cost nothing." in again
    assert _events("aggregate") == 2

    # The grant's page shows the budget spent over time, in plain words.
    detail = _text(client.get(reverse("grant-detail", args=[grant.pk])))
    assert "Privacy budget ε 10 for aggregates; ε 9 left" in detail
    assert "Number of people by Code module 1 9" in detail


def test_a_spent_budget_is_refused_on_the_page_with_the_reason():
    grant, analyst, _oulad = _grant()
    grant.epsilon = 1.0
    grant.save()
    client = _client(analyst)
    client.get(reverse("grant-aggregate", args=[grant.pk]), {"group_by": "code_module"})

    response = client.get(reverse("grant-aggregate", args=[grant.pk]), {"group_by": "final_result"})

    assert response.status_code == 403
    text = _text(response)
    assert "The privacy budget of this grant is spent (ε 1 of 1 used" in text
    assert "It is spent: aggregates asked before still show their answers" in text


def test_aggregate_on_a_field_not_granted_names_it_and_logs_nothing():
    grant, analyst, _oulad = _grant()
    response = _client(analyst).get(
        reverse("grant-aggregate", args=[grant.pk]),
        {"group_by": ["code_module", "gender"], "measure": "count"},
    )
    assert response.status_code == 400
    assert "'gender' is not a field this grant lets you read" in _text(response)
    assert _events() == 0


def test_revoked_grant_gives_403_with_the_reason_and_no_data():
    grant, analyst, _oulad = _grant()
    services.grant_revoke(actor=grant.decision.decided_by, grant=grant, reason="Misuse.")
    client = _client(analyst)
    for response in (
        client.get(reverse("grant-data", args=[grant.pk])),
        client.get(reverse("grant-aggregate", args=[grant.pk]), {"group_by": "code_module"}),
        client.post(reverse("grant-download", args=[grant.pk])),
    ):
        assert response.status_code == 403
        assert "This grant is revoked." in _text(response)
        assert "AAA" not in _text(response)
    assert _events() == 0


def test_another_analyst_gets_404_everywhere():
    grant, analyst, _oulad = _grant()
    extract = _ready_extract(grant, analyst)
    other = _client(make_analyst())
    assert other.get(reverse("grant-data", args=[grant.pk])).status_code == 404
    assert (
        other.get(
            reverse("grant-aggregate", args=[grant.pk]), {"group_by": "code_module"}
        ).status_code
        == 404
    )
    assert other.post(reverse("grant-download", args=[grant.pk])).status_code == 404
    assert other.get(reverse("extract-detail", args=[extract.pk])).status_code == 404
    assert other.get(reverse("extract-file", args=[extract.pk])).status_code == 404
    assert other.get(reverse("grant-detail", args=[grant.pk])).status_code == 404
    revoke = other.post(reverse("grant-revoke", args=[grant.pk]), {"reason": "mine now"})
    assert revoke.status_code == 404
    grant.refresh_from_db()
    assert grant.status == "active"
    assert _events() == 0
    # The owner, by contrast, gets the file.
    assert _client(analyst).get(reverse("extract-file", args=[extract.pk])).status_code == 200


def test_expired_extract_file_is_404_for_its_owner():
    grant, analyst, _oulad = _grant()
    extract = _ready_extract(
        grant, analyst, expires_at=timezone.now() - datetime.timedelta(hours=1)
    )
    client = _client(analyst)
    assert client.get(reverse("extract-file", args=[extract.pk])).status_code == 404
    assert "expired" in _text(client.get(reverse("extract-detail", args=[extract.pk])))


def test_large_extract_is_prepared_by_a_task_and_downloaded_by_its_owner(
    celery_worker, monkeypatch
):
    grant, analyst, _oulad = _grant("pseudonymised")
    monkeypatch.setattr(data_views, "INLINE_EXTRACT_MAX_ROWS", 10)
    client = _client(analyst)
    response = client.post(reverse("grant-download", args=[grant.pk]))
    extract = ExtractFile.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("extract-detail", args=[extract.pk])
    assert extract.owner == analyst
    assert extract.expires_at > timezone.now() + datetime.timedelta(hours=23)

    deadline = time.monotonic() + 60
    while extract.status not in ("ready", "failed") and time.monotonic() < deadline:
        time.sleep(0.2)
        extract.refresh_from_db()
    assert extract.status == "ready"
    assert extract.rows == len(IDS)
    assert "Download the CSV" in _text(client.get(reverse("extract-detail", args=[extract.pk])))

    response = client.get(reverse("extract-file", args=[extract.pk]))
    assert response.status_code == 200
    rows = _csv(b"".join(response.streaming_content))
    key = bytes(grant.pseudonym_key)
    assert rows[0][0] == "pseudonym"
    assert {row[0] for row in rows[1:]} == {access.pseudonym(key, i) for i in IDS}
    # The extract was logged once, as a download, with everyone in it.
    event = AccessEvent.objects.get()
    assert (event.kind, event.people) == ("download", len(IDS))

    # A redelivered task leaves a finished extract alone.
    from analytics.tasks import extract_prepare_task

    extract_prepare_task(extract.pk)
    assert _events() == 1


def test_expired_extract_files_are_purged_and_the_row_kept(tmp_path):
    import datetime

    from django.core.files.base import ContentFile
    from django.utils import timezone

    from analytics.models import ExtractFile
    from analytics.tasks import extracts_purge_task
    from tests.analytics.factories import (
        approve,
        make_analyst,
        make_board,
        make_oulad,
        make_ready_request,
    )

    analyst, oulad, board = make_analyst(), make_oulad(), make_board()
    decision, request = approve(make_ready_request(analyst, oulad), oulad, board)
    grant = request.grants.get()

    def prepared(hours):
        extract = ExtractFile(
            grant=grant,
            owner=analyst,
            dataset=oulad.dataset,
            status="ready",
            expires_at=timezone.now() + datetime.timedelta(hours=hours),
        )
        extract.file.save("x.csv", ContentFile(b"a\n"), save=False)
        extract.save()
        return extract

    old, fresh = prepared(-1), prepared(23)
    path = old.file.path
    assert extracts_purge_task() == 1
    assert extracts_purge_task() == 0  # idempotent
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert not old.file and fresh.file
    import os

    assert not os.path.exists(path)
    assert ExtractFile.objects.filter(pk=old.pk).exists()
