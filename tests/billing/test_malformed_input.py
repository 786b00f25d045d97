"""Malformed input gets a 400 naming the field, never a 500: dates near year 1 or 9999, a formula
body that is not a JSON object or holds NaN, Infinity or a number too large to be a price."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

FAR_DATES = ["0001-01-01", "0001-01-02", "1900-01-01", "9999-12-31", "2300-01-01"]
OWNER_PAGES = ["usage", "usage_csv", "receipts"]
STAFF_PAGES = ["staff_usage", "staff_usage_csv", "staff_charts"]


@pytest.fixture
def staff_client(personas):
    client = Client(raise_request_exception=False)
    client.force_login(personas.staff)
    return client


@pytest.mark.parametrize("field", ["start", "end", "before"])
@pytest.mark.parametrize("day", FAR_DATES)
def test_a_far_date_on_a_usage_page_is_a_400_naming_the_field(staff_client, personas, field, day):
    for name in OWNER_PAGES + STAFF_PAGES:
        kwargs = {"username": "owner"} if name in OWNER_PAGES else {}
        response = staff_client.get(reverse(f"billing:{name}", kwargs=kwargs), {field: day})
        assert response.status_code == 400, (name, response.status_code)
        assert response.context["errors"][field], name
    post = staff_client.post(reverse("billing:receipts", kwargs={"username": "owner"}), {field: day})
    assert post.status_code == 400
    charts = staff_client.get(reverse("billing:staff_charts_json"), {field: day})
    assert charts.status_code == 400
    assert field in charts.json()["errors"]


def test_a_date_in_range_still_works(staff_client, personas, billing_jobs):
    response = staff_client.get(reverse("billing:usage", kwargs={"username": "owner"}), {"start": "1970-01-01"})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("[1]", "body"),
        ('"gov"', "body"),
        ("1", "body"),
        ("null", "body"),
        ('{"type": "gov", "cpu": NaN}', "cpu"),
        ('{"type": "gov", "cpu": Infinity}', "cpu"),
        ('{"type": "gov", "gpu": -Infinity}', "gpu"),
        ('{"type": "gov", "cpu": 1e400}', "cpu"),
        ('{"type": "gov", "cpu": "NaN"}', "cpu"),
        ('{"type": ["gov"], "cpu": 1}', "type"),
        ('{"type": "gov", "cpu": {"a": 1}}', "cpu"),
        # found by tests/test_form_fuzz.py: more digits than Decimal's precision made quantize() raise
        ('{"type": "gov", "cpu": "99999999999999999999999999"}', "cpu"),
        ('{"type": "gov", "gpu": "1e309"}', "gpu"),
    ],
)
def test_a_malformed_formula_body_is_a_400_naming_the_field(staff_client, body, field):
    response = staff_client.post(reverse("billing:formula"), body, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()["errors"]


@pytest.mark.parametrize("value", ["NaN", "-NaN", "sNaN", "Infinity", "-Infinity", "inf"])
def test_the_playground_says_give_numbers_for_nan_and_infinities(personas, value):
    """Found by tests/test_form_fuzz.py: Decimal reads these, and the calculation then failed (500)."""
    client = Client(raise_request_exception=False)
    client.force_login(personas.owner)
    response = client.get(
        reverse("billing:playground"),
        {"type": "mu", "cpu_hours": "100", "gpu_hours": "0", "gpu_type": "a100", "mem_gb_hours": value},
    )
    assert response.status_code == 200
    assert response.context["result"] is None
    assert "Give numbers of hours." in [str(m) for m in response.context["messages"]]
