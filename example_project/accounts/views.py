"""The site's pages: the active-user list, a team report, and this process's pool statistics."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.generic import ListView

from accounts.models import User
from accounts.pool_hooks import checkout_times
from django_dataflow.routing.context import use_analytics
from django_dataflow.stats import get_pool_stats


class ActiveUserList(ListView):
    """The guide's ``UserListNode(filter={"active": True}, limit=100)``: a page of 100."""

    model = User
    paginate_by = 100
    template_name = "accounts/user_list.html"

    def get_queryset(self) -> Any:
        return User.objects.filter(is_active=True).only("username", "email", "team")


def team_report(request: HttpRequest) -> HttpResponse:
    """Users per team: an aggregate, the kind of query the analytics pool is for."""
    with use_analytics():  # the analytics database when there is one, else as usual
        rows = list(
            User.objects.values("team")
            .annotate(users=Count("id"), active=Count("id", filter=Q(is_active=True)))
            .order_by("team")
        )
    return render(request, "accounts/team_report.html", {"rows": rows})


def pool_page(request: HttpRequest) -> HttpResponse:
    """The pool statistics of this process, and the checkout times the hooks measured."""
    pools = [(alias, get_pool_stats(alias)) for alias in settings.DATABASES]
    return render(
        request, "accounts/pool.html", {"pools": pools, "checkout_times": checkout_times()}
    )
