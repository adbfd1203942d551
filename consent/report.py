"""The subject access report (GDPR Article 15): everything held about a person and
every use of it, as one JSON document and as a printable page."""

from __future__ import annotations

import dataclasses
import json

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from governance.models import Person

from . import selectors, uses

REPORT_FORMAT = "custos-subject-access-report/1"

RIGHTS = [
    "You may ask for any value held about you to be corrected (Custos: My data → Correct).",
    "You may withdraw any consent at any time; it counts from the next use of your data.",
    "You may object to a use of your data; the oversight committee answers.",
    "You may complain to the data protection officer or to the supervisory authority.",
]
AUTOMATED_DECISIONS = (
    "None. Custos allows no fully automated decision about an individual: every use is "
    "approved by people, and predictive models must pass a bias audit first."
)


def _person_name(user) -> str:
    return user.full_name or user.email


def subject_access_report(*, person: Person) -> dict:
    """Everything on the person's pages, whole (no paging), as plain JSON values."""
    held = selectors.data_held_about(person=person, per_dataset=None)
    return {
        "format": REPORT_FORMAT,
        "generated_at": timezone.now().isoformat(),
        "organisation": {"name": settings.CUSTOS_ORGANISATION, "site": settings.CUSTOS_SITE_URL},
        "subject": {
            "external_id": person.external_id,
            "name": person.name,
            "email": person.email,
            "org_unit": person.org_unit,
        },
        "datasets": [
            {
                "slug": h.slug,
                "name": h.name,
                "description": h.description,
                "source": h.source,
                "lawful_basis": h.lawful_basis,
                "retention_days": h.retention_days,
                "stewards": h.stewards,
                "tags": h.tags,
                "purposes": [dataclasses.asdict(p) for p in h.purposes],
                "fields": [
                    {
                        "name": f.name,
                        "label": f.label,
                        "description": f.description,
                        "type": f.type,
                        "sensitivity": f.sensitivity_label,
                    }
                    for f in h.fields
                ],
                "records": [{"id": pk, "values": h.values_of(values)} for pk, values in h.records],
            }
            for h in held
        ],
        "uses": [
            {
                "at": u.at.isoformat(),
                "kind": u.kind_label,
                "output_level": u.output_label,
                "dataset": u.dataset,
                "fields": u.field_names,
                "read_by": u.read_by,
                "request": {"id": u.request_id, "title": u.request_title},
                "purpose": u.purpose,
                "requester": u.requester,
                "committee": u.committee,
                "decision": u.decision,
                "decided_at": u.decided_at.isoformat() if u.decided_at else None,
                "recipients": u.recipients,
                "chosen_by": [
                    {"field": c.field, "label": c.label, "dataset": c.dataset, "value": c.value}
                    for c in u.chosen_by
                ],
            }
            for u in uses.uses_for_person(person_id=person.pk)
        ],
        "consents": [
            {
                "purpose": row.purpose.name,
                "purpose_slug": row.purpose.slug,
                "state": row.state,
                "text_version": row.consent.text_version if row.consent else None,
                "current_text_version": row.purpose.consent_version,
                "outdated": row.outdated,
                "changed_at": row.consent.changed_at.isoformat() if row.consent else None,
            }
            for row in selectors.consents_for(person=person)
        ],
        "consent_receipts": [r.content for r in selectors.receipts_for(person=person)],
        "corrections": [
            {
                "dataset": c.dataset.name,
                "field": c.field.display_label,
                "value_held": c.current_value,
                "proposed": c.proposed_value,
                "note": c.note,
                "status": c.status,
                "answer": c.reason,
                "proposed_at": c.created_at.isoformat(),
                "decided_at": c.decided_at.isoformat() if c.decided_at else None,
            }
            for c in selectors.corrections_for(person=person)
        ],
        "objections": [
            {
                "kind": o.get_kind_display(),
                "use": o.request_title,
                "committee": o.committee.name,
                "message": o.message,
                "status": o.status,
                "answer": o.answer,
                "filed_at": o.created_at.isoformat(),
                "answered_at": o.answered_at.isoformat() if o.answered_at else None,
            }
            for o in selectors.objections_for(person=person)
        ],
        "automated_decision_making": AUTOMATED_DECISIONS,
        "your_rights": RIGHTS,
    }


def report_json(report: dict) -> bytes:
    return json.dumps(report, indent=2, ensure_ascii=False, default=str).encode()


# Keys of the report whose values are ISO 8601 timestamps, shown as dates on the page.
_WHEN_KEYS = {
    "generated_at",
    "at",
    "decided_at",
    "changed_at",
    "issued_at",
    "proposed_at",
    "filed_at",
    "answered_at",
}


def _for_page(value, key: str = ""):
    """A copy of the report with its timestamps as datetimes (for the ``date`` filter)."""
    if isinstance(value, dict):
        return {k: _for_page(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_for_page(v) for v in value]
    if key in _WHEN_KEYS and isinstance(value, str):
        return parse_datetime(value) or value
    return value


def render_html(report: dict) -> str:
    """A standalone printable page (no scripts, styles inline): opens from disk."""
    page = _for_page(report)
    for dataset in page["datasets"]:
        # Each record's values in the fields' order, for the table's columns.
        dataset["rows"] = [
            {"id": r["id"], "cells": [r["values"].get(f["name"]) for f in dataset["fields"]]}
            for r in dataset["records"]
        ]
    return render_to_string("consent/export_print.html", {"report": page})
