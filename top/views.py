"""top pages (staff only). Thin: parse the window, call a service, render; a source down gives a notice."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from top import services
from userportal.clusters import current_cluster
from userportal.errors import DataSourceError
from userportal.prometheus import MetricsSession


def _context(request: HttpRequest, page: str) -> tuple[dict[str, Any], int]:
    name, seconds = services.window_seconds(request.GET.get("window"))
    return {
        "page": page,
        "window": name,
        "windows": services.WINDOWS,
        "unavailable": None,
        "hours": bool(seconds),
    }, seconds


def index(request: HttpRequest) -> HttpResponse:
    context, _seconds = _context(request, "index")
    return render(request, "top/index.html", context)


def compute(request: HttpRequest) -> HttpResponse:
    context, seconds = _context(request, "compute")
    try:
        context["rows"] = services.top_compute(MetricsSession(), seconds, current_cluster(request))
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "top/compute.html", context)


def gpucompute(request: HttpRequest) -> HttpResponse:
    context, seconds = _context(request, "gpucompute")
    try:
        context["rows"] = services.top_gpu(MetricsSession(), seconds, current_cluster(request))
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "top/gpucompute.html", context)


def largemem(request: HttpRequest) -> HttpResponse:
    context, seconds = _context(request, "largemem")
    context["partitions"] = ", ".join(settings.TOP_LARGEMEM_PARTITIONS)
    try:
        context["jobs"], context["metrics_missing"] = services.largemem_jobs(
            MetricsSession(), current_cluster(request), seconds
        )
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "top/largemem.html", context)


def idlegpu(request: HttpRequest) -> HttpResponse:
    context, seconds = _context(request, "idlegpu")
    try:
        found = services.idle_gpu_jobs(MetricsSession(), current_cluster(request), seconds)
        context["jobs"], context["unmeasured"] = found.idle, found.unmeasured
    except DataSourceError as exc:
        context["unavailable"] = exc.user_message
    return render(request, "top/idlegpu.html", context)


def filesystem(request: HttpRequest) -> HttpResponse:
    context, seconds = _context(request, "filesystem")
    context["enabled"] = settings.TOP_LUSTRE
    if settings.TOP_LUSTRE:
        try:
            context["tables"] = services.top_filesystem(MetricsSession(), seconds)
        except DataSourceError as exc:
            context["unavailable"] = exc.user_message
    return render(request, "top/filesystem.html", context)
