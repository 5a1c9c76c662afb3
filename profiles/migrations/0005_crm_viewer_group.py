"""The "CRM viewer" group: view permissions on every model of the CRM apps, nothing else (no add,
change, delete, export). Staff in it can look at everything in admin and change nothing.

Permissions are normally created after all migrations (post_migrate); on a fresh database they do not
exist yet when this runs, so it creates those of the CRM apps first (the same function Django uses).
A model added to a CRM app later needs a migration that grants its view permission too
(tests/profiles/test_staff_roles.py fails until then).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CRM_VIEWER_GROUP = "CRM viewer"
CRM_APPS = ("profiles", "goals", "activities", "coaching", "sync", "compliance")


def crm_viewer_group_create(apps, schema_editor):
    for label in CRM_APPS:
        app_config = apps.get_app_config(label)
        models_module = getattr(app_config, "models_module", None)  # historical configs have none
        app_config.models_module = models_module or True  # create_permissions skips apps without one
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=CRM_VIEWER_GROUP)
    view = Permission.objects.filter(content_type__app_label__in=CRM_APPS, codename__startswith="view_")
    group.permissions.set(view)


def crm_viewer_group_delete(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=CRM_VIEWER_GROUP).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('profiles', '0004_crmuserprofile_export_permission'),
        ('goals', '0003_healthgoal_crm_goal_metric_fits_type'),
        ('activities', '0004_embed_pending_index'),
        ('coaching', '0006_retention_intelligence'),
        ('sync', '0002_app_deletes_index'),
        ('compliance', '0002_erasure_tombstone'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.RunPython(crm_viewer_group_create, crm_viewer_group_delete),
    ]
