"""Profiles in admin: the churn list and segments (changelist, CSV export), the user 360 view (change
page) and the churn dashboard."""

import csv
import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from activities.models import UserActivity
from coaching.dashboard import TREND_WEEKS, churn_dashboard_get, churn_drivers_summary, user_churn_history
from coaching.models import AiInsight, CoachingSession, RetentionAction
from coaching.retention import churn_assess_users, user_metrics_get
from compliance.gdpr import gdpr_erase
from compliance.selectors import audit_log_for_user, user_is_erased
from goals.models import HealthGoal
from goals.selectors import nutrition_snapshot_get
from profiles.models import (
    CHURN_BAND_HIGH_FROM,
    CHURN_BAND_MEDIUM_FROM,
    ChurnBand,
    CrmUserProfile,
    LifecycleStage,
)
from profiles.selectors import INACTIVE_DAYS_CHOICES, ProfileSegment, profile_export_rows, profile_segment_filter
from profiles.services import (
    PROFILE_WRITABLE_FIELDS,
    profile_create,
    profile_segment_export_record,
    profile_update,
)
from sync.models import SyncEvent
from yahealthy_crm.actors import ActorType
from yahealthy_crm.charts import bar_chart_svg, histogram_svg, line_chart_svg
from yahealthy_crm.permissions import STAFF_EXPORT_PERMISSION

RECENT_ROWS = 10
# The admin index links the churn dashboard (a page of this admin, below) above the app list.
admin.site.index_template = "admin/crm_index.html"


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


class InactiveFilter(admin.SimpleListFilter):
    """No activity for 7, 14 or 30 days (the rule: profiles.selectors.profiles_inactive_for)."""

    title = "inactive for"
    parameter_name = "inactive_days"

    def lookups(self, request, model_admin):
        return [(str(days), f"{days}+ days") for days in INACTIVE_DAYS_CHOICES]

    def queryset(self, request, queryset):
        if self.value() in {str(days) for days in INACTIVE_DAYS_CHOICES}:
            return profile_segment_filter(queryset, segment=ProfileSegment(inactive_days=int(self.value())))
        return queryset


