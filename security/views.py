"""The organisation's activity log (its audit events, filterable, exportable as CSV), its sign-in networks and
its Azure fraud cases."""

from __future__ import annotations

from datetime import UTC, timedelta

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views import View

from accounts.models import User
from accounts.org_views import OrganizationMixin
from accounts.reauth import has_recent_mfa, reverify_redirect
from accounts.roles import Perm
from accounts.team import audit_actor
from core.csv_export import csv_response
from core.models import AuditEvent
from core.requestid import get_client_ip
from core.tables import Column, Filter, Table
from core.tenancy import tenant_context
from core.timezones import organization_zone
from licensing.holds import provisioning_hold_reason
from security.forms import SignInNetworksForm
from security.models import FraudCase, SignInPolicy
from security.selectors import (
    ActorLabel,
    audit_actor_labels,
    fraud_case_evidence,
    fraud_signal_label,
    humanize_action,
    organization_action_choices,
    organization_activity,
    organization_fraud_cases,
)
from security.services import sign_in_policy_set
from security.targets import TargetLabel, describe_targets

EXPORT_BATCH_SIZE = 1000
EXPORT_LINK = "security/_activity_export_link.html"  # refreshed with the table, so it exports what is shown
_PERIODS = {
    "1d": ("Last 24 hours", 1),
    "7d": ("Last 7 days", 7),
    "30d": ("Last 30 days", 30),
    "90d": ("Last 90 days", 90),
}


def _search(queryset, query: str):
    """Words in the action or target type, an exact target id or request id, or a member's exact email."""
    condition = Q(action__icontains=query) | Q(target_type__icontains=query)
    condition |= Q(target_id=query) | Q(request_id=query)
    if "@" in query:
        user = User.objects.get_by_email(query)
        if user is not None:
            condition |= Q(actor_id=str(user.pk), actor_type__in=[AuditEvent.ActorType.USER])
    return queryset.filter(condition)


def _since(queryset, value: str):
    return queryset.filter(occurred_at__gte=timezone.now() - timedelta(days=_PERIODS[value][1]))


def activity_table(request, organization) -> Table:
    actors: dict[tuple[str, str], ActorLabel] = {}
    targets: dict[tuple[str, str], TargetLabel] = {}

    def load_actors(events):
        actors.update(audit_actor_labels(events, organization=organization))
        targets.update(describe_targets(((e.target_type, e.target_id) for e in events), organization=organization))

    def target(event) -> TargetLabel:
        return targets.get((event.target_type, event.target_id)) or TargetLabel(
            f"{event.target_type} {event.target_id[:8]}".strip())

    def actor(event):
        label = actors.get((event.actor_type, event.actor_id))
        if label is None:
            return ""
        return f"{label.name} ({label.email})" if label.email else label.name

    return Table(
        request,
        organization_activity(),
        table_id="activity",
        caption="Activity log",
        columns=[
            Column("occurred_at", "When", sortable=True, kind="datetime", order_by="sequence"),
            Column("action", "Action", sortable=True, accessor=lambda e: humanize_action(e.action)),
            Column("actor", "Actor", accessor=actor),
            Column("actor_type", "Actor type", sortable=True, accessor=lambda e: e.get_actor_type_display()),
            Column("target", "Object", accessor=lambda e: target(e).text, link=lambda e: target(e).url or None),
        ],
        filters=[
            Filter("action", "Action", organization_action_choices(organization)),
            Filter("actor_type", "Actor type", AuditEvent.ActorType.choices),
            Filter("period", "Period", [(k, v[0]) for k, v in _PERIODS.items()], method=_since, empty_label="Any time"),
        ],
        search=_search,
        search_label="Search activity",
        default_sort="-occurred_at",
        empty_title="No activity yet",
        empty_message="Every change made in this organisation, by people, API keys or the system, is recorded here.",
        prepare=load_actors,
    )


class ActivityLogView(OrganizationMixin, View):
    permission = Perm.AUDIT_VIEW

    def get(self, request, org_slug):
        with timezone.override(organization_zone(self.organization)):
            return self._get(request, org_slug)

    def _get(self, request, org_slug):
        table = activity_table(request, self.organization)
        export_url = reverse("security:activity_export", kwargs={"org_slug": org_slug})
        query = table.url_with(page=None, sort=None).partition("?")[2]
        context = {"export_url": f"{export_url}?{query}" if query else export_url, "oob_template": EXPORT_LINK}
        if table.is_fragment_request:
            response = table.fragment_response(context)
            response.render()  # now, inside the tenant context and the organisation's time zone
            return response
        response = render(request, "security/activity.html", {"table": table, **context})
        patch_vary_headers(response, ["HX-Request", "HX-Target"])
        return response


class ActivityExportView(OrganizationMixin, View):
    """The filtered log as CSV, newest first, streamed in batches so any size of log exports."""

    permission = Perm.AUDIT_VIEW

    def get(self, request, org_slug):
        organization = self.organization
        queryset = activity_table(request, organization).queryset
        def rows():
            yield [
                "occurred_at_utc",
                "action",
                "actor_type",
                "actor",
                "actor_email",
                "target_type",
                "target_id",
                "target",
                "request_id",
            ]
            cursor = None
            while True:
                # The response streams after the view returns: each batch re-enters the tenant context.
                with tenant_context(organization):
                    batch_qs = queryset if cursor is None else queryset.filter(sequence__lt=cursor)
                    batch = list(batch_qs.order_by("-sequence")[:EXPORT_BATCH_SIZE])
                    labels = audit_actor_labels(batch, organization=organization)
                    touched = describe_targets(((e.target_type, e.target_id) for e in batch),
                                               organization=organization)
                if not batch:
                    return
                for event in batch:
                    label = labels[(event.actor_type, event.actor_id)]
                    yield [
                        event.occurred_at.astimezone(UTC).isoformat(),
                        event.action,
                        event.actor_type,
                        label.name,
                        label.email,
                        event.target_type,
                        event.target_id,
                        touched[(event.target_type, event.target_id)].text if event.target_type else "",
                        event.request_id,
                    ]
                cursor = batch[-1].sequence

        return csv_response(f"activity-{organization.slug}-{timezone.now():%Y%m%d}.csv", rows())


