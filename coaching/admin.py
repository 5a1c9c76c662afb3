from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils.html import format_html

from coaching.alerts import staff_alerts_acknowledge
from coaching.models import (
    AiInsight,
    ChurnModel,
    CoachingSession,
    JobRun,
    RetentionAction,
    RetentionActionSource,
    StaffAlert,
)
from coaching.retention_actions import (
    retention_action_record,
    retention_action_types_allowed,
    retention_outcomes_report,
)
from profiles.models import CrmUserProfile
from yahealthy_crm.actors import ActorType
from yahealthy_crm.admin_base import ReadOnlyAdmin


@admin.register(AiInsight)
class AiInsightAdmin(ReadOnlyAdmin):
    list_display = ("id", "user_id", "insight_type", "title", "source", "created_at", "dismissed_at")
    list_filter = ("insight_type", "source", ("dismissed_at", admin.EmptyFieldListFilter))
    search_fields = ("=user__user_id", "title")
    raw_id_fields = ("user", "coaching_session")
    readonly_fields = ("created_at",)
    list_per_page = 50
    show_full_result_count = False


@admin.register(CoachingSession)
class CoachingSessionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "user_id",
        "conversation_id",
        "provider",
        "model",
        "status",
        "tools_used",
        "latency_ms",
        "created_at",
    )
    list_filter = ("provider", "status")
    # `=conversation__id`: paste a conversationId to see its turns in order.
    search_fields = ("=user__user_id", "=conversation__id", "message")
    raw_id_fields = ("user", "conversation")
    exclude = ("embedding",)
    readonly_fields = ("created_at",)
    list_per_page = 50
    show_full_result_count = False


# --- Jobs, staff alerts, retention actions and their outcomes (docs/retention.md) ---------------------


def _user_360_link(user_id: str, profile_pk: int | None):
    if not user_id:
        return "-"
    if profile_pk is None:
        return user_id
    return format_html(
        '<a href="{}">{}</a>', reverse("admin:profiles_crmuserprofile_change", args=[profile_pk]), user_id
    )


def _with_profile_pk(queryset):
    return queryset.annotate(
        profile_pk=Subquery(CrmUserProfile.objects.filter(user_id=OuterRef("user_id")).values("pk")[:1])
    )


@admin.register(ChurnModel)
class ChurnModelAdmin(ReadOnlyAdmin):
    """The churn model versions and how well each predicts (its backtest: docs/retention.md)."""

    list_display = ("version", "kind", "is_active", "trained_at", "training_rows", "auc", "brier", "high_band_lift")
    list_filter = ("kind", "is_active")
    readonly_fields = [f.name for f in ChurnModel._meta.fields if f.name != "estimator"]
    exclude = ("estimator",)

    @staticmethod
    def _backtest(obj: ChurnModel, key: str):
        backtest = (obj.quality or {}).get("backtest") or {}
        return (backtest.get("model") or {}).get(key)

    @admin.display(description="ROC AUC (backtest)")
    def auc(self, obj: ChurnModel):
        return self._backtest(obj, "auc")

    @admin.display(description="Brier score")
    def brier(self, obj: ChurnModel):
        return self._backtest(obj, "brier")

    @admin.display(description="high-band lift")
    def high_band_lift(self, obj: ChurnModel):
        return self._backtest(obj, "highBandLift")


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "job",
        "trigger",
        "status",
        "started_at",
        "finished_at",
        "considered",
        "processed",
        "skipped",
        "failed",
    )
    list_filter = ("job", "status", "trigger")
    readonly_fields = [f.name for f in JobRun._meta.fields]
    list_per_page = 50


@admin.register(StaffAlert)
class StaffAlertAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "user_link", "message", "emailed_at", "acknowledged_at", "created_at")
    list_filter = ("kind", ("acknowledged_at", admin.EmptyFieldListFilter), ("emailed_at", admin.EmptyFieldListFilter))
    search_fields = ("=user_id", "key", "message")
    readonly_fields = ("kind", "key", "user_id", "sync_event_id", "message", "emailed_at", "acknowledged_at")
    actions = ["acknowledge"]
    list_per_page = 50

    def get_queryset(self, request):
        return _with_profile_pk(super().get_queryset(request))

    @admin.display(description="user (360)")
    def user_link(self, alert):
        return _user_360_link(alert.user_id, getattr(alert, "profile_pk", None))

    def has_acknowledge_permission(self, request) -> bool:
        # Acknowledging is a change (the "CRM viewer" group only looks): the change right on alerts.
        return request.user.has_perm("coaching.change_staffalert")

    @admin.action(description="Acknowledge the selected alerts", permissions=["acknowledge"])
    def acknowledge(self, request, queryset):
        done = staff_alerts_acknowledge(alert_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{done} alert(s) acknowledged.", messages.SUCCESS)


class RetentionActionForm(forms.ModelForm):
    """Staff record an action they took (e.g. a call); the type must be allowed by the user's consent."""

    class Meta:
        model = RetentionAction
        fields = ("user", "action_type")

    def clean(self):
        cleaned = super().clean()
        profile, action_type = cleaned.get("user"), cleaned.get("action_type")
        if profile and action_type and action_type not in retention_action_types_allowed(profile=profile):
            raise forms.ValidationError(
                f"A {action_type} reaches the user outside the app and needs marketing consent, "
                "which this user has not given. Choose an in-app action."
            )
        return cleaned


@admin.register(RetentionAction)
class RetentionActionAdmin(admin.ModelAdmin):
    """Every retention action (job and staff) with its outcome; the report above the list compares the
    return rate per action type with untreated users of the same band and week."""

    form = RetentionActionForm
    change_list_template = "admin/coaching/retentionaction/change_list.html"
    list_display = (
        "id",
        "user_link",
        "action_type",
        "source",
        "churn_band",
        "churn_risk",
        "created_at",
        "outcome_due_at",
        "returned",
    )
    list_filter = ("action_type", "source", "churn_band", "returned")
    search_fields = ("=user__user_id",)
    raw_id_fields = ("user",)
    list_per_page = 50
    show_full_result_count = False

    def get_queryset(self, request):
        return _with_profile_pk(super().get_queryset(request))

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "action_type")
        return [f.name for f in RetentionAction._meta.fields if f.name != "id"]

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="user (360)", ordering="user_id")
    def user_link(self, action):
        return _user_360_link(action.user_id, getattr(action, "profile_pk", None))

    def save_model(self, request, obj, form, change):
        action = retention_action_record(
            profile=form.cleaned_data["user"],
            action_type=form.cleaned_data["action_type"],
            source=RetentionActionSource.STAFF,
            actor_type=ActorType.STAFF,
            actor_id=request.user.get_username(),
        )
        obj.pk, obj.created_at, obj.outcome_due_at = action.pk, action.created_at, action.outcome_due_at

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "outcomes": retention_outcomes_report()}
        return super().changelist_view(request, extra_context=extra_context)
