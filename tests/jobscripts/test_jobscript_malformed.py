"""A time_submit past year 9999 is a 400 on that field, never a 500 (the largest is 253402300799)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

LIST = "/api/jobscripts/"
SCRIPT = "#!/bin/bash\nsrun hostname\n"


@pytest.mark.parametrize("time_submit", [253402300800, 10**15, 2**62])
def test_a_time_submit_past_year_9999_is_a_400(service_account, slurm, time_submit):
    client = service_account.client()
    client.raise_request_exception = False
    data = {"id_job": 7, "submit_script": SCRIPT, "time_submit": time_submit}
    response = client.post(LIST, data, format="json")
    assert response.status_code == 400
    assert "time_submit" in response.json()


def test_the_last_second_of_year_9999_is_accepted(service_account, slurm):
    data = {"id_job": 8, "submit_script": SCRIPT, "time_submit": 253402300799}
    response = service_account.client().post(LIST, data, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("path", "query"),
    [("", "id_job=99999999999999999999"), ("7/", "time_submit=253402300800"), ("7/", "time_submit=-1")],
)
def test_an_out_of_range_filter_is_a_400(personas, grant, client, path, query):
    grant(personas.staff, "view_jobscript")
    client.force_login(personas.staff)
    response = client.get(f"{LIST}{path}?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.json()
