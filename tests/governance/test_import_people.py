"""Importing people from CSV: ``manage.py import_people``."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from governance.models import Person
from governance.services.accounts import user_create
from tests.factories import PersonFactory, make_user

PEOPLE = (
    b"external_id,name,email,org_unit\n"
    b"E1,Ann Lee,ann@example.org,Maths\n"
    b"E2,Bob Roe,Bob@Example.org,Physics\n"
)


@pytest.fixture
def admin(db):
    return make_user(email="dpo@example.org")


def write(tmp_path, content: bytes, name="people.csv"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def import_people(path, *args) -> str:
    out = io.StringIO()
    call_command("import_people", str(path), *args, stdout=out)
    return out.getvalue()


def people() -> list[tuple[str, str, str, str]]:
    return list(
        Person.objects.order_by("external_id").values_list(
            "external_id", "name", "email", "org_unit"
        )
    )


@pytest.mark.django_db
def test_import_creates_and_updates_people(tmp_path, admin):
    existing = PersonFactory(external_id="E1", name="Ann Old", email="", org_unit="History")

    output = import_people(write(tmp_path, PEOPLE), "--as", admin.email)

    assert "1 created, 1 updated, 0 unchanged, 0 linked to logins." in output
    assert people() == [
        ("E1", "Ann Lee", "ann@example.org", "Maths"),
        ("E2", "Bob Roe", "bob@example.org", "Physics"),
    ]
    assert Person.objects.get(external_id="E1").pk == existing.pk
    update = Person.history.filter(id=existing.pk, history_type="~").get()
    assert update.history_user == admin
    assert update.name == "Ann Lee"
    assert Person.history.get(external_id="E2", history_type="+").history_user == admin


@pytest.mark.django_db
def test_importing_the_same_file_again_changes_nobody(tmp_path, admin):
    path = write(tmp_path, PEOPLE)
    import_people(path)
    history = Person.history.count()

    output = import_people(path)

    assert "0 created, 0 updated, 2 unchanged" in output
    assert Person.history.count() == history


@pytest.mark.django_db
def test_columns_left_out_of_the_file_are_left_as_they_are(tmp_path, admin):
    PersonFactory(external_id="E1", name="Ann Lee", email="ann@example.org", org_unit="History")

    import_people(write(tmp_path, b"external_id,org_unit\nE1,Maths\n"))

    assert people() == [("E1", "Ann Lee", "ann@example.org", "Maths")]


@pytest.mark.django_db
def test_a_person_is_linked_to_an_existing_login_with_the_same_email(tmp_path, admin):
    ann = make_user(email="ann@example.org")
    PersonFactory(external_id="E0", email="other@example.org")

    output = import_people(write(tmp_path, PEOPLE))

    assert "1 linked to logins" in output
    assert Person.objects.get(external_id="E1").user == ann
    assert Person.objects.get(external_id="E2").user is None


@pytest.mark.django_db
def test_a_login_created_later_is_linked_to_the_person_with_that_email(tmp_path, admin):
    import_people(write(tmp_path, PEOPLE))

    bob = user_create(actor=admin, email="BOB@example.org", password=None, full_name="Bob Roe")

    assert Person.objects.get(external_id="E2").user == bob
    assert Person.objects.get(external_id="E1").user is None


BAD_FILES = {
    "bad e-mail": (
        PEOPLE + b"E3,Cy Doe,not-an-address,Art\n",
        "row 3 (line 4), column email: not a valid e-mail address",
    ),
    "duplicate external_id": (
        PEOPLE + b"E1,Ann Again,ann2@example.org,Art\n",
        "row 3 (line 4), column external_id: this external id appears twice in the file",
    ),
    "unknown column": (
        b"external_id,name,team\nE1,Ann Lee,Blue\nE2,Bob Roe,Red\n",
        "header, column team: unknown column",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_changes_nobody(tmp_path, admin, case):
    make_user(email="bob@example.org")
    PersonFactory(external_id="E1", name="Ann Old", email="", org_unit="History")
    before, history = people(), Person.history.count()
    content, expected = BAD_FILES[case]

    with pytest.raises(CommandError) as caught:
        import_people(write(tmp_path, content), "--as", admin.email)

    message = str(caught.value)
    assert "people.csv was rejected; nobody was changed" in message
    assert expected in message
    assert people() == before
    assert Person.history.count() == history
    assert not Person.objects.filter(user__isnull=False).exists()


@pytest.mark.django_db
def test_a_missing_file_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        import_people(tmp_path / "missing.csv")
