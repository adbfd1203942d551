"""Tamper evidence: decisions, votes, consent changes and access events form hash chains
that ``verify_audit`` recomputes; PostgreSQL triggers refuse rewrites.

Tampering is done the way an administrator with database access would: straight SQL,
as the tables' owner with the triggers switched off on PostgreSQL (tests/database.py).
"""

from __future__ import annotations

import io
import json
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction
from django.test import Client

from analytics.models import AccessEvent, Decision, Vote
from consent import services as consent_services
from consent.models import ConsentReceipt
from governance.audit.chain import (
    GENESIS,
    ChainedRowImmutable,
    backfill,
    chained_models,
    content_of,
    entry_hash,
    latest_verification,
)
from governance.models import AccountEvent, AuditVerification, Role
from governance.tasks import audit_verify_task
from tests.consent.factories import make_subject_world, read
from tests.database import as_owner, past_the_triggers
from tests.factories import make_user


@pytest.fixture
def world(transactional_db):
    """Votes and a decision, a dozen consents with a withdrawal and a renewal, three
    reads through the grant and two sign-ins: every chain has a few entries. Committed
    (a transactional test), so that the tables' owner can tamper with them from its own
    connection."""
    world = make_subject_world()
    for user in (world.user, world.other_user):
        Client().force_login(user)
    consent_services.consent_withdraw(actor=world.user, person=world.person, purpose=world.purpose)
    consent_services.consent_give(actor=world.user, person=world.person, purpose=world.purpose)
    read(world)
    read(world)
    return world


def verify_audit(*args) -> str:
    out = io.StringIO()
    call_command("verify_audit", *args, stdout=out, stderr=out)
    return out.getvalue()


def verify_audit_fails(*args) -> str:
    with pytest.raises(CommandError) as failed:
        verify_audit(*args)
    assert failed.value.returncode == 1
    return str(failed.value)


def entries(model):
    return list(model.objects.order_by("chain_seq"))


# --- appending ---------------------------------------------------------------------------


def test_every_chained_model_has_its_own_chain():
    assert {m.chain_name: m for m in chained_models()} == {
        "access": AccessEvent,
        "account": AccountEvent,
        "consent": ConsentReceipt,
        "decision": Decision,
        "vote": Vote,
    }


def test_each_entry_links_to_the_one_before_and_hashes_its_own_content(world):
    for model in chained_models():
        rows = entries(model)
        assert rows, model
        assert [r.chain_seq for r in rows] == list(range(1, len(rows) + 1))
        assert rows[0].chain_prev == GENESIS
        for before, row in zip(rows, rows[1:], strict=False):
            assert row.chain_prev == before.chain_hash
        for row in rows:
            assert row.chain_hash == entry_hash(row.chain_prev, content_of(row))
    vote = entries(Vote)[0]
    content = content_of(vote)
    assert content["id"] == vote.pk
    assert content["member_id"] == vote.member_id
    assert content["created_at"].endswith("+00:00")
    assert not {"chain_seq", "chain_prev", "chain_hash"} & set(content)


def test_a_chained_row_cannot_be_saved_again(world):
    vote = Vote.objects.first()
    vote.rationale = "Changed my mind."

    with pytest.raises(ChainedRowImmutable, match="cannot be changed"):
        vote.save()

    vote.refresh_from_db()
    assert vote.rationale != "Changed my mind."


# --- verifying ---------------------------------------------------------------------------


def test_an_untouched_trail_verifies_clean_and_is_recorded(world):
    output = verify_audit()

    total = sum(m.objects.count() for m in chained_models())
    assert f"Audit chains intact: {total} entries checked" in output
    verification = latest_verification()
    assert (verification.ok, verification.problems, verification.entries) == (True, [], total)
    assert verification.triggered_by == "command"
    last_vote = Vote.objects.order_by("chain_seq").last()
    assert verification.heads["vote"] == {"seq": last_vote.chain_seq, "hash": last_vote.chain_hash}


def test_an_empty_database_verifies_clean(db):
    verify_audit()

    assert latest_verification().heads["access"] == {"seq": 0, "hash": GENESIS}


