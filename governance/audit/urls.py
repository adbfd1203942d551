"""The audit workspace: pages (included at ``audit/``) and API (at ``api/v1/audit/``)."""

from django.urls import path

from . import api, views

urlpatterns = [
    path("", views.audit_timeline, name="audit-timeline"),
    path("export.csv", views.audit_export, name="audit-export"),
    path("objects/<str:kind>/<int:pk>/", views.audit_object, name="audit-object"),
    path("objects/<str:kind>/<int:pk>/as-of/", views.audit_as_of, name="audit-as-of"),
    path("grants/as-of/", views.audit_grants_as_of, name="audit-grants-as-of"),
]

api_urlpatterns = [
    path("events", api.events, name="api-audit-events"),
    path("objects/<str:kind>/<int:pk>/history", api.object_history, name="api-audit-history"),
    path("objects/<str:kind>/<int:pk>/as-of", api.object_as_of, name="api-audit-as-of"),
    path("verify", api.verify, name="api-audit-verify"),
]
