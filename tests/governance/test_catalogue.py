"""The catalogue and dataset pages: what people see, and a fixed number of queries."""

from __future__ import annotations

import io

import pytest
from django.test import Client

from governance.models import Dataset, Field, Role
from governance.services import registry
from governance.services.records import records_import
from tests.factories import make_dataset, make_purpose, make_user

pytestmark = pytest.mark.django_db

FIELDS = [
    ("module", "category", "internal"),
    ("gender", "category", "personal", {"is_protected_attribute": True}),
    ("disability", "category", "special", {"values": ["Y", "N"]}),
    ("credits", "integer", "internal"),
]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _many_datasets(steward, count, start=0):
    for n in range(start, start + count):
        make_dataset(steward, slug=f"bulk-{n}", name=f"Bulk {n}", fields=FIELDS, tags=["learning"])


def test_catalogue_lists_fields_with_sensitivity_but_never_values():
    steward = make_user(Role.STEWARD)
    dataset = make_dataset(steward, name="Student info", fields=FIELDS, person_column="sid")
    records_import(
        actor=steward,
        dataset=dataset,
        stream=io.BytesIO(b"sid,module,gender,disability,credits\nS1,ZZTOP,F,Y,60\n"),
        file_name="a.csv",
    )
    page = _client(make_user()).get("/datasets/").content.decode()
    assert "Student info" in page
    assert "disability" in page and "Special category" in page
    assert "ZZTOP" not in page  # a record value never appears in the catalogue
    detail = _client(make_user()).get(f"/datasets/{dataset.slug}/").content.decode()
    assert "ZZTOP" not in detail
    assert "1</dd>" in detail  # the record count


def test_catalogue_search_and_filters():
    steward = make_user(Role.STEWARD)
    other = make_user(Role.STEWARD)
    make_dataset(
        steward, name="Quiz attempts", fields=[("score", "integer", "personal")], tags=["learning"]
    )
    make_dataset(
        other, name="Staff survey", fields=[("ethnicity", "category", "special")], tags=["hr"]
    )
    client = _client(make_user())

    def names(**params):
        html = client.get("/datasets/", params).content.decode()
        return {n for n in ("Quiz attempts", "Staff survey") if n in html}

    assert names() == {"Quiz attempts", "Staff survey"}
    assert names(q="ethnic") == {"Staff survey"}  # a field name matches
    assert names(q="quiz") == {"Quiz attempts"}
    assert names(tag="hr") == {"Staff survey"}
    assert names(sensitivity="special") == {"Staff survey"}
    assert names(steward=steward.email) == {"Quiz attempts"}


def test_catalogue_query_count_does_not_grow(django_assert_num_queries):
    steward = make_user(Role.STEWARD)
    viewer = make_user(Role.ANALYST)
    client = _client(viewer)
    _many_datasets(steward, 2)
    client.get("/datasets/")  # warm the session and content types
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert client.get("/datasets/").status_code == 200
    _many_datasets(steward, 15, start=2)
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get("/datasets/")
    assert "Bulk 16" in response.content.decode()


def test_dataset_page_query_count_does_not_grow(django_assert_num_queries):
    steward = make_user(Role.STEWARD)
    dataset = make_dataset(steward, fields=FIELDS, purposes=[make_purpose(steward)])
    client = _client(steward)
    url = f"/datasets/{dataset.slug}/"
    client.get(url)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for n in range(20):
        registry.field_create(
            actor=steward, dataset=dataset, name=f"extra_{n}", type="string", sensitivity="internal"
        )
    field = dataset.fields.get(name="module")
    registry.field_update(actor=steward, field=field, sensitivity="personal")
    registry.dataset_update(actor=steward, dataset=dataset, description="Changed", tags=["x", "y"])
    for n in range(3):
        records_import(
            actor=steward,
            dataset=dataset,
            stream=io.BytesIO(f"external_id,module\nP{n},AAA\n".encode()),
            file_name=f"f{n}.csv",
        )
    with django_assert_num_queries(len(few.captured_queries)):
        response = client.get(url)
    assert "extra_19" in response.content.decode()


