"""Admin for requests, reviews, decisions and grants, with history and object permissions.

Decisions are read-only here: a decision is never edited, a correction supersedes it
(through the chair's decision page), so the admin cannot rewrite one either.
"""

from django.contrib import admin

from governance.admin import GovernedAdmin, ReadOnlyMixin

from .models import (
    AccessEvent,
    AnalyticsRequest,
    Decision,
    ExtractFile,
    Finding,
    Grant,
    Obligation,
    RequestVersion,
    StewardSignoff,
    Vote,
)


@admin.register(AnalyticsRequest)
class AnalyticsRequestAdmin(GovernedAdmin):
    list_display = ["title", "requester", "purpose", "status", "round", "output_level"]
    list_filter = ["status", "output_level"]
    list_select_related = ["requester", "purpose"]
    search_fields = ["title"]
    raw_id_fields = ["requester", "human_reviewer"]
    filter_horizontal = ["fields"]


class ReadOnlyAdmin(ReadOnlyMixin, GovernedAdmin):
    """Review records, with their history and object permissions, read-only."""


@admin.register(RequestVersion)
class RequestVersionAdmin(ReadOnlyAdmin):
    list_display = ["request", "number", "created_by", "created_at"]
    list_select_related = ["request", "created_by"]


@admin.register(Finding)
class FindingAdmin(ReadOnlyAdmin):
    list_display = ["request", "round", "rule", "severity"]
    list_select_related = ["request", "rule"]


@admin.register(StewardSignoff)
class StewardSignoffAdmin(ReadOnlyAdmin):
    list_display = ["request", "round", "dataset", "steward", "approve"]
    list_select_related = ["request", "dataset", "steward"]


@admin.register(Vote)
class VoteAdmin(ReadOnlyAdmin):
    list_display = ["request", "round", "member", "choice"]
    list_select_related = ["request", "member"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["request", "round", "outcome", "decided_by", "decided_at", "supersedes"]
    list_select_related = ["request", "decided_by"]


@admin.register(Obligation)
class ObligationAdmin(GovernedAdmin):
    list_display = ["text", "owner", "due_on", "done_at", "overdue_since"]
    list_select_related = ["owner"]


@admin.register(Grant)
class GrantAdmin(ReadOnlyAdmin):
    list_display = [
        "request",
        "grantee",
        "output_level",
        "k",
        "valid_from",
        "valid_until",
        "status",
    ]
    list_select_related = ["request", "grantee"]


@admin.register(AccessEvent)
class AccessEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Append-only: read here, never changed or deleted (PostgreSQL refuses both)."""

    list_display = ["at", "kind", "user", "grant", "dataset", "people", "rows"]
    list_filter = ["kind"]
    list_select_related = ["user", "grant", "dataset"]
    readonly_fields = [f.name for f in AccessEvent._meta.fields]


@admin.register(ExtractFile)
class ExtractFileAdmin(admin.ModelAdmin):
    list_display = ["grant", "owner", "dataset", "rows", "status", "created_at", "expires_at"]
    list_select_related = ["grant", "owner", "dataset"]
    # The file itself is the owner's; administrators see that it exists, not its rows.
    exclude = ["file"]
    readonly_fields = ["grant", "owner", "dataset", "rows", "status", "created_at", "expires_at"]

    def has_add_permission(self, request):
        return False
