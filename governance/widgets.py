"""Form widgets that show a value the way their input type reads it back.

``<input type="date">`` takes only ``YYYY-MM-DD``; Django's DateInput renders the
active locale's first input format (``01/09/2026`` in en-gb), which the browser shows
as an empty date and posts back empty, so saving an untouched form erased the date.
Every date, time and date-time input in Custos uses these widgets instead.
"""

from __future__ import annotations

from django import forms


class IsoDateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class IsoDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%dT%H:%M")


class IsoTimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%H:%M")
