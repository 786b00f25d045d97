"""The jobstats command's page: how to run ``jobstats <jobid>`` on a login node, and the user's personal token.

A user creates (or replaces) and revokes their own read-only token here; the key is shown once,
with the line that stores it in ``~/.config/userportal/token`` (mode 0600). Only the signed-in
user's own token: staff cannot create one for someone else.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from userportal.audit import audit
from userportal.tokens import issue_personal_token, personal_tokens, revoke_personal_tokens

TOKEN_FILE = "~/.config/userportal/token"  # noqa: S105 (a path, not a secret)


def store_line(key: str) -> str:
    """The shell line that writes `key` to TOKEN_FILE, readable by its owner only (a new file, umask 077)."""
    return (
        "mkdir -p ~/.config/userportal && (umask 077 && rm -f ~/.config/userportal/token && "
        f"printf '%s\\n' '{key}' > ~/.config/userportal/token)"
    )


@never_cache
@require_http_methods(["GET", "POST"])
def command(request: HttpRequest) -> HttpResponse:
    # The row itself: request.user is a lazy proxy, which a new token's foreign key refuses.
    user = get_user_model().objects.get(username=request.user.get_username())
    context: dict[str, Any] = {
        "portal_url": request.build_absolute_uri("/").rstrip("/"),
        "token_file": TOKEN_FILE,
        "key": None,
        "store_line": "",
        "message": "",
    }
    if request.method == "POST":
        action = request.POST.get("action", "")
        if action == "create":
            token, key = issue_personal_token(user)
            audit("jobstats.personal_token_create", request=request, target=f"user:{user.get_username()}",
                  extra={"prefix": token.prefix})  # fmt: skip
            context.update(key=key, store_line=store_line(key), created=token)
        elif action == "revoke":
            count = revoke_personal_tokens(user)
            audit("jobstats.personal_token_revoke", request=request, target=f"user:{user.get_username()}",
                  extra={"count": count})  # fmt: skip
            return redirect("jobstats:command")
        else:
            return render(request, "400.html", {"message": _("Unknown action.")}, status=400)
    context["tokens"] = personal_tokens(user)
    return render(request, "jobstats/command.html", context)
