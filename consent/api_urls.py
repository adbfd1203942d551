"""The person's own API: /api/v1/me/…"""

from django.urls import path

from . import api

urlpatterns = [
    path("me/data", api.me_data, name="api-me-data"),
    path("me/access-log", api.me_access_log, name="api-me-access-log"),
    path("me/consents", api.me_consents, name="api-me-consents"),
    path("me/export", api.me_export, name="api-me-export"),
]
