from django.contrib import admin

from governance.admin import GovernedAdmin

from .models import Consent


@admin.register(Consent)
class ConsentAdmin(GovernedAdmin):
    list_display = ["person", "purpose", "state", "text_version", "changed_at"]
    list_filter = ["state", "purpose"]
    list_select_related = ["person", "purpose"]
    raw_id_fields = ["person", "changed_by"]
