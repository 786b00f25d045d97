"""The portal's own models: API tokens (stored hashed; see userportal.tokens), the audit log,
external identities (userportal.auth.external)."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ApiToken(models.Model):
    """An API key of one user, stored as its SHA-256 only.

    The key itself is shown once, when it is issued (``manage.py drf_create_token`` or
    ``create_service_account``), and never stored: a leaked database gives no usable key. Keys
    are 264 random bits, so a plain SHA-256 (no salt, no slow hash) is enough and keeps the
    lookup one indexed equality. ``prefix`` (the key's first characters) tells tokens apart in
    the admin and in logs without revealing them.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens", verbose_name=_("user")
    )
    name = models.CharField(_("name"), max_length=100, blank=True, help_text=_("What the token is for."))
    prefix = models.CharField(_("prefix"), max_length=12, db_index=True, editable=False)
    key_hash = models.CharField(_("key hash"), max_length=64, unique=True, editable=False)
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_used = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    expires = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked = models.BooleanField(_("revoked"), default=False)
    cluster = models.CharField(
        _("cluster"),
        max_length=64,
        blank=True,
        help_text=_("The only cluster this token uploads job scripts for; empty: any cluster."),
    )

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    def is_expired(self, now: datetime | None = None) -> bool:
        return self.expires is not None and self.expires <= (now or timezone.now())

    def is_usable(self, now: datetime | None = None) -> bool:
        return not self.revoked and not self.is_expired(now)


class AuditQuerySet(models.QuerySet["AuditEntry"]):
    """The audit log is append-only: bulk changes are refused."""

    def update(self, **kwargs: object) -> int:
        raise PermissionError("audit entries cannot be changed")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit entries cannot be deleted")


class AuditEntry(models.Model):
    """One entry of the portal's tamper-evident audit log (see userportal.audit).

    Each entry carries the SHA-256 of its own content and of the previous entry's hash, so an
    edited, deleted or reordered entry breaks the chain; ``manage.py audit_verify`` finds it.
    """

    seq = models.PositiveBigIntegerField(_("sequence"), unique=True, editable=False)
    timestamp = models.DateTimeField(_("time (UTC)"), db_index=True, editable=False)
    actor = models.CharField(_("actor"), max_length=150, blank=True, db_index=True, editable=False)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True, editable=False)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True, editable=False)
    method = models.CharField(_("method"), max_length=10, blank=True, editable=False)
    path = models.CharField(_("path"), max_length=500, blank=True, editable=False)
    action = models.CharField(_("action"), max_length=64, db_index=True, editable=False)
    target = models.CharField(_("target"), max_length=200, blank=True, db_index=True, editable=False)
    status = models.CharField(_("status"), max_length=32, blank=True, editable=False)
    extra = models.JSONField(_("extra data"), default=dict, blank=True, editable=False)
    prev_hash = models.CharField(_("previous hash"), max_length=64, editable=False)
    hash = models.CharField(_("hash"), max_length=64, unique=True, editable=False)

    objects = AuditQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-seq"]
        indexes = [models.Index(fields=["action", "timestamp"]), models.Index(fields=["actor", "timestamp"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.timestamp:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise PermissionError("audit entries cannot be changed")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit entries cannot be deleted")


class AuditHead(models.Model):
    """The chain's head (a single row): locked while an entry is appended, so two writers never
    fork the chain, signed, and compared with the last entry so a deleted tail is noticed."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)
    # HMAC of (seq, hash) with AUDIT_HMAC_KEY: a head moved without the key is noticed.
    signature = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("audit chain head")

    def __str__(self) -> str:
        return f"audit head at entry {self.seq}"


class ExternalIdentity(models.Model):
    """Who signed in from outside, bound to the one account that identity stands for.

    Shibboleth names a person by (realm, name in that realm), OpenID Connect by (issuer, subject).
    Binding them, instead of trusting the name alone, keeps alice@example.org and alice@partner.edu
    apart and survives a renamed account at the provider (userportal.auth.external).
    """

    class Kind(models.TextChoices):
        REMOTE_USER = "remote_user", _("Shibboleth (REMOTE_USER)")
        OIDC = "oidc", _("OpenID Connect")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="external_identities",
        verbose_name=_("user"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    issuer = models.CharField(
        _("issuer"), max_length=255, blank=True, help_text=_("OpenID Connect: the issuer. Shibboleth: the realm.")
    )
    subject = models.CharField(
        _("subject"), max_length=255, help_text=_("OpenID Connect: the subject. Shibboleth: the name in the realm.")
    )
    created = models.DateTimeField(_("created"), default=timezone.now, editable=False)
    last_login = models.DateTimeField(_("last sign-in"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("external identity")
        verbose_name_plural = _("external identities")
        constraints = [
            models.UniqueConstraint(fields=["kind", "issuer", "subject"], name="external_identity_unique"),
            models.UniqueConstraint(fields=["user", "kind"], name="external_identity_one_per_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.subject}@{self.issuer} → {self.user}"


class BeatRun(models.Model):
    """The last run and the last success of one periodic (Celery beat) task, written by the worker
    (userportal.beat, from Celery's task signals): shown on /health/, /staff/tasks/ and in /metrics."""

    task = models.CharField(_("task"), max_length=200, unique=True)
    runs = models.PositiveBigIntegerField(_("runs"), default=0)
    last_run = models.DateTimeField(_("last run"), null=True, blank=True)
    last_success = models.DateTimeField(_("last success"), null=True, blank=True)
    last_failure = models.DateTimeField(_("last failure"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True, default="")

    class Meta:
        verbose_name = _("periodic task run")
        verbose_name_plural = _("periodic task runs")
        ordering = ("task",)

    def __str__(self) -> str:
        return self.task
