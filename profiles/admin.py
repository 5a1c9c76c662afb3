"""Profiles in admin: the churn list (changelist) and the user 360 view (change page)."""

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from activities.models import UserActivity
from coaching.models import AiInsight, CoachingSession
from coaching.retention import churn_assess_users, user_metrics_get
from compliance.gdpr import gdpr_erase
from compliance.selectors import audit_log_for_user, user_is_erased
from goals.models import HealthGoal
from goals.selectors import nutrition_snapshot_get
from profiles.models import CHURN_BAND_HIGH_FROM, CHURN_BAND_MEDIUM_FROM, ChurnBand, CrmUserProfile
from profiles.services import PROFILE_WRITABLE_FIELDS, profile_create, profile_update
from sync.models import SyncEvent
from yahealthy_crm.actors import ActorType

RECENT_ROWS = 10


class ChurnBandFilter(admin.SimpleListFilter):
    """The stored churn band (set with the score by the weekly assessment; thresholds: profiles.models)."""

    title = "churn band"
    parameter_name = "churn_band"

    def lookups(self, request, model_admin):
        return [
            (ChurnBand.HIGH, f"High (>= {CHURN_BAND_HIGH_FROM})"),
            (ChurnBand.MEDIUM, f"Medium ({CHURN_BAND_MEDIUM_FROM} - {CHURN_BAND_HIGH_FROM})"),
            (ChurnBand.LOW, f"Low (< {CHURN_BAND_MEDIUM_FROM})"),
        ]

    def queryset(self, request, queryset):
        if self.value() in ChurnBand.values:
            return queryset.filter(churn_band=self.value())
        return queryset


def _cell(value):
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")
    return value


def _table(headers: tuple[str, ...], rows: list[tuple]) -> str:
    if not rows:
        return format_html("<em>{}</em>", "none")
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((_cell(cell),) for cell in row)),) for row in rows)
    )
    return format_html('<table class="crm-360"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>', head, body)


def _link(obj) -> str:
    meta = obj._meta
    return format_html(
        '<a href="{}">#{}</a>', reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk]), obj.pk
    )


