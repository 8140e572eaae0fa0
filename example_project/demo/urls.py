"""The site's URLs: the accounts pages, the admin, and django-dataflow's monitoring views."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="accounts:user-list"), name="home"),
    path("", include("accounts.urls")),
    path("admin/", admin.site.urls),
    # django-dataflow's monitoring views: pool-stats/ and metrics/ (staff), health/.
    path("dataflow/", include("django_dataflow.urls")),
]
