from django.urls import path

from . import data_views, review_views, views

urlpatterns = [
    path("requests/", views.request_list, name="request-list"),
    path("requests/new/", views.request_create, name="request-create"),
    path("requests/findings/", views.request_findings_preview, name="request-findings-preview"),
    path("requests/<int:pk>/", views.request_detail, name="request-detail"),
    path("requests/<int:pk>/edit/", views.request_edit, name="request-edit"),
    path("requests/<int:pk>/submit/", views.request_submit, name="request-submit"),
    path("requests/<int:pk>/withdraw/", views.request_withdraw, name="request-withdraw"),
    path("requests/<int:pk>/signoff/", review_views.request_signoff, name="request-signoff"),
    path("requests/<int:pk>/vote/", review_views.request_vote, name="request-vote"),
    path("requests/<int:pk>/decide/", review_views.request_decide, name="request-decide"),
    path(
        "requests/<int:pk>/decision/correct/",
        review_views.request_correct,
        name="request-correct",
    ),
    path("reviews/stewards/", review_views.steward_queue, name="steward-queue"),
    path("reviews/committee/", review_views.committee_queue, name="committee-queue"),
    path("grants/<int:pk>/", review_views.grant_detail, name="grant-detail"),
    path("grants/<int:pk>/revoke/", review_views.grant_revoke, name="grant-revoke"),
    path("inbox/", review_views.inbox, name="inbox"),
    path("inbox/<int:pk>/read/", review_views.inbox_read, name="inbox-read"),
    path("rules/", review_views.rule_list, name="rule-list"),
    path("rules/<slug:slug>/edit/", review_views.rule_edit, name="rule-edit"),
    path("grants/<int:pk>/data/", data_views.grant_data, name="grant-data"),
    path("grants/<int:pk>/data/aggregate/", data_views.grant_aggregate, name="grant-aggregate"),
    path("grants/<int:pk>/data/download/", data_views.grant_download, name="grant-download"),
    path("extracts/<int:pk>/", data_views.extract_detail, name="extract-detail"),
    path("extracts/<int:pk>/file/", data_views.extract_file, name="extract-file"),
    path("extracts/<int:pk>/retry/", data_views.extract_retry, name="extract-retry"),
]
