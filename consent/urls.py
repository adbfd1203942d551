"""The person's own pages, and the stewards' and committees' queues."""

urlpatterns = []
