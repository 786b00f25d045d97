"""The "service-accounts" group exists, so the admin can put users in it (userportal.access.SERVICE_GROUP)."""

from django.db import migrations

SERVICE_GROUP = "service-accounts"  # a copy: migrations must not import code that may change


def create_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.using(schema_editor.connection.alias).get_or_create(name=SERVICE_GROUP)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("userportal", "0001_initial"),
    ]

    # Reversing leaves the group: it may have members and permissions by then.
    operations = [migrations.RunPython(create_group, migrations.RunPython.noop)]
