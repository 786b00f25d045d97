"""A generated walk over every form the portal renders, and over every page's query string: no 5xx.

For the owner and for staff, every route their rule lets them GET is fetched; each HTML form on it
is read (stdlib HTMLParser) and submitted again and again, one field at a time and all at once,
with values built to break parsers: empty, huge and negative numbers, NaN and infinities, dates at
year 1 and 9999 or that do not exist, NUL bytes, line breaks, formula and markup injection,
deep nesting, very long text, and hostile files for file inputs. Every route is also requested
with hostile values for the query parameters the portal's pages read. The bar: no answer >= 500.
The API's JSON endpoints are fuzzed from their OpenAPI schema by tests/integration/test_api_fuzz.py.

Django's admin (its own forms, tested upstream) and the sign-out form (it would end the walk's
session) are left out. The values are drawn with a fixed seed: a failure is reproducible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from test_access import ALLOWED, all_routes, concrete_url, samples

pytestmark = pytest.mark.django_db(databases=["default", "slurm", "robinhood"])

HOSTILE = [
    "",
    " ",
    "0",
    "-1",
    "-99999999999999999999",
    "99999999999999999999999999",
    "1e309",
    "-1e309",
    "NaN",
    "Infinity",
    "0.1e-400",
    "0001-01-01",
    "9999-12-31",
    "0001-01-01T00:00",
    "9999-12-31T23:59",
    "2026-02-30",
    "2026-13-01T25:61",
    "253402300800",
    "-62135596801",
    "\x00",
    "a\x00b",
    "line\nbreak",
    "comp\n",
    "\r\n",
    "=1+1+cmd|' /C calc'!A0",
    "@SUM(1+1)",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    '"; DROP TABLE x; --',
    "../../../../etc/passwd",
    "%s%s%s%n",
    "{{7*7}}",
    "[" * 2000,
    "{" * 2000,
    "é𝕏\u202e\ufeff",
    "x" * 100_000,
    "a,b,,c,,,",
    "-",
    "true",
    "null",
]
FILES = [b"", b"\x00\xff\xfe" * 1000, b"[" * 100_000 + b"\n", ("\u00e9" * 50_000).encode(), b"print(1)\n" * 20_000]
# Query parameters the portal's pages and graph endpoints read.
QUERY_PARAMS = (
    "delta", "start", "end", "before", "window", "page", "q", "sort", "archived", "status", "date_from",
    "date_to", "cluster", "format", "account", "user", "gpu_type", "days", "month", "year", "limit", "offset",
    "search", "state", "partition", "node", "step", "period", "next", "lang",
)  # fmt: skip
PER_FIELD = 5  # hostile values tried for each field, the others keeping their defaults
WHOLE_FORM = 4  # submissions with every field hostile at once
QUERY_VARIANTS = 3


@dataclass
class Field:
    name: str
    kind: str  # input type, "textarea" or "select"
    value: str = ""
    options: list[str] = field(default_factory=list)


@dataclass
class Form:
    action: str
    method: str
    multipart: bool
    fields: list[Field] = field(default_factory=list)

    def key(self) -> tuple[str, str, tuple[str, ...]]:
        return (urlsplit(self.action).path, self.method, tuple(sorted(f.name for f in self.fields)))


class FormParser(HTMLParser):
    """Every <form> of a page with its named inputs, textareas and selects."""

    def __init__(self, page_url: str) -> None:
        super().__init__(convert_charrefs=True)
        self.page_url = page_url
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._field: Field | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._form = Form(
                action=urljoin(self.page_url, attr.get("action") or self.page_url),
                method=(attr.get("method") or "get").lower(),
                multipart="multipart" in attr.get("enctype", ""),
            )
            self.forms.append(self._form)
        elif self._form is not None and attr.get("name"):
            if tag == "input" and attr.get("type", "text") not in ("submit", "button", "image", "reset"):
                kind = attr.get("type", "text")
                if (
                    kind in ("checkbox", "radio")
                    and "checked" not in attr
                    and any(f.name == attr["name"] for f in self._form.fields)
                ):
                    return
                self._form.fields.append(Field(attr["name"], kind, attr.get("value", "")))
            elif tag in ("textarea", "select"):
                self._field = Field(attr["name"], tag)
                self._form.fields.append(self._field)
        elif tag == "option" and self._field is not None:
            value = attr.get("value", "")
            self._field.options.append(value)
            if "selected" in attr or not self._field.value:
                self._field.value = value

    def handle_data(self, data: str) -> None:
        if self._field is not None and self._field.kind == "textarea":
            self._field.value += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag in ("textarea", "select"):
            self._field = None


def forms_of(url: str, html: str) -> list[Form]:
    parser = FormParser(url)
    parser.feed(html)
    return [form for form in parser.forms if "logout" not in form.action and "/admin/" not in form.action]


def hostile_value(f: Field, rng: random.Random) -> object:
    if f.kind == "file":
        return SimpleUploadedFile(rng.choice(["x.py", "../../x.py", "x\x00.py", "é.csv", ""]) or "f", rng.choice(FILES))
    return rng.choice(HOSTILE)


def data_of(form: Form, overrides: dict[str, object]) -> dict[str, object]:
    data: dict[str, object] = {}
    for f in form.fields:
        value = overrides.get(f.name, f.value)
        if f.kind == "file" and f.name not in overrides:
            continue
        data[f.name] = value
    return data


def variants(form: Form, rng: random.Random) -> list[dict[str, object]]:
    out = [data_of(form, {})]
    for f in form.fields:
        if f.kind == "hidden" and f.name == "csrfmiddlewaretoken":
            continue
        for _ in range(PER_FIELD):
            out.append(data_of(form, {f.name: hostile_value(f, rng)}))
    for _ in range(WHOLE_FORM):
        out.append(
            data_of(form, {f.name: hostile_value(f, rng) for f in form.fields if f.name != "csrfmiddlewaretoken"})
        )
    return out


def submit(client: Client, form: Form, data: dict[str, object]):
    path = urlsplit(form.action).path
    if form.method == "post":
        return client.post(path, data)
    return client.get(path, {k: v for k, v in data.items() if isinstance(v, str)})


def describe(response) -> str:
    exc = getattr(response, "exc_info", None)
    return f"{response.status_code} {exc[1]!r}" if exc else str(response.status_code)


@pytest.mark.parametrize("persona", ["owner", "staff"])
def test_no_form_and_no_query_string_gets_a_server_error(personas, prom, persona):
    client = Client(raise_request_exception=False)
    client.force_login(getattr(personas, persona))
    values = samples(personas)
    rng = random.Random(f"form-fuzz-{persona}")
    seen: set[tuple[str, str, tuple[str, ...]]] = set()
    failures: list[str] = []
    requests = forms_walked = 0
    for route, rule, _api in all_routes():
        if rule is None or persona not in ALLOWED[rule] or route.startswith("admin/"):
            continue
        url = concrete_url(route, values)
        page = client.get(url)
        requests += 1
        if page.status_code >= 500:
            failures.append(f"GET {url} -> {describe(page)}")
            continue
        for _ in range(QUERY_VARIANTS):
            query = {name: rng.choice(HOSTILE) for name in QUERY_PARAMS}
            response = client.get(urlsplit(url).path, query)
            requests += 1
            if response.status_code >= 500:
                failures.append(f"GET {urlsplit(url).path} {query!r:.300} -> {describe(response)}")
        if "html" not in page.headers.get("Content-Type", ""):
            continue
        for form in forms_of(url, page.content.decode("utf-8", "replace")):
            if form.key() in seen:
                continue
            seen.add(form.key())
            forms_walked += 1
            for data in variants(form, rng):
                response = submit(client, form, data)
                requests += 1
                if response.status_code >= 500:
                    shown = {k: (v if isinstance(v, str) else "<file>")[:80] for k, v in data.items()}
                    failures.append(f"{form.method.upper()} {form.action} {shown!r} -> {describe(response)}")
                client.force_login(getattr(personas, persona))  # a form may have changed the session
    assert forms_walked >= (12 if persona == "staff" else 4), forms_walked
    assert requests > 300
    assert failures == [], f"{len(failures)} of {requests} requests failed:\n" + "\n".join(failures[:40])
