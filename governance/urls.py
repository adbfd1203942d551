from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from . import api, views
from .audit import urls as audit_urls

# The Django admin signs in through allauth's sign-in (its password, lockout and
# second-factor steps), never through the admin's own password-only form.
admin.site.login = secure_admin_login(admin.site.login)

auth_patterns = [
    path("profile/", views.profile, name="profile"),
    path("profile/sign-out-everywhere/", views.sign_out_everywhere, name="sign-out-everywhere"),
    # A login has exactly the one address an administrator gave it: it links the login
    # to a person and to an SSO identity, so nobody adds or changes one themselves.
    path("email/", views.not_found),
    path("lockouts/", views.lockout_list, name="lockout-list"),
    # Sign-in, sign-out, password change and reset, MFA, sessions, SSO: django-allauth.
    path("", include("allauth.urls")),
]

api_patterns = [
    path("datasets/", api.dataset_list, name="api-dataset-list"),
    path("datasets/<slug:slug>/", api.dataset_detail, name="api-dataset-detail"),
    path("datasets/<slug:slug>/records/", api.dataset_records, name="api-dataset-records"),
    path("purposes/", api.purpose_list, name="api-purpose-list"),
    path("policies/", api.policy_list, name="api-policy-list"),
]

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("accounts/", include(auth_patterns)),
    path("datasets/", views.dataset_list, name="dataset-list"),
    path("datasets/new/", views.dataset_create, name="dataset-create"),
    path("datasets/<slug:slug>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/<slug:slug>/edit/", views.dataset_edit, name="dataset-edit"),
    path("datasets/<slug:slug>/fields/new/", views.field_create, name="field-create"),
    path("datasets/<slug:slug>/fields/<slug:name>/edit/", views.field_edit, name="field-edit"),
    path("datasets/<slug:slug>/upload/", views.dataset_upload, name="dataset-upload"),
    path("loads/<int:pk>/", views.load_detail, name="load-detail"),
    path("loads/<int:pk>/retry/", views.load_retry, name="load-retry"),
    path("purposes/", views.purpose_list, name="purpose-list"),
    path("purposes/new/", views.purpose_create, name="purpose-create"),
    path("purposes/<slug:slug>/", views.purpose_detail, name="purpose-detail"),
    path("purposes/<slug:slug>/edit/", views.purpose_edit, name="purpose-edit"),
    path("policies/", views.policy_list, name="policy-list"),
    path("policies/new/", views.policy_create, name="policy-create"),
    path("policies/<slug:slug>/", views.policy_detail, name="policy-detail"),
    path("policies/<slug:slug>/edit/", views.policy_edit, name="policy-edit"),
    path("people/", views.person_list, name="person-list"),
    path("people/import/", views.person_import, name="person-import"),
    path("people/<int:pk>/", views.person_detail, name="person-detail"),
    path("audit/", include(audit_urls.urlpatterns)),
    path("api/v1/", include(api_patterns)),
    path("api/v1/audit/", include(audit_urls.api_urlpatterns)),
    path("api/v1/", include("analytics.api_urls")),
    path("api/v1/", include("consent.api_urls")),
    path("", include("analytics.urls")),
    path("", include("consent.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves Swagger UI's start-up script from a URL of its own: no inline
    # script for the Content-Security-Policy to refuse.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="api-schema", template_name="governance/swagger_ui.html"
        ),
        name="api-docs",
    ),
    path("admin/", admin.site.urls),
]

handler400 = "governance.views.bad_request"
handler403 = "governance.views.permission_denied"
handler404 = "governance.views.not_found"