def test_a_changed_vote_a_deleted_access_event_and_swapped_receipts_are_each_named(world):
    vote = entries(Vote)[1]
    first_read, deleted, third_read = entries(AccessEvent)[:3]
    receipts = entries(ConsentReceipt)
    a, b = receipts[2], receipts[5]
    assert a.content != b.content
    columns = "state, previous_state, content, content_hash, person_id, consent_id"
    with past_the_triggers() as cursor:
        cursor.execute("UPDATE analytics_vote SET rationale = 'Edited.' WHERE id = %s", [vote.pk])
        cursor.execute("DELETE FROM analytics_accessevent WHERE id = %s", [deleted.pk])
        cursor.execute(
            "CREATE TEMPORARY TABLE swap AS "  # noqa: S608
            f"SELECT id, {columns} FROM consent_consentreceipt WHERE id IN (%s, %s)",
            [a.pk.hex, b.pk.hex] if connection.vendor == "sqlite" else [a.pk, b.pk],
        )
        for target, source in ((a, b), (b, a)):
            params = [target.pk, source.pk]
            if connection.vendor == "sqlite":
                params = [p.hex for p in params]
            cursor.execute(
                f"UPDATE consent_consentreceipt SET ({columns}) = "  # noqa: S608
                f"(SELECT {columns} FROM swap WHERE swap.id = %s) WHERE id = %s",
                [params[1], params[0]],
            )
        cursor.execute("DROP TABLE swap")

    message = verify_audit_fails()

    assert f"vote chain, entry {vote.chain_seq} (row {vote.pk}): its content was changed" in (
        message
    )
    assert (
        f"access chain, entry {third_read.chain_seq} (row {third_read.pk}): "
        f"entry {deleted.chain_seq} before it is missing (deleted)"
    ) in message
    assert f"consent chain, entry {a.chain_seq} (row {a.pk}): its content was changed" in message
    assert "decision chain" not in message
    verification = latest_verification()
    assert not verification.ok
    assert len(verification.problems) == 3


def test_reordered_entries_are_reported(world):
    votes = entries(Vote)
    one, two = votes[0], votes[1]
    with past_the_triggers() as cursor:
        for seq, pk in ((10**9, one.pk), (one.chain_seq, two.pk), (two.chain_seq, one.pk)):
            cursor.execute("UPDATE analytics_vote SET chain_seq = %s WHERE id = %s", [seq, pk])

    message = verify_audit_fails()

    assert f"vote chain, entry 1 (row {two.pk}): does not follow entry 0" in message


def test_deleting_the_newest_entries_is_caught_by_the_last_verified_head(world):
    verify_audit()
    newest = entries(AccessEvent)[-1]
    with past_the_triggers() as cursor:
        cursor.execute("DELETE FROM analytics_accessevent WHERE id = %s", [newest.pk])

    message = verify_audit_fails()

    assert f"access chain, entry {newest.chain_seq}: missing, though it was the head" in message


def test_a_rewritten_chain_is_caught_by_the_published_heads(world, tmp_path):
    published = tmp_path / "heads.json"
    published.write_text(verify_audit("--heads").split("Audit chains intact")[0])
    assert json.loads(published.read_text())["intact"] is True
    # A superuser edits a vote, recomputes every later hash and erases the earlier runs.
    votes = entries(Vote)
    with past_the_triggers() as cursor:
        cursor.execute(
            "UPDATE analytics_vote SET rationale = 'Edited.' WHERE id = %s", [votes[0].pk]
        )
        prev = GENESIS
        for vote in entries(Vote):
            chain_hash = entry_hash(prev, content_of(vote))
            cursor.execute(
                "UPDATE analytics_vote SET chain_prev = %s, chain_hash = %s WHERE id = %s",
                [prev, chain_hash, vote.pk],
            )
            prev = chain_hash
        cursor.execute("DELETE FROM governance_auditverification")
    verify_audit()  # the rewrite is consistent in itself

    message = verify_audit_fails("--expect", str(published))

    assert f"vote chain, entry {len(votes)}: differs from the head expected" in message


def test_heads_print_the_newest_entry_of_each_chain(world):
    output = verify_audit("--heads")

    printed = json.loads(output.split("Audit chains intact")[0])
    for model in chained_models():
        newest = model.objects.order_by("chain_seq").last()
        assert printed["heads"][model.chain_name] == {
            "seq": newest.chain_seq,
            "hash": newest.chain_hash,
        }


