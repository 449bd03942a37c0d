"""Notifications in the dashboard and by e-mail: renewal reminders, closing cancellation windows, expiring
licenses, provisioning failures and staff service-health announcements.

Each notification has a ``dedupe_key``; a unique constraint on (organisation, recipient, key) makes
every reminder idempotent however often the daily job runs, e.g. one renewal reminder per
subscription, offset and term.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from accounts.models import Membership
from accounts.roles import Role
from core.audit import Actor, audit_record
from core.tenancy import tenant_context
from core.timezones import format_day, format_moment, organization_zone
from licensing import nce
from licensing.models import Notification, ProvisioningOperation, ServiceAnnouncement, Subscription
from licensing.selectors import directory as selectors_directory
from licensing.selectors import licensing_settings
from licensing.selectors import seats as selectors_seats
from licensing.selectors import usage as selectors_usage

from .directory import enqueue

EMAIL_TASK = "licensing.notifications.send_email"
LICENSE_ROLES = (Role.OWNER, Role.LICENSE_ADMIN)
RENEWAL_ROLES = (Role.OWNER, Role.LICENSE_ADMIN, Role.BILLING_ADMIN)
CANCELLATION_WARNING = timedelta(hours=48)
EXPIRY_WARNING_DAYS = 30


def _recipients(organization, roles: Iterable[str]):
    return [
        m.user for m in Membership.objects.filter(organization=organization, role__in=list(roles), user__is_active=True)
        .select_related("user")
    ]


def _url(name: str, organization, **kwargs) -> str:
    try:
        return reverse(name, kwargs={"org_slug": organization.slug, **kwargs})
    except NoReverseMatch:
        return ""


@transaction.atomic
def notification_send(
    *, organization, recipients, kind: str, title: str, body: str = "", link_url: str = "", dedupe_key: str,
    level: str = Notification.Level.INFO, email: bool = True,
) -> list[Notification]:
    """Create one notification per recipient unless that key was already sent to them; e-mail the new ones."""
    recipients = list(recipients)
    if not recipients:
        return []
    already = set(
        Notification.objects.for_org(organization)
        .filter(dedupe_key=dedupe_key, recipient__in=recipients)
        .values_list("recipient_id", flat=True)
    )
    created = []
    for user in recipients:
        if user.pk in already:
            continue
        note = Notification(organization=organization, recipient=user, kind=kind, level=level, title=title[:200],
                            body=body, link_url=link_url[:500], dedupe_key=dedupe_key[:200])
        note.full_clean(validate_constraints=False)
        created.append(note)
    Notification.objects.bulk_create(created, ignore_conflicts=True)
    if email and created and licensing_settings(organization).email_notifications:
        ids = [str(n.pk) for n in created]
        transaction.on_commit(lambda: enqueue(EMAIL_TASK, notification_ids=ids, organization_id=str(organization.pk)))
    return created


def notification_email(*, organization, notification_ids: list[str]) -> int:
    """Send the e-mails of new notifications; ``emailed_at`` makes a redelivered task send nothing twice."""
    sent = 0
    # Joined to the recipient: one query, and a recipient no longer a member (row-level security on users,
    # decision 043, shows the organisation's members only) is e-mailed nothing about it.
    notes = Notification.objects.for_org(organization).filter(pk__in=notification_ids, emailed_at__isnull=True)
    for note in notes.select_related("recipient"):
        with transaction.atomic():
            claimed = Notification.objects.for_org(organization).filter(pk=note.pk, emailed_at__isnull=True).update(
                emailed_at=timezone.now()
            )
            if not claimed:
                continue
            link = f"{settings.SITE_URL.rstrip('/')}{note.link_url}" if note.link_url else ""
            send_mail(
                subject=note.title, message="\n\n".join(p for p in (note.body, link) if p),
                from_email=None, recipient_list=[note.recipient.email],
            )
            sent += 1
    return sent


@transaction.atomic
def notifications_mark_read(*, organization, user, notification_ids: Iterable | None = None) -> int:
    """Mark some (or, with None, all) of the user's notifications read. Not audited: a personal view state."""
    rows = Notification.objects.for_org(organization).filter(recipient=user, read_at__isnull=True)
    if notification_ids is not None:
        rows = rows.filter(pk__in=list(notification_ids))
    return rows.update(read_at=timezone.now())


