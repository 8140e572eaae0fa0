"""The admin for the site's users: Django's user admin, plus the team and active flag."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import User


@admin.register(User)
class AccountUserAdmin(UserAdmin):
    list_display = ("username", "email", "team", "is_active", "is_staff")
    list_filter = ("is_active", "is_staff", "team")
    fieldsets = (*UserAdmin.fieldsets, ("Team", {"fields": ("team",)}))
