"""The four roles as groups with their model permissions (apps/accounts/roles.py); users who
had no role keep what they could do so far, as builders (superusers need none)."""

from __future__ import annotations

from django.contrib.auth.management import create_permissions
from django.db import migrations

from apps.accounts.roles import ROLE_GROUP_PREFIX, ROLE_NAMES, ROLE_PERMISSIONS


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; the roles need them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    User = apps.get_model("auth", "User")
    perms = {f"{p.content_type.app_label}.{p.codename}": p for p in Permission.objects.select_related("content_type")}
    groups = {}
    for role in ROLE_NAMES:
        group, _ = Group.objects.get_or_create(name=ROLE_GROUP_PREFIX + role)
        group.permissions.set([perms[name] for name in ROLE_PERMISSIONS[role] if name in perms])
        groups[role] = group
    for user in User.objects.filter(is_superuser=False).exclude(groups__name__startswith=ROLE_GROUP_PREFIX):
        user.groups.add(groups["builder"])


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__startswith=ROLE_GROUP_PREFIX).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_move_drf_tokens_to_hashed"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("workflows", "0001_initial"),
        ("executions", "0001_initial"),
        ("connectors", "0002_credential_grants_and_hosts"),
        ("workflow_templates", "0001_initial"),
        ("worklist", "0001_initial"),
        ("metrics", "0001_initial"),
        ("axes", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, drop_roles)]