# --- the daily reminders ---------------------------------------------------------------------------------


def _due_offset(days_left: int, offsets: list[int]) -> int | None:
    """The reminder due today: the smallest offset not below ``days_left``, so a missed day still sends it."""
    candidates = [o for o in offsets if o >= days_left]
    return min(candidates) if candidates and days_left >= 0 else None


def reminders_run(*, organization, now: datetime | None = None) -> int:
    """Renewal reminders, closing cancellation windows and expiring licenses. Idempotent per day and term."""
    now = now or timezone.now()
    offsets = sorted(licensing_settings(organization).reminder_offsets)
    assigned = selectors_usage.assigned_seats_by_subscription(organization)
    sent = 0
    live = Subscription.objects.for_org(organization).filter(
        status__in=selectors_usage.LIVE_SUBSCRIPTION, commitment_end__isnull=False
    )
    renewal_people = _recipients(organization, RENEWAL_ROLES)
    license_people = _recipients(organization, LICENSE_ROLES)
    zone = organization_zone(organization)
    today = timezone.localdate(now, zone)
    for sub in live:
        dates = nce.term_dates(sub.commitment_end)
        term_key = dates.term_ends_on.isoformat()
        # Reminders count down to the last day anyone can act on: the last day to reduce (the term's last day).
        days_left = (dates.last_day_to_reduce - today).days
        offset = _due_offset(days_left, offsets)
        link = _url("licensing:subscription", organization, pk=sub.pk)
        if offset is not None and sub.auto_renew:
            renewing = int((sub.scheduled_next_term or {}).get("quantity") or sub.quantity)
            # The seat invariant, checked again before a lower scheduled quantity takes effect.
            short = selectors_seats.seats_short_at(sub, renewing) if renewing < sub.quantity else 0
            warning = (f" {short} more license(s) are assigned than the {renewing} seats it renews with: "
                       "unassign them before then, or they will show as over-assigned." if short else "")
            sent += len(notification_send(
                organization=organization, recipients=renewal_people, kind=Notification.Kind.RENEWAL_REMINDER,
                title=f"{sub} renews on {format_day(dates.renews_on)}",
                body=(f"{renewing} seat(s) renew on {format_day(dates.renews_on)}. "
                      f"{nce.LAST_DAY_TO_REDUCE_LABEL}: {format_day(dates.last_day_to_reduce)} "
                      f"({days_left} day{'s' if days_left != 1 else ''} from today), the day the term ends: "
                      "schedule fewer seats or another term by then; after renewal, seats can only be "
                      f"removed within 7 days.{warning}"),
                level=Notification.Level.WARNING if short else Notification.Level.INFO,
                link_url=link, dedupe_key=f"renewal:{sub.pk}:{term_key}:{offset}",
            ))
        if not sub.auto_renew and 0 <= days_left <= EXPIRY_WARNING_DAYS:
            users = assigned.get(sub.pk, 0)
            sent += len(notification_send(
                organization=organization, recipients=license_people, kind=Notification.Kind.LICENSES_EXPIRING,
                level=Notification.Level.WARNING,
                title=f"{sub}: term ends {format_day(dates.term_ends_on)}",
                body=(f"Auto-renew is off, so the licenses end with the term on {format_day(dates.term_ends_on)}. "
                      f"{users} user(s) hold these licenses and will lose them. "
                      "Turn auto-renew on or move the users to another license."),
                link_url=link, dedupe_key=f"expiring:{sub.pk}:{term_key}:{offset if offset is not None else 'x'}",
            ))
        window = sub.cancellation_allowed_until
        if window and now < window <= now + CANCELLATION_WARNING:
            sent += len(notification_send(
                organization=organization, recipients=license_people, kind=Notification.Kind.CANCELLATION_WINDOW,
                level=Notification.Level.WARNING,
                title=f"Last chance to cancel or reduce {sub}",
                body=(f"The cancellation window closes on {format_moment(window, zone)} "
                      f"({nce.countdown_words(window - now)}). After that, "
                      "the seats stay committed until the end of the term."),
                link_url=link, dedupe_key=f"window:{sub.pk}:{window.isoformat()}",
            ))
    return sent


