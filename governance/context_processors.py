from django.conf import settings
from django.db import connection
from django.utils.html import format_html

from .models import CommitteeMembership, Dataset, Notification, Person, Policy, Purpose, Role
from .permissions import has_role, roles_of, user_can


def _flags_sql() -> str:
    return (
        "SELECT"  # noqa: S608 - table names from the models, values as parameters
        f" EXISTS (SELECT 1 FROM {CommitteeMembership._meta.db_table} WHERE user_id = %s),"
        f" EXISTS (SELECT 1 FROM {Person._meta.db_table} WHERE user_id = %s),"
        f" (SELECT COUNT(*) FROM {Notification._meta.db_table}"
        "   WHERE user_id = %s AND read_at IS NULL)"
    )


def _committee_person_unread(user) -> tuple[bool, bool, int]:
    """Whether the user sits on a committee, whether the login is linked to a person
    (a data subject, who has "my data" pages), and their unread notifications: one query.

    Plain SQL because it runs on every page: building the equivalent ORM query (two
    EXISTS and a COUNT subquery) costs several times more than running it."""
    with connection.cursor() as cursor:
        cursor.execute(_flags_sql(), [user.pk] * 3)
        committee, person, unread = cursor.fetchone()
    return bool(committee), bool(person), unread or 0


def navigation(request):
    """The links a user's roles allow; templates never test roles themselves."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    on_committee, has_person, unread = _committee_person_unread(user)
    items = [("dashboard", "Dashboard")]
    if has_person:
        items.append(("my-data", "My data"))
    items += [
        ("dataset-list", "Catalogue"),
        ("purpose-list", "Purposes"),
        ("policy-list", "Policies"),
    ]
    if user_can(user, "view", Person):
        items.append(("person-list", "People"))
    if has_role(user, Role.ANALYST):
        items.append(("request-list", "My requests"))
    if has_role(user, Role.STEWARD):
        items.append(("steward-queue", "Sign-offs"))
        items.append(("correction-queue", "Corrections"))
    if on_committee:
        items.append(("committee-queue", "Committee"))
        items.append(("objection-queue", "Objections"))
    items.append(("rule-list", "Rules"))
    if has_role(user, Role.AUDITOR, Role.ADMINISTRATOR):
        items.append(("audit-timeline", "Audit"))
    items.append(
        (
            "inbox",
            format_html(
                'Inbox <span class="badge">{}<span class="visually-hidden"> unread</span></span>',
                unread,
            )
            if unread
            else "Inbox",
        )
    )
    return {
        "nav_items": items,
        "nav_roles": sorted(roles_of(user)),
        "nav_admin": user.is_staff,
        "nav_unread": unread,
        "nav_has_person": has_person,
        "nav_can": {
            "add_dataset": user_can(user, "add", Dataset),
            "add_purpose": user_can(user, "add", Purpose),
            "add_policy": user_can(user, "add", Policy),
            "is_dpo": has_role(user, "Data protection officer"),
        },
    }


def demo(request):
    """Demo settings in force, so every page (the sign-in page too) can say so."""
    return {"demo_skip_mfa": settings.CUSTOS_DEMO_SKIP_MFA}
