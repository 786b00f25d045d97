"""Pages: "my jobs" with a submit form (any signed-in user) and the admin dashboard (staff)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from jobqueue import services
from jobqueue.forms import SubmitForm
from jobqueue.submission import Submission, SubmissionError, validate_code, validate_config
from jobqueue.throttles import SubmitUserThrottle
from userportal.audit import audit


def index(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert user.is_authenticated  # Rule.LOGIN (urls.py)
    form = SubmitForm()
    if request.method == "POST":
        form = SubmitForm(request.POST, request.FILES)
        if form.is_valid():
            error = _submit(request, form)
            if error is None:
                return redirect("jobqueue:index")
            form.add_error(None, error)
    jobs = list(services.jobs_visible_to(user, admin=False).order_by("-created")[:100])
    return render(request, "jobqueue/index.html", {"form": form, "jobs": jobs})


def _submit(request: HttpRequest, form: SubmitForm) -> str | None:
    if not SubmitUserThrottle().allow_request(request, None):
        return _("Too many submissions: wait a minute and try again.")
    data = form.cleaned_data
    assert request.user.is_authenticated  # Rule.LOGIN (urls.py)
    user = get_user_model().objects.get(pk=request.user.pk)  # the real row, not the lazy wrapper
    try:
        code, filename = validate_code(data["code"])
        fields = validate_config(
            {k: data[k] for k in ("competition_id", "project_id", "expected_time")},
            user,
        )
        submission = Submission(code=code, filename=filename, **fields)
        job = services.submit(user, submission, admin=False)
    except SubmissionError as exc:
        return " ".join(" ".join(v) for v in exc.errors.values())
    audit("jobqueue.submit", request=request, target=f"jobqueue-job:{job.job_id}")
    messages.success(request, _("Job %(id)s submitted.") % {"id": job.job_id})
    for warning in job.warnings:
        messages.warning(request, warning)
    return None


def dashboard(request: HttpRequest) -> HttpResponse:
    data = services.dashboard()
    return render(request, "jobqueue/dashboard.html", {"data": data})
