"""Deterministic demo data: one login per role (and per committee seat), the OULAD
registry with its oversight committee, people and records."""

from __future__ import annotations

import csv
import datetime
import io
import random

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from ...models import Clearance, Dataset, Policy, Purpose, Record, Role, User
from ...services.accounts import user_create
from ...services.apply import apply_text
from ...services.people import people_import
from ...services.records import records_import
from ...services.registry import policy_create

DEMO_PASSWORD = "custos-demo"  # noqa: S105 - printed for the demo; never used outside it
OULAD = settings.BASE_DIR.parent / "shared" / "data" / "oulad"
REGISTRY = settings.BASE_DIR / "docs" / "examples" / "oulad.yaml"
LEARNER_ID = "11391"  # the first student of OULAD's studentInfo.csv

DEMO_USERS = [
    ("steward@example.org", "Sam Steward", [Role.STEWARD], Clearance.PERSONAL),
    ("analyst@example.org", "Ana Lyst", [Role.ANALYST], Clearance.PERSONAL),
    ("chair@example.org", "Chris Chair", [Role.COMMITTEE], Clearance.SPECIAL),
    ("hr@example.org", "Harper Human-Resources", [Role.COMMITTEE], Clearance.PERSONAL),
    ("legal@example.org", "Lou Legal", [Role.COMMITTEE], Clearance.PERSONAL),
    ("rep@example.org", "Robin Representative", [Role.COMMITTEE], Clearance.PERSONAL),
    ("committee@example.org", "Cora Committee", [Role.COMMITTEE], Clearance.SPECIAL),
    ("dpo@example.org", "Dana Protection", [Role.DPO], Clearance.SPECIAL),
    ("auditor@example.org", "Otto Auditor", [Role.AUDITOR], Clearance.INTERNAL),
    ("admin@example.org", "Ada Admin", [Role.ADMINISTRATOR], Clearance.SPECIAL),
    ("learner@example.org", "Lee Learner", [], Clearance.INTERNAL),
]


