"""The person's own API: /api/v1/me/…"""

urlpatterns = []
