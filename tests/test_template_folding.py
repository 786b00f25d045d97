"""Constant runs of template nodes (userportal.template_folding) render once per language, and pages are unchanged."""

from __future__ import annotations

import re
from unittest import mock

import pytest
from django.template import Context, Engine
from django.test import Client, override_settings
from django.utils import translation
from test_access import all_routes, concrete_url, samples

from userportal.template_folding import FoldedNode, constant

FOLDING = "userportal.template_folding.Loader"


def engine(**templates: str) -> Engine:
    return Engine(
        loaders=[(FOLDING, [("django.template.loaders.locmem.Loader", templates)])],
        libraries={"i18n": "django.templatetags.i18n", "static": "django.templatetags.static"},
    )


def folded_runs(template) -> list[FoldedNode]:
    return template.nodelist.get_nodes_by_type(FoldedNode)


def test_a_run_of_literal_tags_is_folded_and_variables_end_it():
    template = engine(
        page=(
            "{% load i18n static %}<p>{% translate 'Jobs' %} <a href=\"{% url 'home' %}\">x</a> "
            "<img src=\"{% static 'favicon.svg' %}\">{% blocktranslate %}No jobs yet.{% endblocktranslate %}</p>"
            "{{ name }}<i>{% translate 'Name' %}</i>"
        )
    ).get_template("page")
    runs = folded_runs(template)
    assert len(runs) == 2  # the load tag to the paragraph's end; the <i> after the variable
    with translation.override("en"):
        assert template.render(Context({"name": "<b>"})).endswith("&lt;b&gt;<i>Name</i>")


@pytest.mark.parametrize(
    "source",
    [
        "{% translate 'Jobs' as label %}",  # sets a variable
        "{% translate label %}",  # a variable
        "{% translate 'Jobs'|upper %}",  # a filter
        "{% url 'jobstats:user' username %}",  # an argument from the context
        "{% url 'home' as home %}",
        "{% static path %}",
        "{% static 'favicon.svg' as icon %}",
        "{% blocktranslate %}Jobs of {{ owner }}{% endblocktranslate %}",
        "{% blocktranslate with n=3 %}{{ n }} jobs{% endblocktranslate %}",
        "{% blocktranslate count counter=3 %}job{% plural %}jobs{% endblocktranslate %}",
        "{% csrf_token %}",
        "{% now 'Y' %}",
    ],
)
def test_what_depends_on_the_request_is_not_constant(source):
    template = engine(page="{% load i18n static %}" + source).get_template("page")
    assert not any(constant(node) for node in template.nodelist[1:])
    assert folded_runs(template) == []


def test_a_run_renders_once_per_language():
    template = engine(page="{% load i18n %}<p>{% translate 'Jobs' %}</p><p>{% translate 'Name' %}</p>").get_template(
        "page"
    )
    with mock.patch(
        "django.templatetags.i18n.TranslateNode.render", autospec=True, side_effect=lambda n, c: "t"
    ) as render:
        for language in ("en", "fr", "en", "fr", "th"):
            with translation.override(language):
                template.render(Context())
    assert render.call_count == 2 * 3  # two nodes, three languages


def test_folds_inside_if_and_for_branches():
    template = engine(
        page="{% load i18n %}{% if x %}<b>{% translate 'Jobs' %}</b>{% else %}<i>{% translate 'Name' %}</i>{% endif %}"
        "{% for i in items %}<li>{% translate 'Jobs' %}</li>{% endfor %}"
    ).get_template("page")
    assert len(folded_runs(template)) == 3
    with translation.override("fr"):
        assert template.render(Context({"x": False, "items": [1, 2]})) == "<i>Nom</i><li>Tâches</li><li>Tâches</li>"


def test_a_changed_setting_renders_again():
    template = engine(
        page="{% load static %}<img src=\"{% static 'a.svg' %}\"><img src=\"{% static 'b.svg' %}\">"
    ).get_template("page")
    before = template.render(Context())
    with override_settings(STATIC_URL="/elsewhere/"):
        after = template.render(Context())
    assert "/elsewhere/a.svg" in after and "/elsewhere/a.svg" not in before
    assert template.render(Context()) == before


CSRF = re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]+"')
NOW = re.compile(r"\d\d:\d\d(:\d\d(\.\d+)?)?")  # times of the request (admin forms' defaults, stamps)


def masked(response) -> str:
    return NOW.sub("now", CSRF.sub(r"\1", response.content.decode()))


@pytest.mark.django_db(databases=["default", "slurm", "robinhood"])
def test_every_page_is_the_same_html_with_and_without_folding(personas, settings):
    """Each HTML page as staff (English, French) and its owner (Thai), folded runs answered from what
    the other languages' requests left, against the same pages rendered without folding."""
    folding = settings.TEMPLATES[0]
    options = {key: value for key, value in folding["OPTIONS"].items() if key != "loaders"}
    plain = [{**folding, "APP_DIRS": True, "OPTIONS": options}]  # Django's default loaders
    values = samples(personas)
    urls = [concrete_url(route, values) for route, _rule, _api in all_routes()]
    clients = {}
    for persona, language in (("staff", "en"), ("staff", "fr"), ("owner", "th")):
        clients[persona, language] = Client(HTTP_ACCEPT_LANGUAGE=language)
        clients[persona, language].force_login(getattr(personas, persona))

    def pages() -> dict[tuple[str, str, str], str]:
        found = {}
        for (persona, language), client in clients.items():
            for url in urls:
                response = client.get(url)
                if response.status_code == 200 and "text/html" in response.headers.get("Content-Type", ""):
                    found[persona, language, url] = masked(response)
        return found

    with translation.override(translation.get_language()):  # the requests activate theirs: restored after
        pages()  # every language's runs rendered once
        folded = pages()  # then answered from the folds, whatever language filled them
        with override_settings(TEMPLATES=plain):
            unfolded = pages()
    assert folded.keys() == unfolded.keys()
    assert len(folded) > 80
    for key, html in folded.items():
        assert html == unfolded[key], key
