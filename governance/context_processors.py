from django.db.models import Count, Exists, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils.html import format_html

from .models import CommitteeMembership, Dataset, Notification, Person, Policy, Purpose, Role, User
from .permissions import has_role, roles_of, user_can


def _committee_and_unread(user) -> tuple[bool, int]:
    """Whether the user sits on a committee, and their unread notifications: one query."""
    unread = (
        Notification.objects.filter(user=OuterRef("pk"), read_at__isnull=True)
        .order_by()
        .values("user")
        .annotate(n=Count("pk"))
        .values("n")
    )
    row = (
        User.objects.filter(pk=user.pk)
        .values_list(
            Exists(CommitteeMembership.objects.filter(user=OuterRef("pk"))),
            Coalesce(Subquery(unread, output_field=IntegerField()), 0),
        )
        .first()
    )
    return row if row is not None else (False, 0)


def navigation(request):
    """The links a user's roles allow; templates never test roles themselves."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    on_committee, unread = _committee_and_unread(user)
    items = [
        ("dashboard", "Dashboard"),
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
    if on_committee:
        items.append(("committee-queue", "Committee"))
    items.append(("rule-list", "Rules"))
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
        "nav_can": {
            "add_dataset": user_can(user, "add", Dataset),
            "add_purpose": user_can(user, "add", Purpose),
            "add_policy": user_can(user, "add", Policy),
            "is_dpo": has_role(user, "Data protection officer"),
        },
    }
