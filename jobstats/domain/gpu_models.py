"""GPU models as data: memory, full and idle power per exporter ``gpu_type`` string.

The shipped table (jobstats/data/gpu_models.json, domain 7.3) can be extended or overridden
by a site file (JOBSTATS_GPU_MODELS_FILE) with the same shape. A model nobody listed gets
the default entry, flagged ``known=False``: a new GPU never breaks a page (TT raised KeyError).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

SHIPPED = Path(__file__).resolve().parent.parent / "data" / "gpu_models.json"
FIELDS = ("memory_gib", "full_power_w", "idle_power_w")


class GpuModelsError(ValueError):
    """A GPU model file that cannot be used."""


@dataclass(frozen=True)
class GpuModel:
    name: str
    memory_gib: float
    full_power_w: float
    idle_power_w: float
    known: bool = True


@dataclass(frozen=True)
class GpuModelTable:
    models: Mapping[str, GpuModel]
    aliases: Mapping[str, str]
    default: GpuModel

    def get(self, name: str | None) -> GpuModel:
        """The model named ``name`` (exact, then case-insensitive, then an alias), else the default."""
        if not name:
            return self.default
        if name in self.models:
            return self.models[name]
        folded = name.strip().lower()
        for key, model in self.models.items():
            if key.lower() == folded:
                return model
        for alias, target in self.aliases.items():
            if alias.lower() == folded and target in self.models:
                return self.models[target]
        return GpuModel(name, self.default.memory_gib, self.default.full_power_w, self.default.idle_power_w, False)


def _entry(name: str, raw: Any, where: str) -> GpuModel:
    if not isinstance(raw, Mapping):
        raise GpuModelsError(f"{where}: model {name!r} must be an object with {', '.join(FIELDS)}.")
    values: dict[str, float] = {}
    for key in FIELDS:
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise GpuModelsError(f"{where}: model {name!r} needs a non-negative number for {key!r}.")
        values[key] = float(value)
    if values["idle_power_w"] > values["full_power_w"]:
        raise GpuModelsError(f"{where}: model {name!r} idles above its full power.")
    return GpuModel(name, values["memory_gib"], values["full_power_w"], values["idle_power_w"])


def parse_table(data: Any, where: str, base: GpuModelTable | None = None) -> GpuModelTable:
    """Validate one file's content and merge it over ``base``."""
    if not isinstance(data, Mapping):
        raise GpuModelsError(f"{where}: expected a JSON object with 'models', 'aliases' and 'default'.")
    unknown = set(data) - {"models", "aliases", "default", "_comment"}
    if unknown:
        raise GpuModelsError(f"{where}: unknown keys {sorted(unknown)}.")
    models = dict(base.models) if base else {}
    for name, raw in (data.get("models") or {}).items():
        models[str(name)] = _entry(str(name), raw, where)
    aliases = dict(base.aliases) if base else {}
    raw_aliases = data.get("aliases") or {}
    if not isinstance(raw_aliases, Mapping):
        raise GpuModelsError(f"{where}: 'aliases' must map names to model names.")
    for alias, target in raw_aliases.items():
        if str(target) not in models:
            raise GpuModelsError(f"{where}: alias {alias!r} names an unknown model {target!r}.")
        aliases[str(alias)] = str(target)
    if "default" in data:
        default = _entry("default", data["default"], where)
    elif base is not None:
        default = base.default
    else:
        raise GpuModelsError(f"{where}: a 'default' entry is required.")
    return GpuModelTable(
        models, aliases, GpuModel("", default.memory_gib, default.full_power_w, default.idle_power_w, False)
    )


def load_table(site_file: str = "") -> GpuModelTable:
    """The shipped table with ``site_file`` merged over it; raises GpuModelsError for a bad file."""
    table = parse_table(json.loads(SHIPPED.read_text()), str(SHIPPED))
    if site_file:
        path = Path(site_file)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise GpuModelsError(f"{path}: {exc}") from exc
        table = parse_table(data, str(path), table)
    return table


@functools.cache
def _cached(site_file: str) -> GpuModelTable:
    try:
        return load_table(site_file)
    except GpuModelsError:
        # `manage.py check` reports the error (jobstats.checks); pages keep the shipped table.
        logger.exception("JOBSTATS_GPU_MODELS_FILE is unusable; using the shipped GPU models")
        return load_table("")


def gpu_models() -> GpuModelTable:
    return _cached(getattr(settings, "JOBSTATS_GPU_MODELS_FILE", "") or "")


def gpu_model(name: str | None) -> GpuModel:
    return gpu_models().get(name)
