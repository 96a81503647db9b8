"""Tokens of DRF's authtoken (stored in plaintext) become hashed knox tokens, then the plaintext is erased.

Each keeps working as ``Authorization: Token <token>`` until SLIPWAY_API_TOKEN_SECONDS from this
migration, named "migrated"; ``rest_framework.authtoken`` is no longer installed, so its table is read
directly (when it exists) and emptied.
"""
import hashlib

from django.conf import settings
from django.db import migrations
from django.utils import timezone

LEGACY_TABLE = "authtoken_token"


def hash_legacy_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("workflows", "ApiToken")
    expiry = timezone.now() + timezone.timedelta(seconds=settings.SLIPWAY_API_TOKEN_SECONDS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id FROM {LEGACY_TABLE}")
        rows = cursor.fetchall()
        ApiToken.objects.bulk_create([
            ApiToken(digest=hashlib.sha512(key.encode()).hexdigest(), token_key=key[:15], user_id=user_id,
                     name="migrated", expiry=expiry)
            for key, user_id in rows
        ])
        cursor.execute(f"DELETE FROM {LEGACY_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("workflows", "0011_api_tokens")]

    operations = [migrations.RunPython(hash_legacy_tokens, migrations.RunPython.noop, elidable=True)]
