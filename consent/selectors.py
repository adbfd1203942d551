"""Reads of the consent app: the access layer's consent question, the person's own
pages (always found from the login), and the stewards' and committees' queues."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.db import connection
from django.db.models import Case, Q, QuerySet, When
from django.http import Http404

from governance.models import (
    Dataset,
    Field,
    LegalBasis,
    Person,
    Purpose,
    PurposeCategory,
    Record,
    Sensitivity,
    Tag,
    User,
)

from .models import (
    Consent,
    ConsentReceipt,
    ConsentState,
    Correction,
    Objection,
    RequestStatus,
    SubjectExport,
)


def consent_filter(*, purpose: Purpose, person_field: str = "person_id") -> Q:
    """Whose data may be read for ``purpose``, as a filter on ``person_field``.

    Rule (principle 5): whoever withdrew or refused consent for the purpose is left out,
    whatever the purpose's legal basis; when the basis is consent, only those who gave
    it are in. Asked on every access, so a withdrawal counts from the next read.
    """
    if purpose.legal_basis == LegalBasis.CONSENT:
        given = Consent.objects.filter(purpose=purpose, state=ConsentState.GIVEN)
        return Q(**{f"{person_field}__in": given.values("person_id")})
    refused = Consent.objects.filter(
        purpose=purpose, state__in=[ConsentState.WITHDRAWN, ConsentState.REFUSED]
    )
    return ~Q(**{f"{person_field}__in": refused.values("person_id")})


# --- the person's own pages: every read starts from the login, never from an id ------


def person_of(user) -> Person | None:
    """The person the login is linked to, or None: the only way "me" pages find a person."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Person.objects.filter(user=user).first()


@dataclass(frozen=True)
class HeldField:
    name: str
    label: str
    description: str
    type: str
    sensitivity: str
    sensitivity_label: str


@dataclass(frozen=True)
class HeldPurpose:
    slug: str
    name: str
    category: str  # the label
    legal_basis: str  # the label
    expected_benefit: str


@dataclass
class HeldDataset:
    """One dataset holding records about the person, as their own pages show it: plain
    values (no model instances), with the person's first records and how many there are."""

    slug: str
    name: str
    description: str
    source: str
    lawful_basis: str  # the label
    retention_days: int
    count: int
    fields: list[HeldField] = field(default_factory=list)
    purposes: list[HeldPurpose] = field(default_factory=list)
    stewards: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    records: list[tuple[int, dict]] = field(default_factory=list)  # (record id, values)

    @property
    def more(self) -> bool:
        return self.count > len(self.records)

    def values_of(self, values: dict) -> dict:
        """A record's values by field name, in the fields' order."""
        return {f.name: values.get(f.name) for f in self.fields}


_LEGAL_BASIS = dict(LegalBasis.choices)
_CATEGORY = dict(PurposeCategory.choices)
_SENSITIVITY = dict(Sensitivity.choices)


def _placeholders(values: list) -> str:
    return ", ".join(["%s"] * len(values))


def _records_sql(dataset_ids: list[int], per_dataset: int | None) -> str:
    record = Record._meta.db_table
    where = f"dataset_id IN ({_placeholders(dataset_ids)}) AND person_id = %s"
    if per_dataset is None:
        return (
            f'SELECT id, dataset_id, "values", COUNT(*) OVER (PARTITION BY dataset_id) '  # noqa: S608
            f"FROM {record} WHERE {where} ORDER BY dataset_id, id"
        )
    return (
        'SELECT id, dataset_id, "values", total FROM ('  # noqa: S608
        ' SELECT id, dataset_id, "values",'
        "  ROW_NUMBER() OVER (PARTITION BY dataset_id ORDER BY id) AS n,"
        "  COUNT(*) OVER (PARTITION BY dataset_id) AS total"
        f" FROM {record} WHERE {where}"
        ") AS mine WHERE n <= %s ORDER BY dataset_id, id"
    )


