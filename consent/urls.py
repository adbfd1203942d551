"""The person's own pages, and the stewards' and committees' queues."""

from django.urls import path

from . import views

urlpatterns = [
    path("me/", views.my_data, name="my-data"),
    path("me/data/<slug:slug>/", views.my_dataset, name="my-dataset"),
    path("me/uses/", views.my_uses, name="my-uses"),
    path("me/consents/", views.my_consents, name="my-consents"),
    path("me/consents/<slug:slug>/give/", views.consent_give, name="consent-give"),
    path("me/consents/<slug:slug>/withdraw/", views.consent_withdraw, name="consent-withdraw"),
    path("me/receipts/<uuid:pk>/", views.receipt_download, name="receipt-download"),
    path("me/corrections/", views.my_corrections, name="my-corrections"),
    path(
        "me/corrections/new/<int:record>/<slug:field>/",
        views.correction_create,
        name="correction-create",
    ),
    path("me/objections/", views.my_objections, name="my-objections"),
    path("me/objections/new/", views.objection_create, name="objection-create"),
    path("me/export/", views.my_export, name="my-export"),
    path("me/export/<int:pk>/<str:fmt>/", views.export_download, name="export-download"),
    path("reviews/corrections/", views.correction_queue, name="correction-queue"),
    path("reviews/corrections/<int:pk>/", views.correction_decide, name="correction-decide"),
    path("reviews/objections/", views.objection_queue, name="objection-queue"),
    path("reviews/objections/<int:pk>/", views.objection_answer, name="objection-answer"),
]
