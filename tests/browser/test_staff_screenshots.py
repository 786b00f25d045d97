"""Screenshots of the user summary (as the user and as staff), the staff notes and the staff search,
on the demo cluster. Fails on any console error, failed request or HTTP error on the page."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from notes.models import Note
from quotas.demo import seed as seed_robinhood
from slurm.models import cluster_models

pytestmark = [pytest.mark.browser, pytest.mark.django_db(databases=["default", "slurm", "robinhood"], transaction=True)]

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


@pytest.fixture
def demo(personas):
    from demo.seed import seed_demo

    seed_demo(cluster="testcluster", seed=7, users=12, accounts=4, jobs=400, days=14)
    assoc = cluster_models("testcluster").assoc
    seed_robinhood(assoc.objects.exclude(user="").values_list("user", "acct"))  # storage for the summary
    alice, _ = get_user_model().objects.get_or_create(username="alice", defaults={"email": "alice@example.org"})
    Note.objects.create(
        cluster="testcluster", username="alice", title="Asked about GPU memory", author_name="staffer",
        text="Her jobs ask for 4 GPUs and use one; pointed her to the GPU efficiency page.", ticket="RT-1234",
    )  # fmt: skip
    return {"alice": alice, "staff": personas.staff}


def shoot(page, url: str, name: str) -> None:
    page.goto(url)
    page.wait_for_load_state("networkidle")
    assert page.locator("main h1").first.is_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


@pytest.mark.parametrize("who", ["user", "staff"])
def test_user_summary(demo, signed_in_page, live_server, who):
    page = signed_in_page(demo["alice"] if who == "user" else demo["staff"])
    shoot(page, f"{live_server.url}/secure/usersummary/alice/", f"usersummary-{who}.png")
    assert page.locator("#summary-associations").is_visible()
    assert page.locator("#summary-recent-jobs").is_visible()
    assert page.locator("#summary-notes").count() == (1 if who == "staff" else 0)
    assert page.locator("#summary-quotas .alert-warning").count() == 0  # Robinhood answered
    assert page.portal_errors == []


def test_notes_and_search_as_staff(demo, signed_in_page, live_server):
    page = signed_in_page(demo["staff"])
    shoot(page, f"{live_server.url}/secure/notes/", "notes-staff.png")
    assert page.get_by_text("Asked about GPU memory").is_visible()
    page.fill("#nav-search", "ali")
    page.press("#nav-search", "Enter")
    page.wait_for_load_state("networkidle")
    assert page.locator("#search-results").is_visible()
    page.screenshot(path=str(SHOTS / "search-staff.png"), full_page=True)
    assert page.portal_errors == []
