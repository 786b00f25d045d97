"""Load the default tiers, rates and GPU factors from billing/data/defaults.json (site data as data)."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from django.db import migrations

DEFAULTS = Path(__file__).resolve().parent.parent / "data" / "defaults.json"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def load(apps, schema_editor):
    Tier = apps.get_model("billing", "Tier")
    Rate = apps.get_model("billing", "Rate")
    GpuFactor = apps.get_model("billing", "GpuFactor")
    data = json.loads(DEFAULTS.read_text())
    for row in data["tiers"]:
        tier, created = Tier.objects.get_or_create(
            slug=row["slug"],
            defaults={"name": row["name"], "description": row["description"], "position": row["position"]},
        )
        if created:
            for resource, price in row["rates"].items():
                Rate.objects.create(
                    tier=tier, resource=resource, price=Decimal(price), valid_from=EPOCH, created_by="migration"
                )
    for gpu_type, factor in data["gpu_factors"].items():
        GpuFactor.objects.get_or_create(gpu_type=gpu_type, defaults={"factor": Decimal(factor)})


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