class Command(BaseCommand):
    help = "Load deterministic demo data (safe to run again) and print the demo logins."

    def handle(self, *args, **options):
        with transaction.atomic():
            users = self._users()
            dpo = users["dpo@example.org"]
            steward = users["steward@example.org"]
            apply_text(REGISTRY.read_text(encoding="utf-8"), actor=steward)
            self._policies(dpo)
            self._people(dpo)
        self._records(steward)
        with transaction.atomic():
            self._requests(users)
        with transaction.atomic():
            self._learner(users)
        self.stdout.write(
            self.style.SUCCESS("Demo data loaded.") + " Logins (password "
            f"{DEMO_PASSWORD!r} for every one):"
        )
        for email, _, roles, clearance in DEMO_USERS:
            role = ", ".join(roles) or "employee / learner (data subject)"
            self.stdout.write(f"  {email:24} {role} · clearance {clearance}")
        if settings.CUSTOS_DEMO_SKIP_MFA:
            self.stdout.write(
                self.style.WARNING("Demo: MFA not enforced")
                + " (CUSTOS_DEMO_SKIP_MFA): these logins sign in with the password alone."
            )
        else:
            self.stdout.write(
                "Two-factor authentication is enforced: stewards, committee members, the "
                "DPO, the auditor and the administrator set up an authenticator app at "
                "their first sign-in."
            )

    def _requests(self, users: dict[str, User]) -> None:
        """Two requests to look at: one approved with a grant, one before the committee."""
        # Imported here: the governance layer does not import analytics at module level.
        from analytics.models import AnalyticsRequest
        from analytics.services import (
            decision_record,
            request_create,
            request_submit,
            signoff_record,
            vote_cast,
        )

        if AnalyticsRequest.objects.exists():
            return
        analyst, steward = users["analyst@example.org"], users["steward@example.org"]
        dataset = Dataset.objects.get(slug="oulad-student-info")
        purpose = dataset.purposes.get(slug="course-improvement")
        start = datetime.date(2026, 11, 1)

        def submitted(title, names, benefit):
            request = request_create(
                actor=analyst,
                fields=list(dataset.fields.filter(name__in=names)),
                title=title,
                purpose=purpose,
                justification="Module teams want to know where students struggle.",
                expected_benefit=benefit,
                output_level="aggregate",
                starts_on=start,
                ends_on=datetime.date(2027, 10, 31),
            )
            request_submit(actor=analyst, request=request)
            signoff_record(
                actor=steward,
                request=request,
                dataset=dataset,
                approve=True,
                note="Aggregate output only; fine.",
            )
            return request

        approved = submitted(
            "Pass rates by module and presentation",
            ["code_module", "code_presentation", "final_result"],
            "Modules with low pass rates get redesigned assessments.",
        )
        for email, vote in [
            ("chair@example.org", "approve"),
            ("hr@example.org", "approve_with_conditions"),
            ("legal@example.org", "approve"),
        ]:
            vote_cast(actor=users[email], request=approved, choice=vote, rationale="Clear benefit.")
        decision_record(
            actor=users["chair@example.org"],
            request=approved,
            outcome="approved",
            rationale="Aggregate pass rates, no individual is singled out.",
            aggregate_only=True,
            min_cohort=10,
        )
        submitted(
            "Outcomes by age band",
            ["code_module", "age_band", "final_result"],
            "Support for mature students where they do worse.",
        )

    def _learner(self, users: dict[str, User]) -> None:
        """Something on every "My data" page for learner@example.org: consent given for
        personal learning support, a read of their record through the demo grant, a
        correction before the steward and an objection before the committee."""
        from analytics import access, disclosure
        from analytics.models import AccessEvent, Grant
        from consent import selectors, services, uses
        from consent.models import Consent, Correction, Objection

        learner = users["learner@example.org"]
        person = selectors.person_of(learner)
        if person is None:
            return
        support = Purpose.objects.get(slug="learning-support")
        if not Consent.objects.filter(person=person, purpose=support).exists():
            services.consent_give(actor=learner, person=person, purpose=support)

        # The approved request's grant reads once, as its analyst would: an aggregate
        # over everyone, so the learner (who has not objected) is among the people read.
        grant = Grant.objects.filter(grantee=users["analyst@example.org"]).first()
        if grant is not None and not AccessEvent.objects.filter(grant=grant).exists():
            try:
                scope = access.grant_scope(user=grant.grantee, grant=grant)
            except access.AccessDenied as refused:  # the demo's dates have passed
                self.stdout.write(f"The demo grant did not read: {refused}")
            else:
                disclosure.aggregate(scope, ["code_module", "final_result"])

        record = (
            Record.objects.filter(dataset__slug="oulad-student-info", person=person)
            .order_by("id")
            .first()
        )
        if record is not None and not Correction.objects.filter(person=person).exists():
            field = record.dataset.fields.get(name="studied_credits")
            held = record.values.get("studied_credits") or 0
            services.correction_propose(
                actor=learner,
                person=person,
                record=record,
                field=field,
                proposed_value=str(held - 60 if held > 60 else held + 60),
                note="I dropped a 60-credit module in February; the registry has the form.",
            )

        if not Objection.objects.filter(person=person).exists():
            use = grant is not None and uses.use_of_request(
                person_id=person.pk, request_id=grant.request_id
            )
            services.objection_file(
                actor=learner,
                person=person,
                kind="objection" if use else "feedback",
                request_id=grant.request_id if use else None,
                message="I did not expect my results to be used for course design; how is "
                "my module kept from being identified?",
            )

    def _users(self) -> dict[str, User]:
        users = {}
        for email, name, roles, clearance in DEMO_USERS:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = user_create(
                    actor=None,
                    email=email,
                    password=DEMO_PASSWORD,
                    full_name=name,
                    clearance=clearance,
                    roles=roles,
                    is_superuser=Role.ADMINISTRATOR in roles,
                )
            users[email] = user
        return users

    def _policies(self, dpo: User) -> None:
        policies = [
            (
                "learning-analytics-ethics",
                "Ethics policy for learning analytics",
                "Learning data is used only for registered purposes that benefit learners. "
                "It never informs performance management, discipline or pay. People can see "
                "what is held about them and every use of it.",
                datetime.date(2025, 6, 1),
                12,
            ),
            (
                "data-retention",
                "Retention of learning records",
                "Records are kept no longer than their dataset's retention period, then deleted.",
                datetime.date(2026, 9, 1),
                24,
            ),
        ]
        for slug, title, body, approved, interval in policies:
            if not Policy.objects.filter(slug=slug).exists():
                policy_create(
                    actor=dpo,
                    slug=slug,
                    title=title,
                    body=body,
                    owner=dpo,
                    approval_date=approved,
                    review_interval_months=interval,
                )

    def _people(self, dpo: User) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["external_id", "name", "email", "org_unit"])
        writer.writerow([LEARNER_ID, "Lee Learner", "learner@example.org", "Faculty of Arts"])
        people_import(actor=dpo, stream=io.BytesIO(buffer.getvalue().encode()))

    def _records(self, steward: User) -> None:
        dataset = Dataset.objects.get(slug="oulad-student-info")
        if dataset.record_count:
            return
        source = OULAD / "studentInfo.csv"
        if source.exists():
            with source.open("rb") as stream:
                records_import(actor=steward, dataset=dataset, stream=stream, file_name=source.name)
            self.stdout.write(f"Loaded {source} (OULAD, CC BY 4.0, Kuzilek et al. 2017).")
        else:
            records_import(
                actor=steward,
                dataset=dataset,
                stream=io.BytesIO(_synthetic_student_info(2000).encode()),
                file_name="synthetic-student-info.csv",
            )
            self.stdout.write(f"{source} not found: loaded 2,000 synthetic rows instead.")


def _synthetic_student_info(rows: int) -> str:
    """Rows shaped like OULAD's studentInfo, from a fixed seed (same every time)."""
    rng = random.Random(2017)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "id_student",
            "code_module",
            "code_presentation",
            "gender",
            "region",
            "highest_education",
            "imd_band",
            "age_band",
            "num_of_prev_attempts",
            "studied_credits",
            "disability",
            "final_result",
        ]
    )
    for n in range(rows):
        writer.writerow(
            [
                LEARNER_ID if n == 0 else str(100000 + n),
                rng.choice(["AAA", "BBB", "CCC", "DDD"]),
                rng.choice(["2013J", "2014B", "2014J"]),
                rng.choice(["F", "M"]),
                rng.choice(["Scotland", "Wales", "London Region", "South Region"]),
                rng.choice(["A Level or Equivalent", "HE Qualification", "Lower Than A Level"]),
                rng.choice(["0-10%", "10-20", "50-60%", ""]),
                rng.choice(["0-35", "35-55", "55<="]),
                rng.choice([0, 0, 0, 1, 2]),
                rng.choice([30, 60, 90, 120]),
                rng.choice(["N"] * 9 + ["Y"]),
                rng.choice(["Pass", "Fail", "Withdrawn", "Distinction"]),
            ]
        )
    return buffer.getvalue()
