"""The one question the governed access layer asks about consent."""

from __future__ import annotations

from django.db.models import Q

from governance.models import LegalBasis, Purpose

from .models import Consent, ConsentState


def consent_filter(*, purpose: Purpose, person_field: str = "person_id") -> Q:
    """Whose data may be read for ``purpose``, as a filter on ``person_field``.

    Rule (principle 5): whoever withdrew or refused consent for the purpose is left out,
    whatever the purpose's legal basis; when the basis is consent, only those who gave
    it are in. Asked on every access, so a withdrawal counts from the next read.
    """
    if purpose.legal_basis == LegalBasis.CONSENT:
        given = Consent.objects.filter(purpose=purpose, state=ConsentState.GIVEN)
        return Q(**{f"{person_field}__in": given.values("person_id")})
    refused = Consent.objects.filter(
        purpose=purpose, state__in=[ConsentState.WITHDRAWN, ConsentState.REFUSED]
    )
    return ~Q(**{f"{person_field}__in": refused.values("person_id")})
