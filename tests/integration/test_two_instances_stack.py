"""Two instances of the portal share their state: a session, a login lockout, a rate limit and the
job queue's results hold across both. The stack's Apache runs a second mod_wsgi daemon group
(``portal2``: processes of its own, nothing in memory shared with ``portal``); the header
X-Portal-Instance: 2 sends a request to it."""

from __future__ import annotations

import os
import re
import uuid

import jobqueue_seed_client as seed
import pytest
import redis
import requests
from stack_jobqueue import cancel_active, issue_token, submit_bearer
from stack_portal import connect_portal_db, daemon_env

pytestmark = pytest.mark.django_db(databases=["default"])

ONE: dict[str, str] = {}
TWO = {"X-Portal-Instance": "2"}


@pytest.fixture(scope="module")
def portal(stack_dir) -> str:
    return os.environ["PORTAL_STACK_URL"]


def _login(session: requests.Session, portal: str, username: str, password: str, headers: dict[str, str]) -> int:
    page = session.get(f"{portal}/accounts/login/", headers=headers, timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        f"{portal}/accounts/login/",
        data={"csrfmiddlewaretoken": token, "username": username, "password": password},
        headers=headers,
        allow_redirects=False,
        timeout=30,
    )
    return answer.status_code


def test_each_instance_has_processes_of_its_own(portal):
    session = requests.Session()
    assert _login(session, portal, "staffer", "staffer-pw", ONE) == 302
    one = session.get(f"{portal}/health/", timeout=30).json()["instance"]
    two = session.get(f"{portal}/health/", headers=TWO, timeout=30).json()["instance"]  # staff: the session holds
    assert (one["process_group"], two["process_group"]) == ("portal", "portal2")
    assert one["pid"] != two["pid"]


def test_a_session_made_on_one_instance_holds_and_ends_on_the_other(portal):
    session = requests.Session()
    assert _login(session, portal, "alice", "alice-pw", ONE) == 302
    home = session.get(f"{portal}/", headers=TWO, allow_redirects=False, timeout=30)
    assert home.status_code == 200 and "alice" in home.text
    logout = session.post(
        f"{portal}/accounts/logout/", headers={**TWO, "X-CSRFToken": session.cookies["csrftoken"]},
        allow_redirects=False, timeout=30,
    )  # fmt: skip
    assert logout.status_code == 302
    assert session.get(f"{portal}/", headers=ONE, allow_redirects=False, timeout=30).status_code == 302  # signed out


def test_a_login_lockout_counted_on_one_instance_holds_on_the_other(portal, stack_dir):
    limit = int(daemon_env(stack_dir).get("AXES_FAILURE_LIMIT", "5"))
    name = f"nobody{uuid.uuid4().hex[:8]}"
    try:
        for _ in range(limit - 1):
            assert _login(requests.Session(), portal, name, "wrong", ONE) == 200  # the form again, with its error
        assert _login(requests.Session(), portal, name, "wrong", TWO) == 429  # the limit-th failure, elsewhere
        assert _login(requests.Session(), portal, name, "wrong", ONE) == 429
    finally:  # forget these failures: 127.0.0.1 (every test's address) must not stay locked out
        with connect_portal_db(stack_dir) as db, db.cursor() as cursor:
            cursor.execute("DELETE FROM axes_accessattempt WHERE username = %s", (name,))
            db.commit()


def test_a_rate_limit_counts_the_requests_of_both_instances(portal, stack_dir):
    rates = daemon_env(stack_dir)["JOBQUEUE_IP_RATES"]
    limit = int(re.search(r"nodes=(\d+)/min", rates).group(1))
    store = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = lambda: store.keys("throttle:*jobqueue:ip:nodes:*")  # noqa: E731
    url = f"{portal}/jobqueue/api/nodes"
    try:
        if keys():
            store.delete(*keys())
        with requests.Session() as session:
            codes = [session.get(url, headers=ONE if n % 2 else TWO, timeout=30).status_code for n in range(limit)]
            assert codes.count(200) == limit  # half on each instance: together, exactly the limit
            assert session.get(url, headers=TWO, timeout=30).status_code == 429
            assert session.get(url, headers=ONE, timeout=30).status_code == 429
    finally:  # the limit holds a minute: leave the other tests' nodes requests alone
        if keys():
            store.delete(*keys())


def test_a_job_queue_result_written_for_one_instance_is_read_through_the_other(stack_dir):
    # JOBQUEUE_DIR (results/) and the job rows are shared: submitted through one, read through the other
    token = issue_token(stack_dir, "twoinst")
    cancel_active(token, "twoinst")
    job_id = submit_bearer(token, 1, competition_id="two-instances")["job_id"]
    assert seed.wait_for_job(job_id, token, timeout=180)["status"] == "completed"
    headers = {"Authorization": f"Bearer {token}", **TWO}
    results = requests.get(f"{seed.BASE_URL}/api/results/{job_id}", headers=headers, timeout=30)
    assert results.status_code == 200, results.text
    assert '"accuracy": 0.93' in results.json()["output"]
