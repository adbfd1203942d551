"""Admin for consents, receipts, corrections, objections and subject exports: read-only.

Each of these is written only by the person or by the steward or committee answering
them, through services that enforce who may act and tell the people concerned; an
administrator editing a row here would bypass both (a consent changed without a
receipt, a correction accepted without the record changing). Receipts are proof
issued to the person and never change. The admin reads, with history.
"""

from django.contrib import admin

from governance.admin import GovernedAdmin, ReadOnlyMixin

from .models import Consent, ConsentReceipt, Correction, Objection, SubjectExport


@admin.register(Consent)
class ConsentAdmin(ReadOnlyMixin, GovernedAdmin):
    list_display = ["person", "purpose", "state", "text_version", "changed_at"]
    list_filter = ["state", "purpose"]
    list_select_related = ["person", "purpose"]
    search_fields = ["person__external_id"]
    raw_id_fields = ["person", "changed_by"]


@admin.register(ConsentReceipt)
class ConsentReceiptAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Proof issued to the person: never changed or deleted."""

    list_display = ["id", "person", "purpose", "previous_state", "state", "issued_at"]
    list_filter = ["state", "purpose"]
    list_select_related = ["person", "purpose"]
    search_fields = ["person__external_id", "id"]
    readonly_fields = [f.name for f in ConsentReceipt._meta.fields]


@admin.register(Correction)
class CorrectionAdmin(ReadOnlyMixin, GovernedAdmin):
    """Decided by a steward of the dataset on the correction queue."""

    list_display = ["person", "dataset", "field", "status", "created_at", "decided_by"]
    list_filter = ["status", "dataset"]
    list_select_related = ["person", "dataset", "field", "decided_by"]
    search_fields = ["person__external_id"]
    raw_id_fields = ["person", "record", "field", "decided_by"]


@admin.register(Objection)
class ObjectionAdmin(ReadOnlyMixin, GovernedAdmin):
    """Answered by a member of the committee on the objection queue."""

    list_display = ["person", "kind", "committee", "request_title", "status", "created_at"]
    list_filter = ["kind", "status", "committee"]
    list_select_related = ["person", "committee"]
    search_fields = ["person__external_id", "request_title"]
    raw_id_fields = ["person", "answered_by"]


@admin.register(SubjectExport)
class SubjectExportAdmin(ReadOnlyMixin, GovernedAdmin):
    list_display = ["person", "requested_by", "status", "created_at", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["person", "requested_by"]
    search_fields = ["person__external_id"]
    # The files are the person's report; administrators see that one was made, not it.
    exclude = ["json_file", "html_file"]
