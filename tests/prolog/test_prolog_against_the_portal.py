"""The uploader against the real portal (pytest-django's live_server): token, 201, then "already stored"."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from prolog_site import Site

from jobstats.models import JobScript
from userportal.access import SERVICE_GROUP
from userportal.tokens import issue_token

# The upload looks the job up in the Slurm database: allow the alias (no Slurm rows are written
# here, since a transactional test does not flush the unmanaged Slurm tables).
pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "slurm"])


@pytest.fixture
def portal_site(tmp_path, live_server, django_user_model) -> Site:
    user = django_user_model.objects.create_user("slurm-prolog")
    user.groups.add(Group.objects.get_or_create(name=SERVICE_GROUP)[0])
    _token, key = issue_token(user)
    return Site(root=tmp_path, host=live_server.url, timeout=10, token=key)


def run(site: Site, job_id: int):
    return site.run(job_id)[0]


def test_uploader_stores_the_script_in_the_portal_and_a_rerun_is_already_stored(portal_site):
    portal_site.submit(4321, "#!/bin/bash\n#SBATCH --mem=1G\nsrun true\n")
    first = run(portal_site, 4321)
    assert first.returncode == 0
    assert "stored (HTTP 201)" in first.stderr, first.stderr
    stored = JobScript.objects.get(id_job=4321)
    assert stored.submit_script == "#!/bin/bash\n#SBATCH --mem=1G\nsrun true\n"
    assert stored.cluster == "testcluster"
    assert stored.uploaded_by.username == "slurm-prolog"
    second = run(portal_site, 4321)
    assert "already stored" in second.stderr, second.stderr
    assert portal_site.queued() == []
    assert JobScript.objects.filter(id_job=4321).count() == 1


def test_a_wrong_token_is_refused_and_queued(portal_site):
    portal_site.token = "wrong" + portal_site.token
    portal_site.submit(4322)
    result = run(portal_site, 4322)
    assert result.returncode == 0
    assert "HTTP 401" in result.stderr
    assert portal_site.queued() == [4322]


def test_batch_mode_stores_the_scripts_with_their_submit_time(portal_site):
    portal_site.api_extra = "batch = yes\n"
    spooled = portal_site.submit(4400, "#!/bin/bash\nsrun batch\n")
    result = run(portal_site, 4400)
    assert result.returncode == 0
    assert "1 scripts sent in one batch" in result.stderr, result.stderr
    stored = JobScript.objects.get(id_job=4400)
    assert stored.submit_script == "#!/bin/bash\nsrun batch\n"
    assert stored.time_submit == int(spooled.stat().st_mtime)  # slurmdbd has no record: the spool's time
    assert portal_site.queued() == []
    assert "0 stored, 1 already stored" in run(portal_site, 4400).stderr
