"""Input shapes for the person's pages and the stewards' and committees' answers.
The rules live in consent.services."""

from __future__ import annotations

from django import forms

from governance import limits

from .models import ObjectionKind

_TEXTAREA = forms.Textarea(attrs={"rows": 4})


class CorrectionForm(forms.Form):
    """A new value for one field held about the person; a category offers its values."""

    proposed_value = forms.CharField(label="The correct value", max_length=1000)
    note = forms.CharField(
        label="Why the value held is wrong",
        widget=_TEXTAREA,
        max_length=limits.NOTE,
        help_text="Required. The dataset's stewards read it when they decide.",
    )

    def __init__(self, *args, field, **kwargs):
        super().__init__(*args, **kwargs)
        if field.values:
            self.fields["proposed_value"] = forms.ChoiceField(
                label="The correct value",
                choices=[("", "Choose…"), *((v, v) for v in field.values)],
            )
        else:
            self.fields[
                "proposed_value"
            ].help_text = f"A value of type “{field.get_type_display()}”."


class ObjectionForm(forms.Form):
    """An objection to one use of the person's data, or feedback on the data policy.

    ``uses`` are the uses the person may object to (``consent.uses.Use``), newest first;
    the service checks again that the chosen one read their data."""

    kind = forms.ChoiceField(
        label="What you want to send",
        choices=ObjectionKind.choices,
        widget=forms.RadioSelect,
        initial=ObjectionKind.OBJECTION,
    )
    request_id = forms.TypedChoiceField(
        label="The use you object to",
        coerce=int,
        required=False,
        empty_value=None,
        help_text="Needed for an objection; leave it empty for feedback.",
    )
    message = forms.CharField(
        label="Your message",
        widget=_TEXTAREA,
        max_length=limits.NOTE,
        help_text="Required. The committee that approved the use answers it.",
    )

    def __init__(self, *args, uses, **kwargs):
        super().__init__(*args, **kwargs)
        seen, choices = set(), [("", "No particular use (feedback)")]
        for use in uses:
            if use.request_id not in seen:
                seen.add(use.request_id)
                label = f"{use.request_title} — {use.purpose}, read {use.at:%d %b %Y}"
                choices.append((str(use.request_id), label))
        self.fields["request_id"].choices = choices

    def clean(self):
        data = super().clean()
        if data.get("kind") == ObjectionKind.FEEDBACK:
            data["request_id"] = None
        return data


class CorrectionDecisionForm(forms.Form):
    """A steward's decision on a correction: accept (a note is optional) or decline
    (a reason is required; the service says so)."""

    decision = forms.ChoiceField(
        label="Your decision",
        choices=[
            ("accept", "Accept: the record takes the proposed value"),
            ("decline", "Decline: the record keeps its value"),
        ],
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label="Note to the person",
        widget=_TEXTAREA,
        max_length=limits.NOTE,
        required=False,
        help_text="Optional when accepting; required when declining.",
    )


class ObjectionAnswerForm(forms.Form):
    answer = forms.CharField(
        label="The committee's answer",
        widget=_TEXTAREA,
        max_length=limits.NOTE,
        help_text="Required. The person is told and sees it on their page.",
    )
