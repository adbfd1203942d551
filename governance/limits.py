"""How long a text may be, in one place: models, forms and API inputs use these.

The numbers are generous for what people write (a justification is a few paragraphs,
a policy a few pages) and small enough that nobody can fill the database or every
page that shows the text with one request.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, ProhibitNullCharactersValidator
from django.db import models

# A note, a rationale, a reason, an answer: a paragraph or two.
NOTE = 5_000
# A justification, a description, an expected benefit: a page.
TEXT = 20_000
# A policy or a consent text: a document.
DOCUMENT = 100_000
# One allowed value of a category field, and how many a field may list.
CATEGORY_VALUE = 200
CATEGORY_VALUES = 500
# A cohort: how many filters, and the longest value one may compare with.
COHORT_FILTERS = 50
COHORT_VALUE = CATEGORY_VALUE


class BoundedTextField(models.TextField):
    """A TextField whose ``max_length`` holds everywhere, not only in the form widget.

    Django's TextField passes ``max_length`` to its form field and nothing else; here it
    is also a model validator (``full_clean``, which every service calls before saving),
    and NUL characters are refused as the form field does.
    """

    def __init__(self, *args, max_length: int, **kwargs):
        super().__init__(*args, max_length=max_length, **kwargs)
        self.validators.append(MaxLengthValidator(max_length))
        self.validators.append(ProhibitNullCharactersValidator())


def validate_category_values(values) -> None:
    """A category's allowed values: at most CATEGORY_VALUES texts of CATEGORY_VALUE."""
    if not isinstance(values, list):
        raise ValidationError("The allowed values are a list of texts.")
    if len(values) > CATEGORY_VALUES:
        raise ValidationError(f"A field may list at most {CATEGORY_VALUES} allowed values.")
    for value in values:
        if not isinstance(value, str):
            raise ValidationError("Each allowed value is a text.")
        if len(value) > CATEGORY_VALUE:
            raise ValidationError(
                f"An allowed value is longer than {CATEGORY_VALUE} characters: {value[:40]!r}…"
            )
        if "\x00" in value:
            raise ValidationError("An allowed value holds a NUL character.")
