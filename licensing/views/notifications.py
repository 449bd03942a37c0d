"""In-app notifications: the list, mark as read, and the bell in the header."""

from __future__ import annotations

from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from accounts.org_views import OrganizationMixin
from core.pagination import ShortPageCountPaginator
from licensing.models import Notification
from licensing.selectors import directory as selectors_directory
from licensing.services import notifications as notification_services

from . import PAGE_SIZE, well_formed_uuids


class NotificationsPage(OrganizationMixin, TemplateView):
    template_name = "licensing/notifications/list.html"

    def get_context_data(self, **kwargs):
        notes = Notification.objects.for_org(self.organization).filter(recipient=self.request.user)
        page = ShortPageCountPaginator(notes, PAGE_SIZE).get_page(self.request.GET.get("page"))
        return {**super().get_context_data(**kwargs), "page_obj": page,
                "announcements": selectors_directory.announcements(self.organization)}


class NotificationsMarkRead(OrganizationMixin, View):
    def post(self, request, org_slug):
        posted = request.POST.getlist("notification")
        ids = well_formed_uuids(posted) if posted else None
        notification_services.notifications_mark_read(organization=self.organization, user=request.user,
                                                      notification_ids=ids)
        if request.htmx:
            return render(request, "licensing/notifications/_bell.html",
                          selectors_directory.bell_context(self.organization, request.user))
        return redirect(reverse("licensing:notifications", kwargs={"org_slug": org_slug}))


class NotificationsBell(OrganizationMixin, TemplateView):
    template_name = "licensing/notifications/_bell.html"

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs),
                **selectors_directory.bell_context(self.organization, self.request.user)}
