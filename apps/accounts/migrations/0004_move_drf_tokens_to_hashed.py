"""DRF's tokens (rest_framework.authtoken, stored in plain text, never expiring) become hashed
APIToken rows that expire after WB_API_TOKEN_DAYS, so integrations keep working until then; the
old table is dropped. The app is no longer installed, so its table is read with SQL."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone

OLD_TABLE = "authtoken_token"


def move_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return
    APIToken = apps.get_model("accounts", "APIToken")
    expires = timezone.now() + timedelta(days=getattr(settings, "WB_API_TOKEN_DAYS", 30))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {OLD_TABLE}")
        rows = cursor.fetchall()
    APIToken.objects.bulk_create(
        [APIToken(user_id=user_id, prefix=key[:8], digest=hashlib.sha256(key.encode()).hexdigest(), expires_at=expires) for key, user_id in rows],
        ignore_conflicts=True,
    )
    schema_editor.execute(f"DROP TABLE {OLD_TABLE} CASCADE")
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0003_api_tokens_hashed")]

    operations = [migrations.RunPython(move_tokens, migrations.RunPython.noop)]
