"""Loading records from CSV: ``manage.py import_records`` and ``records_import``."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from governance.csvio import ImportRejected
from governance.models import Dataset, Person, Record, RecordLoad, Role
from governance.services.records import records_import
from tests.factories import PersonFactory, make_dataset, make_user

OULAD = settings.BASE_DIR.parent / "shared" / "data" / "oulad"

GOOD = (
    b"student_id,course,score,grade,passed\n"
    b"s1,Maths,71,A,yes\n"
    b"s2,Maths,,B,no\n"
    b"s1,Physics,64,,true\n"
)


@pytest.fixture
def steward(db):
    return make_user(Role.STEWARD, email="steward@example.org")


@pytest.fixture
def dataset(steward):
    return make_dataset(
        steward,
        slug="grades",
        person_column="student_id",
        fields=[
            ("course", "string", "internal"),
            ("score", "integer", "internal"),
            ("grade", "category", "personal", {"values": ["A", "B", "C"]}),
            ("passed", "boolean", "internal"),
        ],
    )


def write(tmp_path, content: bytes, name="grades.csv"):
    path = tmp_path / name
    path.write_bytes(content)
    return path


def import_records(slug, path, *args) -> str:
    out = io.StringIO()
    call_command("import_records", slug, str(path), *args, stdout=out)
    return out.getvalue()


def values_by_person(dataset) -> list[tuple[str, dict]]:
    pairs = [
        (r.person.external_id, r.values)
        for r in Record.objects.filter(dataset=dataset).select_related("person")
    ]
    return sorted(pairs, key=lambda pair: (pair[0], json.dumps(pair[1], sort_keys=True)))


# --- loading ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_import_loads_rows_matching_and_creating_people(tmp_path, steward, dataset):
    known = PersonFactory(external_id="s1")
    path = write(tmp_path, GOOD)

    output = import_records("grades", path, "--as", steward.email)

    assert "Loaded 3 rows (1 new person)" in output
    assert "it now holds 3 records" in output
    assert Person.objects.count() == 2
    by_person = {}
    for record in Record.objects.filter(dataset=dataset).select_related("person"):
        by_person.setdefault(record.person.external_id, []).append(record)
    assert [r.person_id for r in by_person["s1"]] == [known.pk, known.pk]
    assert values_by_person(dataset) == [
        ("s1", {"course": "Maths", "score": 71, "grade": "A", "passed": True}),
        # A blank cell is a missing value: the key is absent, not an empty string.
        ("s1", {"course": "Physics", "score": 64, "passed": True}),
        ("s2", {"course": "Maths", "grade": "B", "passed": False}),
    ]
    score = Record.objects.get(person=known, values__course="Maths").values["score"]
    assert type(score) is int
    dataset.refresh_from_db()
    assert dataset.record_count == 3
    # A person created by the load is attributed to the loader in history.
    created = Person.history.get(external_id="s2", history_type="+")
    assert created.history_user == steward


@pytest.mark.django_db
def test_the_load_is_recorded_with_its_checksum(tmp_path, steward, dataset):
    path = write(tmp_path, GOOD)

    output = import_records("grades", path, "--as", steward.email)

    load = RecordLoad.objects.get()
    checksum = hashlib.sha256(GOOD).hexdigest()
    assert load.dataset == dataset
    assert load.created_by == steward
    assert load.file_name == "grades.csv"
    assert load.checksum == checksum
    assert f"sha256 {checksum}" in output
    assert load.rows == 3
    assert load.people_created == 2
    assert load.mode == "add"
    assert load.status == "succeeded"
    assert load.finished_at is not None
    assert set(Record.objects.values_list("load_id", flat=True)) == {load.pk}
    history = list(RecordLoad.history.filter(id=load.pk).order_by("history_date", "history_id"))
    assert history, "the load is missing from history"
    assert {h.history_user for h in history} == {steward}
    assert history[-1].status == "succeeded"
    assert history[-1].checksum == checksum


@pytest.mark.django_db
def test_a_second_load_adds_records(tmp_path, steward, dataset):
    path = write(tmp_path, GOOD)
    import_records("grades", path)
    output = import_records("grades", path)

    assert "Loaded 3 rows (0 new people)" in output
    assert Record.objects.filter(dataset=dataset).count() == 6
    assert Person.objects.count() == 2


@pytest.mark.django_db
def test_replace_swaps_the_records(tmp_path, steward, dataset):
    import_records("grades", write(tmp_path, GOOD))
    new = write(tmp_path, b"student_id,course,score\ns3,Art,90\n", "new.csv")

    output = import_records("grades", new, "--replace", "--as", steward.email)

    assert "replaced the records of grades; it now holds 1 records" in output
    assert values_by_person(dataset) == [("s3", {"course": "Art", "score": 90})]
    dataset.refresh_from_db()
    assert dataset.record_count == 1
    assert RecordLoad.objects.get(file_name="new.csv").mode == "replace"


@pytest.mark.django_db
def test_a_rejected_replace_keeps_the_old_records(tmp_path, steward, dataset):
    import_records("grades", write(tmp_path, GOOD))
    before = values_by_person(dataset)
    bad = write(tmp_path, b"student_id,course,score\ns3,Art,90\ns4,Art,lots\n", "bad.csv")

    with pytest.raises(CommandError, match="row 2"):
        import_records("grades", bad, "--replace")

    assert values_by_person(dataset) == before
    assert not Person.objects.filter(external_id__in=["s3", "s4"]).exists()
    dataset.refresh_from_db()
    assert dataset.record_count == 3


@pytest.mark.django_db
def test_the_service_imports_a_stream(steward, dataset):
    load = records_import(
        actor=steward, dataset=dataset, stream=io.BytesIO(GOOD), file_name="upload.csv"
    )

    assert load.rows == 3
    assert load.checksum == hashlib.sha256(GOOD).hexdigest()
    assert Record.objects.filter(load=load).count() == 3


@pytest.mark.django_db
def test_the_service_rejects_with_located_errors(steward, dataset):
    content = b"student_id,score,grade\ns1,7,A\ns2,x,Z\n"
    with pytest.raises(ImportRejected) as caught:
        records_import(
            actor=steward, dataset=dataset, stream=io.BytesIO(content), file_name="bad.csv"
        )

    located = sorted((e.row, e.line, e.column) for e in caught.value.errors)
    assert located == [(2, 3, "grade"), (2, 3, "score")]
    assert Record.objects.count() == 0
    load = RecordLoad.objects.get()
    assert load.status == "failed"
    assert load.rows == 0
    assert {e["column"] for e in load.errors} == {"score", "grade"}


# --- bad input: rejected whole, with row, column and reason ------------------------------

HEADER = b"student_id,course,score,grade\n"
# Enough good rows before the bad one that some are written (batches of one) before the
# bad row is read: the rejection must roll them back.
GOOD_ROWS = b"".join(f"n{i},Maths,{i},A\n".encode() for i in range(1, 21))

BAD_FILES = {
    "wrong type": (
        HEADER + GOOD_ROWS + b"n3,Maths,seventy,C\n",
        ["row 21 (line 22), column score", "'seventy' is not a whole number"],
    ),
    "value not allowed": (
        HEADER + GOOD_ROWS + b"n3,Maths,3,E\n",
        ["row 21 (line 22), column grade", "'E' is not one of the allowed values: A, B, C"],
    ),
    "missing person column": (
        b"course,score\nMaths,1\n",
        ["header, column student_id", "the person column is missing"],
    ),
    "unknown column": (
        b"student_id,course,colour\nn1,Maths,red\n",
        ["header, column colour", "unknown column"],
    ),
    "duplicate header": (
        b"student_id,score,course,score\nn1,1,Maths,2\n",
        ["header, column score", "duplicate column"],
    ),
    "empty file": (b"", ["header", "the file is empty"]),
    "header only": (HEADER, ["header", "no data rows"]),
    "not UTF-8": (
        HEADER + GOOD_ROWS + b"n3,Math\xe9matiques,3,C\n",
        ["row 21 (line 22)", "not UTF-8"],
    ),
    "wrong number of columns": (
        HEADER + GOOD_ROWS + b"n3,Maths,3,C,extra\n",
        ["row 21 (line 22)", "expected 4 columns, found 5"],
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_input_is_rejected_and_nothing_is_written(tmp_path, settings, steward, dataset, case):
    # Small batches, so good rows before the bad one are written, then rolled back.
    settings.CUSTOS_IMPORT_BATCH_SIZE = 1
    content, expected = BAD_FILES[case]
    path = write(tmp_path, content)

    with pytest.raises(CommandError) as caught:
        import_records("grades", path, "--as", steward.email)

    message = str(caught.value)
    assert "grades.csv was rejected; no rows were written" in message
    for text in expected:
        assert text in message
    assert Record.objects.count() == 0
    assert Person.objects.count() == 0
    dataset.refresh_from_db()
    assert dataset.record_count == 0
    assert not RecordLoad.objects.filter(status="succeeded").exists()


@pytest.mark.django_db
def test_a_retired_dataset_refuses_loads(tmp_path, steward):
    make_dataset(
        steward,
        slug="old",
        status="retired",
        person_column="student_id",
        fields=[("score", "integer", "internal")],
    )
    path = write(tmp_path, b"student_id,score\ns1,1\n")

    with pytest.raises(CommandError, match="retired dataset takes no new records"):
        import_records("old", path)

    assert Record.objects.count() == 0
    assert Person.objects.count() == 0
    assert RecordLoad.objects.count() == 0


@pytest.mark.django_db
def test_the_service_refuses_a_retired_dataset(steward):
    retired = make_dataset(steward, status="retired", fields=[("score", "integer", "internal")])
    with pytest.raises(ValidationError):
        records_import(
            actor=steward,
            dataset=retired,
            stream=io.BytesIO(b"external_id,score\ns1,1\n"),
            file_name="x.csv",
        )
    assert Record.objects.count() == 0


@pytest.mark.django_db
def test_an_unknown_dataset_or_file_is_a_command_error(tmp_path, dataset):
    with pytest.raises(CommandError, match="no dataset with the slug 'nope'"):
        import_records("nope", write(tmp_path, GOOD))
    with pytest.raises(CommandError, match="no such file"):
        import_records("grades", tmp_path / "missing.csv")


# --- acceptance: the real OULAD student table --------------------------------------------


def _register_oulad():
    make_user(Role.STEWARD, email="steward@example.org")
    for seat in ("chair", "hr", "legal", "dpo", "rep", "committee"):
        make_user(email=f"{seat}@example.org")  # the oversight committee's members
    call_command(
        "apply",
        str(settings.BASE_DIR / "docs" / "examples" / "oulad.yaml"),
        "--as",
        "steward@example.org",
        stdout=io.StringIO(),
    )
    return Dataset.objects.get(slug="oulad-student-info")


@pytest.mark.postgres
@pytest.mark.django_db
def test_oulad_student_info_loads_whole():
    dataset = _register_oulad()
    path = OULAD / "studentInfo.csv"

    output = import_records("oulad-student-info", path, "--as", "steward@example.org")

    assert "Loaded 32593 rows (28785 new people)" in output
    assert Record.objects.filter(dataset=dataset).count() == 32_593
    assert Person.objects.count() == 28_785
    dataset.refresh_from_db()
    assert dataset.record_count == 32_593
    load = RecordLoad.objects.get()
    assert (load.rows, load.people_created, load.status) == (32_593, 28_785, "succeeded")
    assert load.checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    # 1,111 imd_band cells are blank in the source: those records have no such value.
    assert Record.objects.filter(dataset=dataset, values__has_key="imd_band").count() == (
        32_593 - 1_111
    )
    first = Record.objects.get(dataset=dataset, person__external_id="11391")
    assert first.values["studied_credits"] == 240
    assert first.values["gender"] == "M"


@pytest.mark.postgres
@pytest.mark.django_db
def test_oulad_with_one_bad_value_in_row_20001_writes_nothing(tmp_path):
    _register_oulad()
    with (OULAD / "studentInfo.csv").open(newline="", encoding="utf-8") as source:
        rows = list(csv.reader(source))
    gender = rows[0].index("gender")
    assert rows[20_001][gender] in {"F", "M"}
    rows[20_001][gender] = "X"
    path = tmp_path / "studentInfo.csv"
    with path.open("w", newline="", encoding="utf-8") as target:
        csv.writer(target, lineterminator="\n").writerows(rows)

    with pytest.raises(CommandError) as caught:
        import_records("oulad-student-info", path, "--as", "steward@example.org")

    message = str(caught.value)
    assert "row 20001 (line 20002), column gender" in message
    assert "'X' is not one of the allowed values: F, M" in message
    assert Record.objects.count() == 0
    assert Person.objects.count() == 0