def test_steward_creates_dataset_and_field_and_sees_the_timeline():
    steward = make_user(Role.STEWARD)
    purpose = make_purpose(steward)
    client = _client(steward)
    response = client.post(
        "/datasets/new/",
        {
            "name": "Forum posts",
            "slug": "forum-posts",
            "description": "Posts in course forums",
            "source_system": "Moodle",
            "lawful_basis": "legitimate_interest",
            "retention_days": 730,
            "status": "active",
            "person_column": "user_id",
            "tags": "learning, forums",
            "purposes": [purpose.pk],
        },
    )
    dataset = Dataset.objects.get(slug="forum-posts")
    assert response.status_code == 302 and response["Location"] == "/datasets/forum-posts/"
    assert list(dataset.stewards.all()) == [steward]
    assert steward.has_perm("governance.steward_dataset", dataset)
    assert sorted(t.name for t in dataset.tags.all()) == ["forums", "learning"]

    response = client.post(
        "/datasets/forum-posts/fields/new/",
        {"name": "topic", "type": "category", "sensitivity": "internal", "values": "a, b"},
    )
    assert response.status_code == 302
    assert Field.objects.get(dataset=dataset, name="topic").values == ["a", "b"]

    client.post(
        "/datasets/forum-posts/fields/topic/edit/",
        {"type": "category", "sensitivity": "personal", "values": "a\nb"},
    )
    page = client.get("/datasets/forum-posts/").content.decode()
    assert "field topic" in page
    assert "Internal</del> → <ins>Personal" in page
    last = Field.history.filter(name="topic").first()
    assert last.history_user == steward


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"slug": "taken"}, "slug", "already exists"),
        ({"retention_days": -5}, "retention_days", "greater than or equal to 1"),
        ({"tags": "Not A Tag"}, "tags", "lower-case"),
        ({"slug": "Bad Slug"}, "slug", "valid"),
    ],
)
def test_dataset_form_rejects_bad_input(data, field, message):
    steward = make_user(Role.STEWARD)
    make_dataset(steward, slug="taken")
    before = Dataset.objects.count()
    valid = {
        "name": "X",
        "slug": "new-one",
        "lawful_basis": "legitimate_interest",
        "retention_days": 30,
        "status": "draft",
        "person_column": "external_id",
    }
    response = _client(steward).post("/datasets/new/", valid | data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors and message in " ".join(errors[field])
    assert Dataset.objects.count() == before


def test_field_form_rejects_duplicate_names_and_values_on_non_categories():
    steward = make_user(Role.STEWARD)
    dataset = make_dataset(steward, fields=[("module", "category", "internal")])
    client = _client(steward)
    response = client.post(
        f"/datasets/{dataset.slug}/fields/new/",
        {"name": "module", "type": "string", "sensitivity": "internal"},
    )
    assert "already has a field" in " ".join(response.context["form"].errors["name"])
    response = client.post(
        f"/datasets/{dataset.slug}/fields/new/",
        {"name": "score", "type": "integer", "sensitivity": "internal", "values": "1, 2"},
    )
    assert "Only a category" in " ".join(response.context["form"].errors["values"])
    assert dataset.fields.count() == 1


def test_stewards_are_guardian_permissions_and_follow_edits():
    first = make_user(Role.STEWARD)
    second = make_user(Role.STEWARD)
    dataset = make_dataset(first)
    registry.dataset_update(actor=first, dataset=dataset, stewards=[second])
    first = type(first).objects.get(pk=first.pk)  # drop guardian's permission cache
    second = type(second).objects.get(pk=second.pk)
    assert not first.has_perm("governance.steward_dataset", dataset)
    assert second.has_perm("governance.steward_dataset", dataset)
    assert _client(first).get(f"/datasets/{dataset.slug}/edit/").status_code == 403
    assert _client(second).get(f"/datasets/{dataset.slug}/edit/").status_code == 200
    entry = Dataset.history.filter(id=dataset.pk).first()
    assert entry.history_user == first


def test_dpo_sees_overdue_policies_on_the_dashboard():
    import datetime

    dpo = make_user(Role.DPO)
    registry.policy_create(
        actor=dpo,
        slug="old",
        title="Stale policy",
        body="…",
        owner=dpo,
        approval_date=datetime.date(2020, 1, 31),
        review_interval_months=1,
    )
    registry.policy_create(
        actor=dpo,
        slug="fresh",
        title="Fresh policy",
        body="…",
        owner=dpo,
        approval_date=datetime.date.today(),  # noqa: DTZ011
        review_interval_months=12,
    )
    policy = type(dpo).owned_policies.rel.related_model.objects.get(slug="old")
    assert policy.next_review_date == datetime.date(2020, 2, 29)  # clamped to month end
    page = _client(dpo).get("/").content.decode()
    assert "Stale policy" in page and "Fresh policy" not in page
    assert "Stale policy" not in _client(make_user(Role.ANALYST)).get("/").content.decode()