def test_an_unreadable_expect_file_is_refused_with_the_reason(db, tmp_path):
    bad = tmp_path / "heads.json"
    bad.write_text('{"heads": {"vote": 3}}')

    with pytest.raises(CommandError, match="not a heads file printed by verify_audit --heads"):
        verify_audit("--expect", str(bad))
    with pytest.raises(CommandError, match="No such file"):
        verify_audit("--expect", str(tmp_path / "missing.json"))
    assert AuditVerification.objects.count() == 0


def test_rows_chained_by_the_migration_backfill_verify(world):
    """What the migrations do for rows written before the chains: null the chain
    fields (as they were), backfill in id order, verify."""
    with past_the_triggers() as cursor:
        cursor.execute(
            "UPDATE analytics_vote SET chain_seq = NULL, chain_prev = '', chain_hash = ''"
        )
    assert "vote chain, row" in verify_audit_fails()
    assert "not in the chain" in latest_verification().problems[0]

    with past_the_triggers():
        assert backfill(Vote, order_by=("pk",)) == Vote.objects.count()

    verify_audit()
    assert [v.pk for v in entries(Vote)] == sorted(Vote.objects.values_list("pk", flat=True))


# --- nightly, and on the dashboard ---------------------------------------------------------


def test_beat_runs_the_verification(world):
    assert audit_verify_task.apply().get() is True

    assert latest_verification().triggered_by == "beat"


def test_the_auditors_dashboard_shows_the_last_verification_and_its_problems(world):
    auditor, analyst = make_user(Role.AUDITOR), make_user(Role.ANALYST)
    client = Client()
    client.force_login(auditor)
    assert "not been verified yet" in client.get("/").content.decode()

    verify_audit()
    page = client.get("/").content.decode()
    assert "Intact." in page
    assert f"{latest_verification().entries} entries in 5 chains" in page

    vote = entries(Vote)[0]
    with past_the_triggers() as cursor:
        cursor.execute("UPDATE analytics_vote SET rationale = 'Edited.' WHERE id = %s", [vote.pk])
    verify_audit_fails()
    page = client.get("/").content.decode()
    assert "Broken." in page
    assert f"vote chain, entry 1 (row {vote.pk}): its content was changed" in page

    client.force_login(analyst)
    assert "Tamper evidence" not in client.get("/").content.decode()


# --- PostgreSQL: concurrent appends, and the triggers ---------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_writers_append_without_a_fork_or_a_gap():
    world = make_subject_world(people=4)
    writers, each = 6, 8
    barrier = threading.Barrier(writers)
    errors = []

    def write():
        try:
            barrier.wait(timeout=10)
            for n in range(each):
                with transaction.atomic():
                    AccessEvent.objects.create(
                        grant=world.grant,
                        user=world.analyst,
                        kind="aggregate",
                        dataset=world.oulad.dataset,
                        output_level="aggregate",
                        people=n,
                    )
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    rows = entries(AccessEvent)
    assert len(rows) == 1 + writers * each
    assert [r.chain_seq for r in rows] == list(range(1, len(rows) + 1))
    assert all(b.chain_prev == a.chain_hash for a, b in zip(rows, rows[1:], strict=False))
    verify_audit()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE analytics_vote SET rationale = 'Edited.'",
        "DELETE FROM analytics_vote",
        "UPDATE consent_consentreceipt SET state = 'given'",
        "DELETE FROM analytics_decision",
        "UPDATE analytics_historicalvote SET rationale = 'Edited.'",
        "DELETE FROM consent_historicalconsent",
        "UPDATE governance_historicaldataset SET name = 'Renamed'",
    ],
)
def test_triggers_refuse_rewriting_chained_and_history_tables(world, statement):
    table = statement.split()[1] if statement.startswith("UPDATE") else statement.split()[2]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        assert cursor.fetchone()[0] > 0

    # Even the owner of the tables (who alone could switch the trigger off) is refused.
    with as_owner(), pytest.raises(DatabaseError, match="is append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)

    verify_audit()


@pytest.mark.postgres
def test_every_chained_and_history_table_has_the_trigger(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r' AND ("
            " c.relname LIKE '%%\\_historical%%' OR c.relname IN ("
            " 'analytics_decision', 'analytics_vote', 'analytics_accessevent',"
            " 'consent_consentreceipt'))"
        )
        tables = {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE t.tgname LIKE '%%append_only' AND t.tgenabled = 'O'"
        )
        guarded = {row[0] for row in cursor.fetchall()}

    assert len(tables) > 20
    assert tables - guarded == set()
