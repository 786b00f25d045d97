"""Plotly figure JSON for jobstats: the portal-wide contract lives in userportal.figures.

A figure is ``{"data": [trace, ...], "layout": {...}, "config": {...}, "summary": "..."}``;
no data is the same shape with ``"data": []``, ``"no_data": true`` and a reason (status 200).
"""

from __future__ import annotations

from userportal.figures import CONFIG, Figure, constant_trace, figure, iso, layout, no_data, rounded, trace

__all__ = ["CONFIG", "Figure", "constant_trace", "figure", "iso", "layout", "no_data", "rounded", "trace"]
