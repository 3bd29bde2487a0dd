"""People, teams and the role a person holds in each team."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pghistory
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from core.constraints import FieldConstraints


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"“{value}” is not an IANA time zone (e.g. Europe/Berlin).") from None


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra: object) -> User:
        if not email:
            raise ValueError("An e-mail address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        # Login looks users up by this. E-mails are stored lower-case and unique regardless of
        # case (accounts_user_email_ci_unique), so "Ada@Example.com" must find "ada@example.com".
        return self.get(email__iexact=username)

    def create_superuser(self, email: str, password: str | None = None, **extra: object) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Logs in with their e-mail address (stored lower-case, unique)."""

    email = models.EmailField("e-mail address", unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    email_notifications = models.BooleanField(
        "e-mail me notifications",
        default=True,
        help_text="In-app notifications always appear under the bell; this adds an e-mail.",
    )
    # The person's own clock. Times are shown in the zone of what they belong to (a plan's,
    # a team's); where this differs, the page adds the time on this clock on hover. Empty: not set.
    time_zone = models.CharField(
        "your time zone", max_length=64, blank=True, default="", validators=[validate_time_zone]
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.display_name

    def clean(self) -> None:
        # Forms (the admin's included) validate through here: store the address lower-case as
        # create_user does, so a duplicate in another case gets the unique-field message.
        super().clean()
        self.email = UserManager.normalize_email(self.email).lower()

    @property
    def display_name(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.display_name

    def get_short_name(self) -> str:
        return self.display_name


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Team(models.Model):
    """A product team. Plans belong to a team; its members see them according to their role."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    created_at = models.DateTimeField(default=timezone.now)
    members = models.ManyToManyField(User, through="Membership", related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Membership(FieldConstraints):
    """A person's place in a team: one role per team, different roles in different teams."""

    class Role(models.TextChoices):
        PRODUCT_OWNER = "product_owner", "Product Owner"
        SCRUM_MASTER = "scrum_master", "Scrum Master"
        DEVELOPER = "developer", "Developer"
        DEVOPS = "devops", "DevOps lead"
        STAKEHOLDER = "stakeholder", "Stakeholder"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    joined_at = models.DateTimeField(default=timezone.now)

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "accounts_membership_role_valid": ("role", "Choose one of the roles."),
    }

    class Meta:
        ordering = ["team__name", "user__email"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "team"], name="accounts_membership_one_per_team"
            ),
            models.CheckConstraint(
                # Spelled out: the nested Role is not in scope inside Meta.
                condition=models.Q(
                    role__in=["product_owner", "scrum_master", "developer", "devops", "stakeholder"]
                ),
                name="accounts_membership_role_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} in {self.team}"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class TeamHoliday(models.Model):
    """A day the team does not work: pilots' business days skip it."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "date"], name="accounts_teamholiday_one_per_day"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team}: {self.date} {self.name}".strip()


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class TeamInvitation(FieldConstraints):
    """An invitation to join ``team`` with ``role``, e-mailed to ``email`` as a link.

    The link carries a random token; only its SHA-256 is stored, so the table alone cannot
    accept anything. The person accepts it signed in with that address (or by signing up with
    it, which the link proves they read), before ``expires_at``; then it records who accepted
    and when. A revoked, expired or used invitation's link only explains which it is.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)  # stored lower-case
    role = models.CharField(max_length=20, choices=Membership.Role.choices)
    token_sha256 = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "accounts_teaminvitation_role_valid": ("role", "Choose one of the roles."),
        "accounts_teaminvitation_one_open": (
            "email",
            "This address already has an open invitation to this team.",
        ),
        "accounts_teaminvitation_used_or_revoked": (
            "revoked_at",
            "An invitation is either accepted or withdrawn, not both.",
        ),
    }

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    role__in=["product_owner", "scrum_master", "developer", "devops", "stakeholder"]
                ),
                name="accounts_teaminvitation_role_valid",
            ),
            # One open invitation per address and team (the team page lists the open ones).
            models.UniqueConstraint(
                fields=["team", "email"],
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="accounts_teaminvitation_one_open",
            ),
            models.CheckConstraint(
                condition=models.Q(accepted_at__isnull=True) | models.Q(revoked_at__isnull=True),
                name="accounts_teaminvitation_used_or_revoked",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} invited to {self.team}"

    def state(self, now: dt.datetime) -> str:
        """open, accepted, revoked or expired."""
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            return "revoked"
        return "expired" if self.expires_at <= now else "open"


