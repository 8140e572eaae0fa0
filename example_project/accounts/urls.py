"""URLs of the accounts app."""

from __future__ import annotations

from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("users/", views.ActiveUserList.as_view(), name="user-list"),
    path("users/teams/", views.team_report, name="team-report"),
    path("pool/", views.pool_page, name="pool"),
]
