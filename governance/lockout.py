"""Lockout after failed sign-ins, on django-axes.

Axes counts failures in the database (``axes.AccessAttempt``, one row per login,
address and browser) for every call to ``django.contrib.auth.authenticate`` — allauth's
sign-in page and the Django admin's alike — and its backend, first in
``AUTHENTICATION_BACKENDS``, refuses a locked attempt before any backend hashes a
password. Custos adds three things here:

- **Two limits.** Axes compares one count with one limit. Custos locks a login after
  ``CUSTOS_LOCKOUT_ACCOUNT_FAILURES`` (5) failures from anywhere, and a network address
  after ``CUSTOS_LOCKOUT_ADDRESS_FAILURES`` (20) failures across any logins, each within
  ``AXES_COOLOFF_TIME`` (15 minutes). :class:`LockoutHandler` reports the larger of the
  two counts on the per-account scale (an address's count times 5/20, rounded down), so
  axes's single comparison with ``AXES_FAILURE_LIMIT`` (5) is exactly "5 for the login
  or 20 for the address".
- **The audit trail.** The failure that locks writes one ``AccountEvent`` (refused
  attempts during a lockout are not counted, so they neither extend it nor repeat it).
- **The page** a locked attempt gets, in plain words (HTTP 429).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Max, Sum
from django.shortcuts import render
from django.utils import timezone

from .models import AccountEventKind, User
from .services.accounts import account_event_record


def account_limit() -> int:
    return settings.CUSTOS_LOCKOUT_ACCOUNT_FAILURES


def address_limit() -> int:
    return settings.CUSTOS_LOCKOUT_ADDRESS_FAILURES


def cool_off() -> datetime.timedelta:
    return get_cool_off()


def login_of(request, credentials: dict | None) -> str | None:
    """The login an attempt was for, as typed: allauth's form passes ``email``, the
    Django admin ``username``. Lower-cased, as Custos stores addresses."""
    credentials = credentials or {}
    value = credentials.get("email") or credentials.get("username")
    if not value and request is not None and hasattr(request, "POST"):
        value = request.POST.get("login") or request.POST.get("username")
    value = (value or "").strip().lower()
    return value or None


def _failures(attempts) -> int:
    return attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0


class LockoutHandler(AxesDatabaseHandler):
    """Axes's database handler with Custos's two limits and an audit record."""

    def _counts(self, request, credentials) -> tuple[int, int]:
        recent = AccessAttempt.objects.filter(attempt_time__gte=get_cool_off_threshold(request))
        login = get_client_username(request, credentials)
        account = _failures(recent.filter(username=login)) if login else 0
        address = _failures(recent.filter(ip_address=request.axes_ip_address))
        return account, address

    def get_failures(self, request, credentials=None) -> int:
        account, address = self._counts(request, credentials)
        return max(account, address * account_limit() // address_limit())

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        already_locked = bool(getattr(request, "axes_locked_out", False))
        super().user_login_failed(sender, credentials, request=request, **kwargs)
        if request is None or already_locked or not getattr(request, "axes_locked_out", False):
            return
        account, address = self._counts(request, credentials)
        minutes = int(cool_off().total_seconds() // 60)
        reasons = []
        if account >= account_limit():
            reasons.append(f"{account} failed sign-ins for this account")
        if address >= address_limit():
            reasons.append(f"{address} failed sign-ins from this network address")
        login = get_client_username(request, credentials) or ""
        account_event_record(
            actor=None,
            event=AccountEventKind.LOCKED_OUT,
            user=User.objects.filter(email__iexact=login).first() if login else None,
            email=login,
            ip_address=request.axes_ip_address,
            detail=" and ".join(reasons) + f" within {minutes} minutes",
        )


def lockout_response(request, original_response=None, credentials=None):
    """What a locked attempt gets instead of the sign-in page."""
    minutes = int(cool_off().total_seconds() // 60)
    context = {
        "minutes": minutes,
        "account_limit": account_limit(),
        "address_limit": address_limit(),
    }
    return render(request, "account/locked_out.html", context, status=429)


# --- what an administrator sees and lifts ---------------------------------------------


@dataclass(frozen=True)
class Lock:
    """A login or a network address that is locked now."""

    kind: str  # "account" or "address"
    value: str
    failures: int
    until: datetime.datetime


def locks_current() -> list[Lock]:
    """Every login and address locked now, accounts first, each with its failures in
    the window and when the lock lifts by itself. Two aggregate queries."""
    window = cool_off()
    recent = AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - window)
    locks = []
    for kind, column, limit in (
        ("account", "username", account_limit()),
        ("address", "ip_address", address_limit()),
    ):
        rows = (
            recent.exclude(**{f"{column}__isnull": True})
            .values(column)
            .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
            .filter(failures__gte=limit)
            .order_by(column)
        )
        locks += [Lock(kind, row[column], row["failures"], row["last"] + window) for row in rows]
    return locks