class _CsvBuffer:
    """A file-like object whose write() returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


BAND_COLORS = {ChurnBand.LOW: "#27ae60", ChurnBand.MEDIUM: "#e67e22", ChurnBand.HIGH: "#c0392b"}
# Query parameters of the changelist that are not filters (page, the "invalid filter" flag).
_NOT_FILTERS = ("p", "e", "_changelist_filters")


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
        "engagement_tier",
        "lifecycle_stage",
        "primary_goal",
        InactiveFilter,
        "consent_ai_processing",
        "consent_marketing",
        "activity_level",
    )
    search_fields = ("user_id",)
    search_help_text = "Search by user id (or part of it)."
    ordering = ("-churn_risk", "id")
    date_hierarchy = "created_at"
    list_per_page = 50
    show_full_result_count = False
    actions = ["reassess_churn_risk", "export_selected_csv"]
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
        "churn_history_360",
        "retention_actions_360",
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
                    "churn_history_360",
                    "retention_actions_360",
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

    # --- Rights: erase (superusers only), export (its own permission) -----------------------------

    def has_delete_permission(self, request, obj=None):
        # Deleting a user is a GDPR erase of everything the CRM holds about them: superusers only,
        # whatever permissions a staff account was given.
        return request.user.is_active and request.user.is_superuser

    def has_export_permission(self, request) -> bool:
        return request.user.has_perm(STAFF_EXPORT_PERMISSION)

    # --- Pages: the churn dashboard, the CSV export of the filtered list ---------------------------

    def get_urls(self):
        own = [
            path("dashboard/", self.admin_site.admin_view(self.churn_dashboard_view), name="crm_churn_dashboard"),
            path(
                "export.csv",
                self.admin_site.admin_view(self.export_csv_view),
                name="profiles_crmuserprofile_export",
            ),
        ]
        return own + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        query = request.GET.copy()
        for name in _NOT_FILTERS:
            query.pop(name, None)
        extra_context = {
            **(extra_context or {}),
            "can_export": self.has_export_permission(request),
            "export_query": query.urlencode(),
        }
        return super().changelist_view(request, extra_context=extra_context)

    def export_csv_view(self, request):
        """The changelist as it is filtered and searched (every page) as CSV; audited."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown filter in the query string.")
        filters = {key: value for key, value in request.GET.items() if key not in _NOT_FILTERS}
        return self._csv_response(request, changelist.queryset, filters=filters)

    @admin.action(description="Export the selected users to CSV", permissions=["export"])
    def export_selected_csv(self, request, queryset):
        return self._csv_response(request, queryset, filters={"selectedUsers": queryset.count()})

    def _csv_response(self, request, queryset, *, filters: dict) -> StreamingHttpResponse:
        profile_segment_export_record(
            actor_type=ActorType.STAFF, actor_id=request.user.get_username(), segment=filters, rows=queryset.count()
        )
        writer = csv.writer(_CsvBuffer())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in profile_export_rows(queryset)), content_type="text/csv; charset=utf-8"
        )
        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="crm-users-{stamp}.csv"'
        return response

    def churn_dashboard_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        dashboard = churn_dashboard_get()
        changelist = reverse("admin:profiles_crmuserprofile_changelist")
        bands = [ChurnBand.LOW, ChurnBand.MEDIUM, ChurnBand.HIGH]
        stages = LifecycleStage.values
        trend_labels = [week.week.strftime("%d %b") for week in dashboard.high_trend]
        outcome_rows = dashboard.outcomes["actionTypes"]
        charts = {
            "bands": bar_chart_svg(
                title="Users per churn band",
                labels=[band.label for band in bands],
                series={"users": [dashboard.by_band[band] for band in bands]},
                colors=[BAND_COLORS[band] for band in bands],
            ),
            "stages": bar_chart_svg(
                title="Users per lifecycle stage, by churn band",
                labels=[LifecycleStage(stage).label for stage in stages],
                series={band.label: [dashboard.band_by_stage[stage][band] for stage in stages] for band in bands},
                series_colors=[BAND_COLORS[band] for band in bands],
                stacked=True,
            ),
            "histogram": histogram_svg(
                title=f"Churn risk distribution (bands at {CHURN_BAND_MEDIUM_FROM} and {CHURN_BAND_HIGH_FROM})",
                bins=[(bucket.users, bucket.start, bucket.end) for bucket in dashboard.risk_histogram],
            ),
            "trend": line_chart_svg(
                title=f"High band, last {len(dashboard.high_trend)} weeks (users)",
                labels=trend_labels,
                series={"high band": [week.high if week.scored else None for week in dashboard.high_trend]},
            ),
            "outcomes": bar_chart_svg(
                title=f"Return within {dashboard.outcomes['windowDays']} days: treated vs untreated",
                labels=[row["actionType"] for row in outcome_rows],
                series={
                    "after the action": [row["returnRate"] for row in outcome_rows],
                    "untreated, same band and week": [row["control"]["returnRate"] for row in outcome_rows],
                },
                series_colors=["#417690", "#aaaaaa"],
                percent=True,
            ),
        }
        context = {
            **self.admin_site.each_context(request),
            "title": "Churn dashboard",
            "opts": self.model._meta,
            "dashboard": dashboard,
            "charts": charts,
            "changelist_url": changelist,
            "band_rows": [
                (band.label, dashboard.by_band[band], f"{changelist}?churn_band={band.value}") for band in bands
            ],
            "stage_rows": [
                (LifecycleStage(stage).label, dashboard.by_stage[stage], f"{changelist}?lifecycle_stage__exact={stage}")
                for stage in stages
            ],
            "high_risk_rows": [
                (
                    reverse("admin:profiles_crmuserprofile_change", args=[profile.pk]),
                    profile,
                    churn_drivers_summary(profile),
                )
                for profile in dashboard.high_risk
            ],
        }
        return TemplateResponse(request, "admin/profiles/churn_dashboard.html", context)

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

    @admin.action(description="Reassess churn risk now", permissions=["change"])
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

    @admin.display(description=f"Churn risk, last {TREND_WEEKS} weeks")
    def churn_history_360(self, obj):
        if not obj.pk:
            return "-"
        weeks = user_churn_history(user_id=obj.user_id)
        if not any(week.churn_risk is not None for week in weeks):
            return format_html("<em>{}</em>", "not scored by the weekly churn job yet")
        return line_chart_svg(
            title="",
            labels=[week.week.strftime("%d %b") for week in weeks],
            series={"churn risk": [week.churn_risk for week in weeks]},
            percent=True,
            range=(0, 1),
            width=640,
            height=200,
            explicit_size=True,  # the admin's read-only field box would shrink a size-less SVG to nothing
        )

    @admin.display(description="Retention actions")
    def retention_actions_360(self, obj):
        actions = RetentionAction.objects.filter(user_id=obj.user_id).order_by("-created_at")[:RECENT_ROWS]
        outcome = {True: "came back", False: "did not come back", None: "pending"}
        return _table(
            ("action", "type", "source", "risk then", "when", "outcome"),
            [
                (
                    _link(a),
                    a.action_type,
                    a.source,
                    f"{a.churn_risk} ({a.churn_band})",
                    a.created_at,
                    outcome[a.returned],
                )
                for a in actions
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