def _metadata_sql(dataset_ids: list[int]) -> str:
    """Fields, purposes, stewards and tags of the datasets, as rows of one shape
    (kind, dataset, position, name, a, b, c, d): one round trip for all four."""
    ids = _placeholders(dataset_ids)
    field_table = Field._meta.db_table
    purposes = Dataset.purposes.through._meta.db_table
    stewards = Dataset.stewards.through._meta.db_table
    tags = Dataset.tags.through._meta.db_table
    return (
        "SELECT 'field', dataset_id, position, name, label, description, sensitivity, type"  # noqa: S608
        f" FROM {field_table} WHERE dataset_id IN ({ids})"
        " UNION ALL SELECT 'purpose', t.dataset_id, 0, p.name, p.legal_basis, p.slug,"
        " p.category, p.expected_benefit"
        f" FROM {purposes} t JOIN {Purpose._meta.db_table} p ON p.id = t.purpose_id"
        f" WHERE t.dataset_id IN ({ids})"
        " UNION ALL SELECT 'steward', t.dataset_id, 0, u.full_name, u.email, '', '', ''"
        f" FROM {stewards} t JOIN {User._meta.db_table} u ON u.id = t.user_id"
        f" WHERE t.dataset_id IN ({ids})"
        " UNION ALL SELECT 'tag', t.dataset_id, 0, g.name, '', '', '', ''"
        f" FROM {tags} t JOIN {Tag._meta.db_table} g ON g.id = t.tag_id"
        f" WHERE t.dataset_id IN ({ids})"
    )


def data_held_about(
    *, person: Person, per_dataset: int | None = 20, slug: str | None = None
) -> list[HeldDataset]:
    """Everything held about the person: every dataset holding records about them (or
    only the one named ``slug``), its metadata, its fields and the person's first
    ``per_dataset`` records (all when None), in three queries whatever the sizes. The
    one read behind My data, the API's me/data and the subject access report.

    Plain values rather than model instances and prefetches, the count taken by the
    records query itself (a window), fields, purposes, stewards and tags in one UNION
    query. The two are plain SQL (portable: SQLite and PostgreSQL) because building the
    equivalent ORM queries costs more than running them: My data is the page people
    open most, and its bar is a multiple of a trivial page.
    Records are found through the (dataset, person) index, one range per dataset: the
    record table has no index on person alone."""
    datasets = Dataset.objects.order_by("name")
    if slug is not None:
        datasets = datasets.filter(slug=slug)
    by_pk = {
        row[0]: HeldDataset(
            slug=row[1],
            name=row[2],
            description=row[3],
            source=row[4],
            lawful_basis=_LEGAL_BASIS.get(row[5], row[5]),
            retention_days=row[6],
            count=0,
        )
        for row in datasets.values_list(
            "pk", "slug", "name", "description", "source_system", "lawful_basis", "retention_days"
        )
    }
    if not by_pk:
        return []
    ids = list(by_pk)
    params = [*ids, person.pk] + ([] if per_dataset is None else [per_dataset])
    with connection.cursor() as cursor:
        cursor.execute(_records_sql(ids, per_dataset), params)
        for record_id, dataset_id, values, total in cursor.fetchall():
            held = by_pk[dataset_id]
            held.records.append(
                (record_id, json.loads(values) if isinstance(values, str) else values)
            )
            held.count = total
        held = {pk: h for pk, h in by_pk.items() if h.count}
        if not held:
            return []
        ids = list(held)
        cursor.execute(_metadata_sql(ids), ids * 4)
        rows = sorted(cursor.fetchall(), key=lambda r: (r[0], r[1], r[2], r[3]))
    for kind, dataset_id, _position, name, a, b, c, d in rows:
        dataset = held[dataset_id]
        if kind == "field":
            dataset.fields.append(
                HeldField(
                    name=name,
                    label=a or Field(name=name).display_label,
                    description=b,
                    type=d,
                    sensitivity=c,
                    sensitivity_label=_SENSITIVITY.get(c, c),
                )
            )
        elif kind == "purpose":
            dataset.purposes.append(
                HeldPurpose(
                    slug=b,
                    name=name,
                    category=_CATEGORY.get(c, c),
                    legal_basis=_LEGAL_BASIS.get(a, a),
                    expected_benefit=d,
                )
            )
        elif kind == "steward":
            dataset.stewards.append(name or a)
        else:
            dataset.tags.append(name)
    return list(held.values())


