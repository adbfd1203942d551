from django.urls import path

from . import api, data_api

urlpatterns = [
    path("requests/", api.request_list, name="api-request-list"),
    path("requests/<int:pk>/", api.request_detail, name="api-request-detail"),
    path("requests/<int:pk>/submit", api.request_submit, name="api-request-submit"),
    path("requests/<int:pk>/withdraw", api.request_withdraw, name="api-request-withdraw"),
    path("requests/<int:pk>/signoffs", api.request_signoffs, name="api-request-signoffs"),
    path("requests/<int:pk>/votes", api.request_votes, name="api-request-votes"),
    path("requests/<int:pk>/decision", api.request_decision, name="api-request-decision"),
    path("grants/<int:pk>/", api.grant_detail, name="api-grant-detail"),
    path("grants/<int:pk>/revoke", api.grant_revoke, name="api-grant-revoke"),
]
urlpatterns += [
    path("grants/<int:pk>/extract.csv", data_api.grant_extract, name="api-grant-extract"),
    path("grants/<int:pk>/aggregate", data_api.grant_aggregate, name="api-grant-aggregate"),
    path(
        "grants/<int:pk>/access-events/",
        data_api.grant_access_events,
        name="api-grant-access-events",
    ),
]
