"""The analytics app's answer to the consent app's question "who used my data?".

Registered with ``consent.uses`` when the app starts (imports point one way: consent
never imports analytics). Reads the append-only access log through the person's
subject index; the receivers below react to consent withdrawals.
"""

from __future__ import annotations

from django.db.models import Q
from django.urls import reverse

from consent.uses import ChosenBy, Cursor, Use
from governance.models import Field
from governance.services.notifications import notify

from .models import AccessEvent, Grant, GrantStatus
from .selectors import access_events_for_person


def _name(user) -> str:
    return (user.full_name or user.email) if user is not None else ""


def _cohort_fields(events) -> dict[str, Field]:
    """The fields the events' cohorts name, by "dataset.field", in one query (none when
    no event had a cohort)."""
    keys = {key for e in events for key in (getattr(e, "cohort", None) or {})}
    if not keys:
        return {}
    query = Q()
    for key in keys:
        slug, _, name = key.partition(".")
        query |= Q(dataset__slug=slug, name=name)
    return {
        f"{f.dataset.slug}.{f.name}": f
        for f in Field.objects.filter(query).select_related("dataset")
    }


def _chosen_by(event: AccessEvent, fields: dict[str, Field]) -> list[ChosenBy]:
    chosen = []
    for key, value in (getattr(event, "cohort", None) or {}).items():
        field = fields.get(key)
        slug, _, name = key.partition(".")
        chosen.append(
            ChosenBy(
                field=key,
                label=field.display_label if field else name.replace("_", " ").capitalize(),
                dataset=field.dataset.name if field else slug,
                value=value,
            )
        )
    return chosen


def _use(event: AccessEvent, fields: dict[str, Field]) -> Use:
    grant = event.grant
    request = grant.request
    decision = grant.decision
    read_by, requester = _name(event.user), _name(request.requester)
    return Use(
        event_id=event.pk,
        at=event.at,
        kind=event.kind,
        kind_label=event.get_kind_display(),
        output_level=event.output_level,
        output_label=event.get_output_level_display(),
        dataset=event.dataset.name,
        field_names=list(event.field_names),
        read_by=read_by,
        request_id=request.pk,
        request_title=request.title,
        purpose=request.purpose.name,
        purpose_slug=request.purpose.slug,
        requester=requester,
        committee_id=request.committee_id,
        committee=request.committee.name if request.committee else "",
        decision=decision.get_outcome_display(),
        decided_at=decision.decided_at,
        recipients=sorted({read_by, requester}),
        chosen_by=_chosen_by(event, fields),
    )


class AccessLogUses:
    def for_person(self, *, person_id: int, before: Cursor | None, limit: int | None):
        events = access_events_for_person(
            person_id=person_id, before_id=before.event_id if before else None, limit=limit
        )
        events = list(events)
        fields = _cohort_fields(events)
        return [_use(e, fields) for e in events]

    def request_for_person(self, *, person_id: int, request_id: int):
        event = (
            access_events_for_person(person_id=person_id)
            .filter(grant__request_id=request_id)
            .first()
        )
        if event is None:
            return None
        return _use(event, _cohort_fields([event]))


def notify_grant_holders(sender, *, receipt, **kwargs) -> None:
    """A consent was withdrawn: tell each holder of an active grant for its purpose, once,
    that the person is left out from their next read (without saying who)."""
    grants = Grant.objects.filter(
        request__purpose_id=receipt.purpose_id, status=GrantStatus.ACTIVE
    ).select_related("grantee", "request")
    by_holder: dict[int, list[Grant]] = {}
    for grant in grants:
        if grant.is_usable():
            by_holder.setdefault(grant.grantee_id, []).append(grant)
    for held in by_holder.values():
        listing = "; ".join(f"grant {g.pk} ({g.request.title})" for g in held)
        notify(
            users=[held[0].grantee],
            key=f"consent-withdrawn:{receipt.pk}",
            subject=f"A person withdrew consent for “{receipt.purpose.name}”",
            body=(
                f"From your next read their records are left out of: {listing}. Delete any "
                "copy of their data you already hold, as the purpose's consent terms require."
            ),
            url=reverse("grant-detail", args=[held[0].pk]),
        )