@admin.register(CrmUserProfile)
class CrmUserProfileAdmin(admin.ModelAdmin):
    list_display = (
        "user_id",
        "engagement_tier",
        "lifecycle_stage",
        "churn_risk",
        "churn_band",
        "primary_goal",
        "activity_level",
        "last_active_at",
        "consent_ai_processing",
        "created_at",
    )
    list_filter = (
        ChurnBandFilter,
        "lifecycle_stage",
        "engagement_tier",
        "primary_goal",
        "activity_level",
        "consent_ai_processing",
        "consent_marketing",
    )
    search_fields = ("user_id",)
    ordering = ("-churn_risk",)
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    actions = ["reassess_churn_risk"]
    readonly_fields = (
        "churn_risk",
        "churn_band",
        "lifecycle_stage",
        "lifecycle_changed_at",
        "consent_ai_processing_at",
        "consent_marketing_at",
        "last_active_at",
        "created_at",
        "updated_at",
        "churn_assessed_at",
        "churn_factors",
        "email_hash",
        "phone_hash",
        "field_provenance",
        "metrics_360",
        "nutrition_360",
        "goals_360",
        "activities_360",
        "insights_360",
        "sessions_360",
        "sync_events_360",
        "audit_360",
    )
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "user_id",
                    "engagement_tier",
                    ("lifecycle_stage", "lifecycle_changed_at"),
                    ("churn_risk", "churn_band"),
                    "churn_factors",
                    "churn_assessed_at",
                )
            },
        ),
        ("Health profile", {"fields": ("age", "height_cm", "current_weight_kg", "activity_level", "primary_goal")}),
        (
            "Consent and contact",
            {
                "fields": (
                    "consent_ai_processing",
                    "consent_ai_processing_at",
                    "consent_marketing",
                    "consent_marketing_at",
                    "email_hash",
                    "phone_hash",
                )
            },
        ),
        (
            "User 360",
            {
                "fields": (
                    "metrics_360",
                    "nutrition_360",
                    "goals_360",
                    "activities_360",
                    "insights_360",
                    "sessions_360",
                    "sync_events_360",
                    "audit_360",
                )
            },
        ),
        (
            "Record",
            {"classes": ("collapse",), "fields": ("field_provenance", "last_active_at", "created_at", "updated_at")},
        ),
    )

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "user_id") if obj else self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)

        def clean_user_id(form_self):
            user_id = form_self.cleaned_data["user_id"]
            if user_is_erased(user_id=user_id):
                raise forms.ValidationError("This user id was erased (GDPR) and cannot be used again.")
            return user_id

        if not change:
            form.clean_user_id = clean_user_id
        return form

    def save_model(self, request, obj, form, change):
        # Staff edits go through the same services as the API: audited, health fields marked verified.
        fields = {name: form.cleaned_data[name] for name in form.changed_data if name in PROFILE_WRITABLE_FIELDS}
        actor_id = request.user.get_username()
        if change:
            if fields:
                profile_update(user_id=obj.user_id, actor_type=ActorType.STAFF, actor_id=actor_id, fields=fields)
        else:
            obj.pk = profile_create(
                user_id=obj.user_id, actor_type=ActorType.STAFF, actor_id=actor_id, fields=fields
            ).pk
        obj.refresh_from_db()

    def get_deleted_objects(self, objs, request):
        # The confirmation page lists what a GDPR erase removes; the erase itself needs no per-table rights.
        summary = [
            f"{profile.user_id}: profile, goals, activities, insights, coaching sessions, sync events and audit "
            "entries (GDPR erase; a pseudonymous tombstone is kept)"
            for profile in objs
        ]
        return summary, {"users": len(objs)}, set(), []

    def delete_model(self, request, obj):
        # Deleting a user in the CRM is a GDPR erase: every table, one transaction, a tombstone.
        gdpr_erase(user_id=obj.user_id, actor_type=ActorType.STAFF, actor_id=request.user.get_username())

    def delete_queryset(self, request, queryset):
        for user_id in queryset.values_list("user_id", flat=True):
            gdpr_erase(user_id=user_id, actor_type=ActorType.STAFF, actor_id=request.user.get_username())

    @admin.action(description="Reassess churn risk now")
    def reassess_churn_risk(self, request, queryset):
        count = churn_assess_users(
            user_ids=list(queryset.values_list("user_id", flat=True)), actor_type=ActorType.STAFF
        )
        self.message_user(request, f"Churn risk reassessed for {count} users.", messages.SUCCESS)

    @admin.display(description="Engagement")
    def metrics_360(self, obj):
        if not obj.pk:
            return "-"
        m = user_metrics_get(profile=obj)
        return _table(
            (
                "activities 7d",
                "activities 30d",
                "active days (14d)",
                "streak",
                "tier (stored / justified)",
                "churn now",
            ),
            [
                (
                    m.activities_7d,
                    m.activities_30d,
                    m.active_days_14d,
                    f"{m.current_streak_days} days",
                    f"{m.engagement_tier} / {m.engagement_tier_suggested}",
                    f"{m.churn_risk:.2f}",
                )
            ],
        )

    @admin.display(description="Nutrition (7 days)")
    def nutrition_360(self, obj):
        if not obj.pk:
            return "-"
        snapshot = nutrition_snapshot_get(user_id=obj.user_id)
        rows = [
            (
                nutrient,
                snapshot.today[nutrient],
                snapshot.averages_7d[nutrient] if snapshot.averages_7d[nutrient] is not None else "-",
                goal.target if (goal := snapshot.goals.get(nutrient)) else "-",
            )
            for nutrient in snapshot.today
        ]
        return _table((f"{snapshot.days_logged} days logged", "today", "7-day average", "goal"), rows)

    @admin.display(description="Goals")
    def goals_360(self, obj):
        goals = HealthGoal.objects.filter(user_id=obj.user_id).order_by("-created_at")[:RECENT_ROWS]
        return _table(
            ("goal", "type", "target", "status", "progress", "streak", "source"),
            [
                (
                    _link(g),
                    g.goal_type,
                    f"{g.goal_value} {g.goal_unit}",
                    g.status,
                    f"{g.progress_pct}%",
                    g.streak_days,
                    g.source,
                )
                for g in goals
            ],
        )

    @admin.display(description="Recent activities")
    def activities_360(self, obj):
        activities = UserActivity.objects.filter(user_id=obj.user_id).order_by("-occurred_at")[:RECENT_ROWS]
        return _table(
            ("activity", "type", "when", "kcal", "protein g", "source"),
            [
                (_link(a), a.activity_type, a.occurred_at, a.calories_kcal or "-", a.protein_g or "-", a.source)
                for a in activities.defer("embedding")
            ],
        )

    @admin.display(description="Insights")
    def insights_360(self, obj):
        insights = AiInsight.objects.filter(user_id=obj.user_id).order_by("-created_at")[:RECENT_ROWS]
        return _table(
            ("insight", "title", "type", "created", "dismissed"),
            [(_link(i), i.title, i.insight_type, i.created_at, i.dismissed_at or "-") for i in insights],
        )

    @admin.display(description="Coaching sessions")
    def sessions_360(self, obj):
        sessions = CoachingSession.objects.filter(user_id=obj.user_id).order_by("-created_at")[:RECENT_ROWS]
        return _table(
            ("session", "question", "tools", "provider", "when"),
            [
                (_link(s), s.message[:80], ", ".join(s.tools_used), s.provider, s.created_at)
                for s in sessions.defer("embedding")
            ],
        )

    @admin.display(description="Sync events")
    def sync_events_360(self, obj):
        events = SyncEvent.objects.filter(user_id=obj.user_id).order_by("-created_at")[:RECENT_ROWS]
        return _table(
            ("event", "direction", "entity", "status", "attempts", "error", "when"),
            [
                (
                    _link(e),
                    e.direction,
                    f"{e.entity_type}.{e.operation}",
                    e.status,
                    e.attempts,
                    e.error[:80] or "-",
                    e.created_at,
                )
                for e in events
            ],
        )

    @admin.display(description="Audit trail")
    def audit_360(self, obj):
        rows = audit_log_for_user(user_id=obj.user_id)[:RECENT_ROWS]
        return _table(
            ("when", "actor", "action", "entity", "request"),
            [
                (
                    r.created_at,
                    f"{r.actor_type}:{r.actor_id}",
                    r.action,
                    f"{r.entity_type}#{r.entity_id}",
                    r.request_id or "-",
                )
                for r in rows
            ],
        )
