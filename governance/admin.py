"""Django admin for every governance model, with history and object permissions."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from guardian.admin import GuardedModelAdminMixin
from simple_history.admin import SimpleHistoryAdmin

from .models import (
    ApiToken,
    Committee,
    CommitteeMembership,
    Dataset,
    Field,
    Notification,
    Person,
    Policy,
    Purpose,
    Record,
    RecordLoad,
    Rule,
    Tag,
    User,
)
from .services.registry import dataset_sync_steward_permissions


class ReadOnlyMixin:
    """For records of what happened, written by services only (decisions, receipts,
    access events …): the admin reads them, with their history, and changes nothing."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class GovernedAdmin(GuardedModelAdminMixin, SimpleHistoryAdmin):
    """History (simple-history) and object permissions (guardian) on one admin page."""


@admin.register(User)
class UserAdmin(GuardedModelAdminMixin, DjangoUserAdmin, SimpleHistoryAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "clearance", "is_staff", "is_active"]
    list_filter = ["clearance", "is_staff", "is_active", "groups"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        ("Person", {"fields": ["full_name", "clearance"]}),
        (
            "Permissions",
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        ("Dates", {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (None, {"classes": ["wide"], "fields": ["email", "clearance", "password1", "password2"]})
    ]


class FieldInline(admin.TabularInline):
    model = Field
    extra = 0
    fields = [
        "position",
        "name",
        "label",
        "type",
        "sensitivity",
        "values",
        "is_identifier",
        "is_protected_attribute",
        "excluded",
    ]


@admin.register(Dataset)
class DatasetAdmin(GovernedAdmin):
    list_display = ["name", "slug", "status", "lawful_basis", "retention_days", "record_count"]
    list_filter = ["status", "tags", "lawful_basis"]
    search_fields = ["name", "slug", "description"]
    filter_horizontal = ["tags", "stewards", "purposes"]
    inlines = [FieldInline]
    readonly_fields = ["record_count"]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # Stewards listed here must hold the guardian permission, and only they.
        dataset_sync_steward_permissions(dataset=form.instance)


@admin.register(Field)
class FieldAdmin(GovernedAdmin):
    list_display = [
        "__str__",
        "type",
        "sensitivity",
        "is_identifier",
        "is_protected_attribute",
        "excluded",
    ]
    list_filter = ["sensitivity", "type", "excluded", "dataset"]
    search_fields = ["name", "label", "dataset__slug"]
    list_select_related = ["dataset"]


@admin.register(Purpose)
class PurposeAdmin(GovernedAdmin):
    list_display = ["name", "slug", "category", "legal_basis", "consent_version"]
    list_filter = ["category", "legal_basis"]
    search_fields = ["name", "slug"]


@admin.register(Policy)
class PolicyAdmin(GovernedAdmin):
    list_display = ["title", "owner", "version", "approval_date", "next_review_date"]
    readonly_fields = ["next_review_date"]
    list_select_related = ["owner"]


@admin.register(Person)
class PersonAdmin(GovernedAdmin):
    list_display = ["external_id", "name", "email", "org_unit", "user"]
    search_fields = ["external_id", "name", "email"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]


@admin.register(Tag)
class TagAdmin(GovernedAdmin):
    search_fields = ["name"]


@admin.register(RecordLoad)
class RecordLoadAdmin(GovernedAdmin):
    list_display = ["file_name", "dataset", "mode", "status", "rows", "created_by", "created_at"]
    list_filter = ["status", "mode"]
    list_select_related = ["dataset", "created_by"]
    readonly_fields = [f.name for f in RecordLoad._meta.fields]

    def has_add_permission(self, request):
        return False  # loads are made by uploading a file, which validates it


@admin.register(ApiToken)
class ApiTokenAdmin(GovernedAdmin):
    list_display = [
        "name",
        "user",
        "prefix",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["scope"]
    # What a token may do and for how long is chosen when it is made; here it can only
    # be revoked.
    readonly_fields = ["prefix", "key_hash", "scope", "created_at", "expires_at", "last_used_at"]
    list_select_related = ["user"]

    def has_add_permission(self, request):
        return False  # tokens are made on the profile page, which shows the secret once


@admin.register(Record)
class RecordAdmin(admin.ModelAdmin):
    """Records are data: read-only here, loaded only through validated imports."""

    list_display = ["id", "dataset", "person", "load"]
    list_select_related = ["dataset", "person", "load"]
    raw_id_fields = ["dataset", "person", "load"]
    show_full_result_count = False
    # Values are seen only through governed access (grants), never here.
    exclude = ["values"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    model = CommitteeMembership
    extra = 0
    raw_id_fields = ["user"]


@admin.register(Committee)
class CommitteeAdmin(GovernedAdmin):
    list_display = ["name", "slug", "quorum", "rule", "is_default"]
    inlines = [MembershipInline]


@admin.register(CommitteeMembership)
class CommitteeMembershipAdmin(GovernedAdmin):
    list_display = ["committee", "user", "seat"]
    list_select_related = ["committee", "user"]


@admin.register(Rule)
class RuleAdmin(GovernedAdmin):
    list_display = ["name", "slug", "kind", "severity", "enabled"]
    list_filter = ["severity", "enabled", "kind"]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["subject", "user", "created_at", "emailed_at", "read_at"]
    list_select_related = ["user"]
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request):
        return False
