from django.db import migrations


def create_chain_head(apps, schema_editor):
    apps.get_model("workflows", "AuditChainHead").objects.get_or_create(id=1, defaults={"last_hash": "0" * 64})


class Migration(migrations.Migration):
    dependencies = [("workflows", "0001_initial")]

    operations = [migrations.RunPython(create_chain_head, migrations.RunPython.noop)]