def notify_provisioning_failed(operation: ProvisioningOperation) -> list[Notification]:
    """Hook for the provisioning executor: tell the people who can act that an operation failed for good."""
    organization = operation.organization
    recipients = _recipients(organization, LICENSE_ROLES)
    return notification_send(
        organization=organization, recipients=recipients, kind=Notification.Kind.PROVISIONING_FAILED,
        level=Notification.Level.DANGER, title="A change in Microsoft 365 did not go through",
        body=(f"{operation.kind.replace('.', ' ').replace('_', ' ').capitalize()} failed: "
              f"{operation.failure_reason or 'Microsoft did not accept it.'} Open it to retry or contact support."),
        link_url=_url("licensing:operation", organization, pk=operation.pk),
        dedupe_key=f"provisioning:{operation.pk}:{operation.attempts}",
    )


# --- service announcements ---------------------------------------------------------------------------------


@transaction.atomic
def announcement_publish(*, announcement: ServiceAnnouncement, actor: Actor, when: datetime | None = None):
    """Staff publish a service-health notice; it shows in the dashboards it targets until it ends."""
    announcement = ServiceAnnouncement.objects.select_for_update().get(pk=announcement.pk)
    announcement.published_at = announcement.published_at or when or timezone.now()
    # Not its author: validating that foreign key reads the author's user row, which row-level security shows
    # only in a context that names them (decision 043), and staff publish outside any. It was checked when the
    # announcement was written and the database's foreign key keeps it; publishing does not change it.
    announcement.full_clean(exclude=["created_by"])
    announcement.save()
    audit_record(actor=actor, action="announcement.published", target=announcement,
                 metadata={"all": announcement.all_organizations, "severity": announcement.severity})
    return announcement


@transaction.atomic
def announcement_targets_set(*, announcement: ServiceAnnouncement, organizations: Iterable, actor: Actor) -> None:
    """Point ``announcement`` at exactly ``organizations`` (staff, in the admin), audited.

    The targeting rows carry an organisation each, under row-level security: the current targets are read
    as the system role, and the rows are changed in the tenant context of every organisation added or
    removed, on the default connection. Not on the system connection: a new announcement is not committed
    yet, and that connection's foreign key check on it would wait for this transaction, which waits for it.
    """
    before = set(selectors_directory.announcement_target_ids(announcement))
    after = {getattr(org, "pk", org) for org in organizations}
    with tenant_context(*(before | after)):
        announcement.organizations.set(after)
    if before != after:
        audit_record(actor=actor, action="announcement.targeted", target=announcement,
                     metadata={"added": len(after - before), "removed": len(before - after)})


@transaction.atomic
def announcement_delete(*, announcement: ServiceAnnouncement, actor: Actor) -> None:
    """Delete an announcement and its targeting rows (staff, in the admin), audited. The targets go first,
    in their organisations' context: a delete of the announcement alone would leave rows row-level security
    hid from it, and their foreign key would refuse the commit."""
    announcement_targets_set(announcement=announcement, organizations=(), actor=actor)
    audit_record(actor=actor, action="announcement.deleted", target=announcement)
    announcement.delete()


@transaction.atomic
def announcement_withdraw(*, announcement: ServiceAnnouncement, actor: Actor) -> ServiceAnnouncement:
    announcement = ServiceAnnouncement.objects.select_for_update().get(pk=announcement.pk)
    announcement.ends_at = timezone.now()
    announcement.save(update_fields=["ends_at", "updated_at"])
    audit_record(actor=actor, action="announcement.withdrawn", target=announcement)
    return announcement
