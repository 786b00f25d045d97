"""The API's exception handler: JSON errors with the right status, never a traceback."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from userportal.errors import as_data_source_error

logger = logging.getLogger(__name__)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    error = as_data_source_error(exc)
    if error is None:
        return None  # a bug: Django's 500 handler logs it and answers without a traceback
    logger.warning("data source %s unavailable in %s: %s", error.source, context.get("view"), exc)
    return Response(
        {"detail": str(error.user_message), "source": error.source, "code": "data_source_unavailable"},
        status=error.status_code,
    )