def record_field_of(*, person: Person, record_id: int, field_name: str) -> tuple[Record, Field]:
    """A value held about the person, to correct: 404 unless the record is theirs."""
    record = (
        Record.objects.filter(pk=record_id, person_id=person.pk).select_related("dataset").first()
    )
    field = (
        Field.objects.filter(dataset_id=record.dataset_id, name=field_name).first()
        if record is not None
        else None
    )
    if record is None or field is None:
        raise Http404("No such value is held about you.")
    return record, field


@dataclass
class ConsentRow:
    """A consent-based purpose and where the person stands on it."""

    purpose: Purpose
    consent: Consent | None

    @property
    def state(self) -> str:
        return self.consent.state if self.consent else "not_asked"

    @property
    def state_label(self) -> str:
        return self.consent.get_state_display() if self.consent else "Not asked"

    @property
    def is_given(self) -> bool:
        return self.state == ConsentState.GIVEN

    @property
    def outdated(self) -> bool:
        """Given to an older version of the text than the current one."""
        return self.is_given and self.consent.text_version < self.purpose.consent_version


def consents_for(*, person: Person) -> list[ConsentRow]:
    """Every purpose based on consent, and every other purpose the person has answered
    (a refusal or withdrawal counts whatever the basis), in two queries."""
    consents = {c.purpose_id: c for c in Consent.objects.filter(person=person)}
    purposes = Purpose.objects.filter(
        Q(legal_basis=LegalBasis.CONSENT) | Q(pk__in=list(consents))
    ).order_by("name")
    return [ConsentRow(p, consents.get(p.pk)) for p in purposes]


def consent_row_of(*, person: Person, slug: str) -> ConsentRow:
    purpose = Purpose.objects.filter(slug=slug, legal_basis=LegalBasis.CONSENT).first()
    if purpose is None:
        raise Http404("No such purpose asks for consent.")
    return ConsentRow(purpose, Consent.objects.filter(person=person, purpose=purpose).first())


def receipts_for(*, person: Person) -> QuerySet[ConsentReceipt]:
    return ConsentReceipt.objects.filter(person=person).select_related("purpose")


def receipt_of(*, person: Person, pk) -> ConsentReceipt:
    receipt = receipts_for(person=person).filter(pk=pk).first()
    if receipt is None:
        raise Http404("No such receipt.")
    return receipt


def corrections_for(*, person: Person) -> QuerySet[Correction]:
    return Correction.objects.filter(person=person).select_related("dataset", "field")


def objections_for(*, person: Person) -> QuerySet[Objection]:
    return Objection.objects.filter(person=person).select_related("committee")


def exports_for(*, person: Person) -> QuerySet[SubjectExport]:
    return SubjectExport.objects.filter(person=person)


def export_of(*, person: Person, pk: int) -> SubjectExport:
    export = exports_for(person=person).filter(pk=pk).first()
    if export is None:
        raise Http404("No such export.")
    return export


# --- the stewards' and committees' queues --------------------------------------------


def correction_queue(*, user) -> QuerySet[Correction]:
    """Corrections to datasets the user stewards, open ones first, then recent answers."""
    return (
        Correction.objects.filter(dataset__stewards=user)
        .exclude(person__user=user)
        .select_related("dataset", "field", "person", "decided_by")
        .order_by(Case(When(status=RequestStatus.OPEN, then=0), default=1), "created_at", "id")
    )


def correction_for_steward(*, user, pk: int) -> Correction:
    correction = correction_queue(user=user).filter(pk=pk).first()
    if correction is None:
        raise Http404("No such correction.")
    return correction


def objection_queue(*, user) -> QuerySet[Objection]:
    """Objections and feedback before the committees the user sits on."""
    return (
        Objection.objects.filter(committee__memberships__user=user)
        .exclude(person__user=user)
        .select_related("committee", "person", "answered_by")
        .order_by(Case(When(status=RequestStatus.OPEN, then=0), default=1), "created_at", "id")
    )


def objection_for_member(*, user, pk: int) -> Objection:
    objection = objection_queue(user=user).filter(pk=pk).first()
    if objection is None:
        raise Http404("No such objection.")
    return objection