class Notification(FieldConstraints):
    """Something a person should know about, shown under the bell (and e-mailed if they want).

    ``email_state`` records what is owed by e-mail: ``pending`` from the moment ``notify``
    creates it for someone who wants e-mail, until the worker sends it (``sent``, at
    ``emailed_at``) or gives up (``failed``: too many attempts, or a day old). The queued message
    that sends it may be lost with the broker; the tick's sweep finds what is still pending
    (``services.notification_emails_sweep``).
    """

    class EmailState(models.TextChoices):
        NONE = "none", "Not e-mailed"
        PENDING = "pending", "E-mail pending"
        SENT = "sent", "E-mailed"
        FAILED = "failed", "E-mail given up"

    class Kind(models.TextChoices):
        REVIEW_REQUESTED = "review_requested", "Review requested"
        SIGN_OFF_VOIDED = "sign_off_voided", "Sign-off voided"
        PLAN_APPROVED = "plan_approved", "Plan approved"
        PILOT_STARTED = "pilot_started", "Pilot started"
        TRIGGER_FIRED = "trigger_fired", "Rollback trigger fired"
        DAILY_DIGEST = "daily_digest", "Daily digest"
        DECISION_MADE = "decision_made", "Decision made"
        SIGNAL_MISSING = "signal_missing", "Trigger without fresh data"
        TIMEBOX_ENDED = "timebox_ended", "Time-box ended"
        ROLLBACK_STARTED = "rollback_started", "Rollback started"
        REVIEW_DUE = "review_due", "Post-pilot review due"
        WEBHOOK_MOVED = "webhook_moved", "Webhook moved to subscriptions"
        WEBHOOK_DISABLED = "webhook_disabled", "Webhook subscription switched off"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.CharField(max_length=300)
    url = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    email_state = models.CharField(
        max_length=10, choices=EmailState.choices, default=EmailState.NONE
    )
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_attempts = models.PositiveSmallIntegerField(default=0)

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "accounts_notification_sent_has_time": (
            "emailed_at",
            "A sent e-mail records when it was sent, and only a sent one.",
        ),
    }

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # Serves the bell's unread count and the notification list, newest first.
            models.Index(fields=["user", "read_at", "-created_at"], name="accounts_notif_user_idx"),
            # Serves the e-mail sweep: the few notifications still owed an e-mail, oldest first.
            models.Index(
                fields=["created_at"],
                condition=models.Q(email_state="pending"),
                name="accounts_notif_email_due_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(email_state="sent", emailed_at__isnull=False)
                | (~models.Q(email_state="sent") & models.Q(emailed_at__isnull=True)),
                name="accounts_notification_sent_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.message}"


class ApiKey(FieldConstraints):
    """A machine's key to the API, scoped to one team and to what it may do (docs/api.md).

    Only the SHA-256 of the secret is stored; the key is shown once, when created. A key reads
    ``pp_<prefix>_<secret>``: the prefix finds the row, the hash proves the secret.

    A key acts as its ``principal``: a user row of its own that belongs to no team (it cannot
    log in: no usable password), which records the key's writes (``created_by`` and history)
    like any person's. What the principal may do is the permission table's answer for the
    key's scopes (``accounts.permissions``), in the key's team only, and in ``plan_ids`` only
    when that is not empty. Rotating a key issues a new key with the same principal, so both
    act as the same machine while the old one lives out its grace period (``expires_at``).
    """

    class Scope(models.TextChoices):
        READ = "read", "Read plans, metrics and the backlog"
        WRITE = "write", "Edit plans and the backlog"
        INGEST = "ingest", "Push metric samples"
        GATE = "gate", "Ask the deployment gate"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, help_text="What uses it, e.g. “Grafana exporter”.")
    prefix = models.CharField(max_length=12, unique=True)
    key_sha256 = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=10, choices=Scope.choices))
    # Ids of the team's plans the key is restricted to; empty: every plan of the team. Ids, not
    # a relation: plans live in a higher layer (pilots), which checks them (api_keys).
    plan_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    principal = models.ForeignKey(User, on_delete=models.PROTECT, related_name="machine_keys")
    rotated_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_address = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    # Each database rule's field and words (core.constraints).
    CONSTRAINT_FIELDS = {
        "accounts_apikey_has_scope": ("scopes", "Choose at least one thing the key may do."),
    }

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(scopes=[]), name="accounts_apikey_has_scope"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (pp_{self.prefix}_…)"

    def is_active(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class PersonalToken(FieldConstraints):
    """A person's token for their own scripts: acts as that person, with that person's roles,
    limited to its scopes (read: only what reads; write: everything their roles allow).

    Shown once when created, stored as SHA-256 of ``ppu_<prefix>_<secret>`` like team keys.
    """

    class Scope(models.TextChoices):
        READ = "read", "Read what I can see"
        WRITE = "write", "Do what I can do"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="personal_tokens")
    name = models.CharField(max_length=100, help_text="What uses it, e.g. “release script”.")
    prefix = models.CharField(max_length=12, unique=True)
    token_sha256 = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=10, choices=Scope.choices))
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_address = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    CONSTRAINT_FIELDS = {
        "accounts_personaltoken_has_scope": ("scopes", "Choose at least one scope."),
    }

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(scopes=[]), name="accounts_personaltoken_has_scope"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (ppu_{self.prefix}_…)"

    def is_active(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class EventType(models.TextChoices):
    """The events a team can subscribe to (docs/webhooks.md documents each payload). The value is
    the payload's ``type``; the label is what the subscription form and chat messages say."""

    PLAN_STATE_CHANGED = "plan.state_changed", "Plan state changed"
    REVIEW_REQUESTED = "plan.review_requested", "Review requested"
    SIGN_OFF_VOIDED = "plan.sign_off_voided", "Sign-off voided"
    CHECK_RUN_FINISHED = "check_run.finished", "Check run finished"
    TRIGGER_FIRED = "trigger.fired", "Rollback trigger fired"
    TRIGGER_ACKNOWLEDGED = "trigger.acknowledged", "Rollback trigger acknowledged"
    TRIGGER_RESOLVED = "trigger.resolved", "Rollback trigger resolved"
    TRIGGER_STALE = "trigger.stale", "Rollback trigger without fresh data"
    DECISION_RECORDED = "decision.recorded", "Decision recorded"
    ROLLBACK_STARTED = "rollback.started", "Rollback started"
    ROLLBACK_FINISHED = "rollback.finished", "Rollback finished"
    BACKLOG_ITEM_CREATED = "backlog_item.created", "Backlog item created"
    FEEDBACK_RECEIVED = "feedback.received", "Feedback received"
    PING = "ping", "Test event"


# The versions of the webhook payload a subscription can ask for, oldest first; the last is the
# current one (accounts.events renders each; docs/webhooks.md, "Payload versions").
WEBHOOK_PAYLOAD_VERSIONS = (1,)


class WebhookSubscription(FieldConstraints):
    """Where a team wants to hear about chosen events: a receiver of signed JSON (Standard
    Webhooks), or a Slack / Microsoft Teams incoming webhook that gets a readable message.

    It lives here, in the lowest app with teams, so that every app that emits an event
    (pilots, metrics, backlog, decisions) may write its deliveries (accounts.events); the
    worker in metrics sends them (docs/architecture.md, "Events and webhooks").
    """

    class Kind(models.TextChoices):
        STANDARD = "standard", "Signed JSON (Standard Webhooks)"
        SLACK = "slack", "Slack incoming webhook"
        TEAMS = "teams", "Microsoft Teams incoming webhook"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="webhook_subscriptions")
    name = models.CharField(max_length=100, help_text="What receives it, e.g. “Ops channel”.")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.STANDARD)
    url = models.URLField(max_length=500)
    # "whsec_" + base64 of the key (Standard Webhooks); receivers of the deprecated
    # Pilotplan-Signature header use the whole string as the HMAC key.
    secret = models.CharField(max_length=100)
    events = ArrayField(models.CharField(max_length=40, choices=EventType.choices))
    is_active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    # The payload version its receiver was written for: pinned, so that a new version never
    # reaches a receiver that has not moved to it. New subscriptions get the current one.
    payload_version = models.PositiveSmallIntegerField(
        choices=[(v, f"Version {v}") for v in WEBHOOK_PAYLOAD_VERSIONS],
        default=WEBHOOK_PAYLOAD_VERSIONS[-1],
    )
    created_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    CONSTRAINT_FIELDS = {
        "accounts_webhooksubscription_has_event": ("events", "Choose at least one event."),
        "accounts_webhooksubscription_payload_version_known": (
            "payload_version",
            "Choose a payload version Pilotplan sends.",
        ),
    }

    class Meta:
        ordering = ["name", "pk"]
        indexes = [
            # Serves accounts.events.event_publish: a team's active subscriptions to an event.
            models.Index(
                fields=["team"],
                condition=models.Q(is_active=True),
                name="accounts_webhooksub_active_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(events=[]), name="accounts_webhooksubscription_has_event"
            ),
            models.CheckConstraint(
                condition=models.Q(payload_version__in=WEBHOOK_PAYLOAD_VERSIONS),
                name="accounts_webhooksubscription_payload_version_known",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One event owed to one subscription, written in the transaction that caused it and sent
    (with retries) by the worker, so an event is never lost to a crash.

    ``message_id`` is the ``webhook-id`` header: the same on every attempt and on a manual
    redelivery, so a receiver can drop what it already has. ``next_attempt_at`` is when the
    worker tries next; ``None`` once delivered or given up (``failed_at``).
    """

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    message_id = models.CharField(max_length=40)
    event = models.CharField(max_length=40)
    payload = models.JSONField()
    # For chat destinations: what happened, in words, and the page it links to.
    summary = models.CharField(max_length=300, blank=True)
    link = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    last_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # Serves the sweep: deliveries still owed an attempt, by when it is due.
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(next_attempt_at__isnull=False),
                name="accounts_delivery_due_idx",
            ),
            # Serves the delivery log of one subscription, newest first.
            models.Index(fields=["subscription", "-created_at"], name="accounts_delivery_log_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event} → {self.subscription_id}"
