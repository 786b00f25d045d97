"""Pages of the extensions module: thin views over extensions.services."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from extensions import forms, panel, services
from extensions.models import ExtensionRequest, Status
from extensions.policy import Policy
from slurm.commands import SlurmCommandError
from slurm.scontrol import JOB_ID
from userportal import powers
from userportal.clusters import current_cluster

DECIDE = "extensions.change_extensionrequest"


def index(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert user.is_authenticated  # Rule.LOGIN (urls.py)
    page = Paginator(services.requests_of(user), 50).get_page(request.GET.get("page"))
    return render(request, "extensions/index.html", {"page": page, "policy": Policy.from_settings()})


@require_http_methods(["GET", "POST"])
def new(request: HttpRequest, username: str, job_id: str) -> HttpResponse:
    """The job owner's form (staff see the job and the policy, without the form: only the owner asks)."""
    user = request.user
    assert user.is_authenticated  # Rule.OWNER (urls.py)
    if not JOB_ID.fullmatch(job_id):
        return render(request, "400.html", {"message": _("Not a job id: %(id)s") % {"id": job_id[:40]}}, status=400)
    policy = Policy.from_settings()
    owner = user.get_username() == username
    form = forms.ExtensionForm(request.POST if request.method == "POST" else None, policy=policy)
    if request.method == "POST":
        if not owner:
            return render(request, "400.html", {"message": _("Only the job's owner may ask.")}, status=400)
        if form.is_valid():
            try:
                extension = services.create_request(
                    job_id,
                    hours=form.cleaned_data["hours"],
                    reason=form.cleaned_data["reason"],
                    user=user,
                    cluster=current_cluster(request),
                    request=request,
                )
            except ValidationError as exc:
                for name, errors in exc.message_dict.items():
                    for error in errors:
                        form.add_error(name if name in form.fields else None, error)
            except SlurmCommandError:
                form.add_error(None, _("Slurm's controller did not answer; try again in a few minutes."))
            else:
                if extension.status == Status.PENDING:
                    messages.success(request, _("Your request #%(id)d was sent to the staff.") % {"id": extension.pk})
                else:
                    messages.success(
                        request, _("Your request #%(id)d was accepted; Slurm applies it now.") % {"id": extension.pk}
                    )
                return redirect("extensions:index")
    view = panel.job_view(job_id, cluster=current_cluster(request))
    mine = view.job is not None and view.job.user == username
    context = {
        "owner": username,
        "job_id": job_id,
        "view": view if mine or view.job is None else panel.JobView(notice=_("No such job for this user.")),
        "form": form,
        "may_ask": owner and mine and view.job is not None and view.job.extendable,
        "policy": policy,
    }
    return render(request, "extensions/new.html", context, status=400 if form.errors else 200)


def staff_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    page = Paginator(services.staff_list(status), 50).get_page(request.GET.get("page"))
    return render(
        request,
        "extensions/staff_list.html",
        {"page": page, "status": status, "statuses": Status.choices, "may_decide": powers.may(request.user, DECIDE)},
    )


ACTIONS: dict[str, type[Form]] = {"accept": forms.AcceptForm, "refuse": forms.RefuseForm}


@require_http_methods(["GET", "POST"])
def staff_detail(request: HttpRequest, extension_id: int) -> HttpResponse:
    extension = get_object_or_404(ExtensionRequest.objects.select_related("requester"), pk=extension_id)
    actor = request.user.get_username()
    bound: dict[str, Form] = {}
    failed = False
    if request.method == "POST":
        powers.require(request.user, DECIDE)  # plain staff read; deciding runs scontrol update
        action = request.POST.get("action", "")
        form_class = ACTIONS.get(action)
        form = form_class(request.POST) if form_class else None
        try:
            if form is not None and not form.is_valid():
                bound[action] = form
            elif action == "accept" and form is not None:
                services.accept(extension, actor=actor, message=form.cleaned_data["message"], request=request)
                messages.success(request, _("Accepted: Slurm is given the new time limit."))
                return redirect("extensions:staff-detail", extension_id=extension.pk)
            elif action == "refuse" and form is not None:
                services.refuse(extension, actor=actor, message=form.cleaned_data["message"], request=request)
                messages.success(request, _("Refused; the user is told why."))
                return redirect("extensions:staff-detail", extension_id=extension.pk)
            elif action == "retry":
                services.retry(extension, actor=actor, request=request)
                messages.success(request, _("Queued again."))
                return redirect("extensions:staff-detail", extension_id=extension.pk)
            else:
                raise ValidationError(_("Unknown action."))
        except ValidationError as exc:
            failed = True
            if form is not None:
                for name, errors in getattr(exc, "message_dict", {None: exc.messages}).items():
                    for error in errors:
                        form.add_error(name if name in form.fields else None, error)
                bound[action] = form
            else:
                for error in exc.messages:
                    messages.error(request, error)
        except SlurmCommandError:
            failed = True
            messages.error(request, _("Slurm's controller did not answer; nothing was changed."))
    context = {
        "extension": extension,
        "view": panel.job_view(extension.job_id, cluster=extension.cluster, hours=extension.hours),
        "granted": panel.totals(extension),
        "policy": Policy.from_settings(),
        "may_decide": powers.may(request.user, DECIDE),
        "accept_form": bound.get("accept") or forms.AcceptForm(),
        "refuse_form": bound.get("refuse") or forms.RefuseForm(),
    }
    return render(request, "extensions/staff_detail.html", context, status=400 if bound or failed else 200)
