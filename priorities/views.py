"""Pages of the priorities module: thin views over priorities.services."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from priorities import bugzilla, forms, services
from priorities.mail import ticket_url
from priorities.models import ARCHIVED_STATUSES, PriorityRequest, Status
from priorities.policy import Policy, gpu_types, parse_usernames
from priorities.qos import automatic, commands
from priorities.timeline import gpu_timeline, timeline_summary
from slurm.sacctmgr import SacctmgrError
from slurm.visibility import accounts_of
from userportal import powers
from userportal.clusters import current_cluster


def index(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert user.is_authenticated  # Rule.LOGIN (urls.py)
    archived = request.GET.get("archived") == "1"
    # Everyone, staff included, sees their own and shared requests here; staff see all in the panel.
    priorities = services.requests_of(user)
    priorities = (
        priorities.filter(status__in=ARCHIVED_STATUSES)
        if archived
        else priorities.exclude(status__in=ARCHIVED_STATUSES)
    )
    return render(
        request,
        "priorities/index.html",
        {"priorities": list(priorities.order_by("-start")), "archived": archived, "apply_mode": automatic()},
    )


def policy(request: HttpRequest) -> HttpResponse:
    policy = Policy.from_settings()
    types = gpu_types()
    return render(
        request,
        "priorities/policy.html",
        {"policy": policy, "limits": policy.limits_for(types), "apply_mode": automatic()},
    )


@require_http_methods(["GET", "POST"])
def new(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert user.is_authenticated  # Rule.LOGIN (urls.py)
    cluster = current_cluster(request)
    username = user.get_username()
    types = gpu_types()
    form = forms.PriorityRequestForm(
        request.POST or None,
        username=username,
        cluster=cluster,
        accounts=accounts_of(username, cluster),
        gpu_types=types,
    )
    if request.method == "POST" and form.is_valid():
        try:
            priority = services.create_request(
                form.data_object, user=user, cluster=cluster, request=request, ticket_info=form.ticket_info
            )
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(name if name in form.fields else None, error)
        else:
            messages.success(request, _("Your request #%(id)d was sent to the staff.") % {"id": priority.pk})
            return redirect("priorities:index")
    policy = form.policy
    return render(
        request,
        "priorities/new.html",
        {"form": form, "policy": policy, "limits": policy.limits_for(types)},
        status=400 if form.errors else 200,
    )


def staff_list(request: HttpRequest) -> HttpResponse:
    params = {
        key: request.GET.get(key, "")
        for key in ("q", "status", "gpu_type", "account", "date_from", "date_to", "sort", "archived")
    }
    page = Paginator(services.staff_search(params), 50).get_page(request.GET.get("page"))
    accounts = PriorityRequest.objects.order_by("account").values_list("account", flat=True).distinct()
    types = PriorityRequest.objects.order_by("gpu_type").values_list("gpu_type", flat=True).distinct()
    return render(
        request,
        "priorities/staff_list.html",
        {
            "page": page,
            "params": params,
            "statuses": Status.choices,
            "accounts": list(accounts),
            "gpu_types": list(types),
            "apply_mode": automatic(),
            "alerts": services.staff_alerts(),
        },
    )


ACTIONS = {
    "accept": forms.AcceptForm,
    "refuse": forms.RefuseForm,
    "message": forms.MessageForm,
    "add_users": forms.UsersForm,
}


@require_http_methods(["GET", "POST"])
def staff_detail(request: HttpRequest, priority_id: int) -> HttpResponse:
    priority = get_object_or_404(
        PriorityRequest.objects.select_related("requester").prefetch_related("members", "messages"), pk=priority_id
    )
    actor = request.user.get_username()
    bound: dict[str, Form] = {}
    refused = False
    if request.method == "POST":
        # Plain staff read the request; deciding and changing it is a power (userportal.powers).
        powers.require(request.user, "priorities.change_priorityrequest")
        action = request.POST.get("action", "")
        form_class = ACTIONS.get(action)
        form = form_class(request.POST) if form_class else None
        try:
            if form is not None and not form.is_valid():
                bound[action] = form
            else:
                done = _run_action(request, priority, action, form.cleaned_data if form else {}, actor)
                if done == "deleted":
                    messages.success(request, _("Request #%(id)d was deleted.") % {"id": priority_id})
                    return redirect("priorities:staff")
                messages.success(request, done)
                return redirect("priorities:staff-detail", priority_id=priority.pk)
        except ValidationError as exc:
            if form is None:  # an action without a form (applied, removed, remove_user, delete) or an unknown one
                for error in exc.messages:
                    messages.error(request, error)
                refused = True
            else:
                for name, errors in getattr(exc, "message_dict", {None: exc.messages}).items():
                    for error in errors:
                        form.add_error(name if name in form.fields else None, error)
                bound[action] = form
        except SacctmgrError as exc:
            messages.error(request, _("sacctmgr failed: %(error)s") % {"error": exc})
            return redirect("priorities:staff-detail", priority_id=priority.pk)
    context = {
        "priority": priority,
        "ticket_notice": bugzilla.refresh(priority),  # the ticket's title, status and approval, if stale
        "bugzilla": bugzilla.configured(),
        "commands": commands(priority),
        "apply_mode": automatic(),
        "alerts": services.staff_alerts(),
        "history": priority.history.select_related("history_user").order_by("-history_date")[:50],
        "ticket_url": ticket_url(priority.ticket),
        "suggested_name": f"prio_{priority.account}_{priority.pk}".replace(".", "_")[:64],
        "may_decide": powers.may(request.user, "priorities.change_priorityrequest"),
    }
    for name, form_class in ACTIONS.items():
        context[f"{name}_form"] = bound.get(name) or form_class(
            initial={"qos_name": context["suggested_name"]} if name == "accept" else None
        )
    return render(request, "priorities/staff_detail.html", context, status=400 if bound or refused else 200)


def _run_action(request: HttpRequest, priority: PriorityRequest, action: str, data: dict[str, Any], actor: str) -> str:
    if action == "accept":
        services.accept(priority, qos_name=data["qos_name"], actor=actor, request=request)
        return _("Accepted as %(name)s.") % {"name": priority.qos_name}
    if action == "refuse":
        services.refuse(priority, reason=data["reason"], actor=actor, request=request)
        return _("Refused.")
    if action == "message":
        services.add_message(priority, text=data["text"], actor=actor, request=request)
        return _("Message added.")
    if action == "add_users":
        names = parse_usernames(data["users"])
        added = services.add_users(priority, usernames=names, actor=actor, request=request)
        return _("Users added: %(names)s.") % {"names": ", ".join(added) or "-"}
    if action == "remove_user":
        services.remove_user(priority, username=request.POST.get("username", ""), actor=actor, request=request)
        return _("User removed.")
    if action == "applied":
        services.mark_applied(priority, actor=actor, request=request)
        return _("Marked applied: the priority is active.")
    if action == "removed":
        services.mark_removed(priority, actor=actor, request=request)
        return _("Marked removed from Slurm.")
    if action == "delete":
        services.delete_request(priority, actor=actor, request=request)
        return "deleted"
    raise ValidationError(_("Unknown action."))


def timeline(request: HttpRequest) -> HttpResponse:
    cluster = current_cluster(request)
    data = gpu_timeline(cluster)
    return render(
        request,
        "priorities/timeline.html",
        {"timeline": data, "summary": timeline_summary(data), "cluster": cluster},
    )
