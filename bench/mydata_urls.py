"""ROOT_URLCONF of bench/mydata.py's server only: the project's URLs plus two baselines.

* ``bench/trivial/``: the baseline the bar is set against, a tiny HttpResponse that goes
  through the same WSGI handler and middleware and touches neither the session nor the
  database;
* ``bench/signed-in/``: the least a signed-in page of the portal costs, one line in
  base.html (session, user, the navigation's context processor), for comparison.
"""

import functools

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.template import engines
from django.urls import include, path

ONE_LINE = '{% extends "base.html" %}{% block content %}<p>Signed in.</p>{% endblock %}'


def trivial(request):
    return HttpResponse("ok", content_type="text/plain")


@functools.cache
def _one_line():
    return engines["django"].from_string(ONE_LINE)


@login_required
def signed_in(request):
    return HttpResponse(_one_line().render({}, request))


urlpatterns = [
    path("bench/trivial/", trivial, name="bench-trivial"),
    path("bench/signed-in/", signed_in, name="bench-signed-in"),
    path("", include("governance.urls")),
]
