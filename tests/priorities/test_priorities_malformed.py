"""A priority's start near year 1 or 9999 is a 400 with an error on the start, never a 500."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from priorities.models import PriorityRequest

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


@pytest.mark.parametrize("start", ["0001-01-01T00:00", "0001-01-03T00:00", "9999-12-31T23:59", "9999-12-25T00:00"])
def test_a_far_start_is_refused_on_its_field(personas, start):
    client = Client(raise_request_exception=False)
    client.force_login(personas.owner)
    data = {
        "account": "def-owner", "gpu_type": "a100", "gpu_count": "1", "start": start, "duration_days": "5",
        "justification": "thesis", "ticket": "777", "users": "",
    }  # fmt: skip
    response = client.post(reverse("priorities:new"), data)
    assert response.status_code == 400
    assert "start" in response.context["form"].errors
    assert not PriorityRequest.objects.exists()