class SignInNetworksView(OrganizationMixin, View):
    """The organisation's sign-in allow-list. Anyone who may see the activity log sees it; owners change it
    (with a recent second factor: a wrong list locks the whole organisation out)."""

    permission = Perm.AUDIT_VIEW
    template_name = "security/sign_in_networks.html"

    def _render(self, request, form, status=200):
        policy = SignInPolicy.objects.for_org(self.organization).first()
        networks = policy.allowed_networks if policy else []
        if form is None:
            form = SignInNetworksForm(initial={"networks": "\n".join(networks)})
        context = {"form": form, "networks": networks, "can_change": self.can(Perm.ORG_SETTINGS),
                   "current_ip": get_client_ip()}
        return render(request, self.template_name, context, status=status)

    def get(self, request, org_slug):
        return self._render(request, None)

    def post(self, request, org_slug):
        if not self.can(Perm.ORG_SETTINGS):
            raise PermissionDenied("Your role does not allow this.")
        if not has_recent_mfa(request):
            return reverify_redirect(request)
        form = SignInNetworksForm(request.POST)
        if form.is_valid():
            try:
                sign_in_policy_set(organization=self.organization, actor=audit_actor(request.user),
                                   networks_text=form.cleaned_data["networks"], current_ip=get_client_ip())
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                messages.success(request, "Sign-in networks saved.")
                return redirect("security:sign_in_networks", org_slug=org_slug)
        return self._render(request, form, status=400)


# -- Azure fraud cases ------------------------------------------------------------------------------------
def fraud_case_response(case: FraudCase) -> str:
    """What the portal did about the case, in the customer's words."""
    if case.action == FraudCase.Action.SUSPEND and case.suspension_requested_at:
        text = "Azure subscription suspended, new purchases held"
    elif case.action == FraudCase.Action.ALERT:
        text = "Alert only"
    else:
        text = "New purchases and seat increases held"
    if case.status != FraudCase.Status.OPEN and case.action != FraudCase.Action.ALERT:
        text += " (hold released)"
    return text


def fraud_cases_table(request, organization) -> Table:
    def detail_url(case):
        return reverse("security:fraud_case", kwargs={"org_slug": organization.slug, "case_id": case.pk})

    def subscription(case):
        if case.subscription is not None:
            return case.subscription.friendly_name or case.subscription.product_title
        return f"Azure subscription {case.azure_subscription_id}" if case.azure_subscription_id else ""

    return Table(
        request,
        organization_fraud_cases(),
        table_id="fraud-cases",
        caption="Azure fraud cases",
        columns=[
            Column("created_at", "Opened", sortable=True, kind="datetime"),
            Column("subscription", "Subscription", accessor=subscription),
            Column("signal", "Signal", accessor=lambda c: fraud_signal_label(c.signal), link=detail_url),
            Column("score", "Score", sortable=True, kind="number"),
            Column("status", "Status", sortable=True, kind="badge",
                   accessor=lambda c: (c.status, c.get_status_display())),
            Column("action", "What we did", accessor=fraud_case_response),
            Column("resolved_at", "Resolved", sortable=True, kind="datetime"),
        ],
        # "state", not "status": the component names a filter's control {table_id}-{name}, and
        # {table_id}-status is its result count's live region.
        filters=[Filter("state", "Status", FraudCase.Status.choices, lookup="status")],
        default_sort="-created_at",
        empty_title="No fraud cases",
        empty_message=("Our security monitoring watches your Azure subscriptions for unusual activity. If it finds "
                       "any, the case appears here and your owners are e-mailed."),
    )


class FraudCasesView(OrganizationMixin, View):
    """The organisation's Azure fraud cases: what was found, what the portal did, and whether it is resolved.

    Anyone who may see the activity log sees them (owners, license and billing admins): the cases explain
    a hold on purchases that any of them may run into."""

    permission = Perm.AUDIT_VIEW

    def get(self, request, org_slug):
        with timezone.override(organization_zone(self.organization)):
            table = fraud_cases_table(request, self.organization)
            if table.is_fragment_request:
                response = table.fragment_response()
                response.render()
                return response
            context = {"table": table, "hold_reason": provisioning_hold_reason(self.organization)}
            response = render(request, "security/fraud_cases.html", context)
        patch_vary_headers(response, ["HX-Request", "HX-Target"])
        return response


class FraudCaseView(OrganizationMixin, View):
    """One case, with the evidence a customer may see (never the staff's resolution note or who resolved it)."""

    permission = Perm.AUDIT_VIEW

    def get(self, request, org_slug, case_id):
        case = get_object_or_404(organization_fraud_cases(), pk=case_id)
        context = {
            "case": case,
            "signal_label": fraud_signal_label(case.signal),
            "response": fraud_case_response(case),
            "evidence": fraud_case_evidence(case),
            "holds": case.status == FraudCase.Status.OPEN and case.blocks_provisioning,
            "suspended": case.action == FraudCase.Action.SUSPEND and case.suspension_requested_at is not None,
        }
        with timezone.override(organization_zone(self.organization)):
            return render(request, "security/fraud_case.html", context)
