"""The French and Thai catalogues in locale/ are complete, consistent and compiled.

The .po files are read with the small parser below (no third-party package), the .mo files with the
standard library's gettext, and the run-time check goes through Django's own translation machinery.
No database is needed.
"""

from __future__ import annotations

import gettext
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.utils import translation

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
LANGUAGES = ("fr", "th")
PLURAL_FORMS = {
    "fr": "nplurals=2; plural=(n > 1);",
    "th": "nplurals=1; plural=0;",
}

# %(name)s, %s, %d and friends (after removing the escaped %%), and {name} / {0} / {} fields.
NAMED = re.compile(r"%\((\w+)\)[#0 +-]?\d*(?:\.\d+)?[sdifr]")
POSITIONAL = re.compile(r"%[#0 +-]?\d*(?:\.\d+)?[sdifr]")
BRACES = re.compile(r"\{[^{}\s]*\}")
TAG = re.compile(r"</?([a-zA-Z][a-zA-Z0-9]*)\b[^>]*>")


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)  # a singular entry uses index 0
    flags: set[str] = field(default_factory=set)
    line: int = 0

    @property
    def label(self) -> str:
        return f"line {self.line}: {self.msgid!r}"


def _unquote(text: str) -> str:
    """The value of one PO string literal, C escapes resolved."""
    text = text.strip()
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise ValueError(f"not a PO string: {text}")
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(0)), text[1:-1])


def parse_po(path: Path) -> list[Entry]:
    """Every non-obsolete entry of a .po file, header (msgid "") included."""
    entries: list[Entry] = []
    current: Entry | None = None
    target: tuple[str, int] | None = None  # the field that continuation lines extend

    def finish() -> None:
        nonlocal current, target
        if current is not None:
            entries.append(current)
        current, target = None, None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):  # obsolete entry
            continue
        if line.startswith("#"):
            if current is not None and target is not None:  # a comment starts the next entry
                finish()
            if current is None:
                current = Entry(line=number)
            if line.startswith("#,"):
                current.flags.update(flag.strip() for flag in line[2:].split(",") if flag.strip())
            continue
        if line.startswith('"'):
            if current is None or target is None:
                raise ValueError(f"{path}:{number}: a string outside any entry")
            name, index = target
            if name == "msgstr":
                current.msgstr[index] += _unquote(line)
            else:
                setattr(current, name, getattr(current, name) + _unquote(line))
            continue
        keyword, _, value = line.partition(" ")
        if keyword in ("msgctxt", "msgid") and current is not None and target is not None and target[0] == "msgstr":
            finish()
        if current is None:
            current = Entry(line=number)
        if keyword in ("msgctxt", "msgid", "msgid_plural"):
            setattr(current, keyword, _unquote(value))
            target = (keyword, 0)
        elif match := re.fullmatch(r"msgstr(?:\[(\d+)\])?", keyword):
            index = int(match.group(1) or 0)
            current.msgstr[index] = _unquote(value)
            target = ("msgstr", index)
        else:
            raise ValueError(f"{path}:{number}: cannot parse {raw!r}")
    finish()
    return entries


def split_header(entries: list[Entry]) -> tuple[dict[str, str], list[Entry]]:
    header = [entry for entry in entries if entry.msgid == "" and entry.msgctxt is None]
    assert len(header) == 1, "the catalogue has no header entry"
    fields = dict(line.split(":", 1) for line in header[0].msgstr.get(0, "").splitlines() if ":" in line)
    metadata = {key.strip(): value.strip() for key, value in fields.items()}
    metadata["#flags"] = ",".join(sorted(header[0].flags))
    return metadata, [entry for entry in entries if entry is not header[0]]


def placeholders(text: str) -> tuple[frozenset[str], tuple[str, ...], tuple[str, ...]]:
    text = text.replace("%%", "")
    named = frozenset(NAMED.findall(text))
    positional = tuple(POSITIONAL.findall(NAMED.sub("", text)))
    return named, positional, tuple(sorted(BRACES.findall(text)))


def tags(text: str) -> Counter[str]:
    return Counter(match.lower() for match in TAG.findall(text))


def catalogues(language: str) -> list[Path]:
    folder = LOCALE_DIR / language / "LC_MESSAGES"
    found = sorted(folder.glob("*.po"))
    assert folder / "django.po" in found, f"{folder}/django.po is missing: run `make messages`"
    return found


@pytest.fixture(params=LANGUAGES)
def language(request) -> str:
    return request.param


def test_header_names_the_language_and_its_plural_forms(language):
    for po in catalogues(language):
        metadata, _entries = split_header(parse_po(po))
        assert "fuzzy" not in metadata["#flags"], f"{po}: the header is still fuzzy"
        assert metadata.get("Language") == language, po
        assert metadata.get("Content-Type") == "text/plain; charset=UTF-8", po
        assert metadata.get("Language-Team"), po
        assert "LANGUAGE" not in metadata["Language-Team"], f"{po}: Language-Team is still the template's"
        assert metadata.get("Plural-Forms") == PLURAL_FORMS[language], po


def test_no_entry_is_fuzzy_or_untranslated(language):
    nplurals = int(re.search(r"nplurals=(\d+)", PLURAL_FORMS[language]).group(1))
    for po in catalogues(language):
        _metadata, entries = split_header(parse_po(po))
        assert entries, f"{po} has no entries"
        problems = []
        for entry in entries:
            if "fuzzy" in entry.flags:
                problems.append(f"fuzzy: {entry.label}")
            expected = set(range(nplurals)) if entry.msgid_plural is not None else {0}
            if set(entry.msgstr) != expected:
                problems.append(f"plural forms {sorted(entry.msgstr)} instead of {sorted(expected)}: {entry.label}")
            if not all(entry.msgstr.values()):
                problems.append(f"empty msgstr: {entry.label}")
        assert not problems, f"{po}:\n" + "\n".join(problems)


def test_translations_keep_placeholders_and_tags(language):
    for po in catalogues(language):
        _metadata, entries = split_header(parse_po(po))
        problems = []
        for entry in entries:
            sources = [entry.msgid] + ([entry.msgid_plural] if entry.msgid_plural is not None else [])
            # a translation may follow either the singular or the plural source (Thai has one form for both)
            wanted = {placeholders(source) for source in sources}
            wanted_tags = [tags(source) for source in sources]
            for index, text in entry.msgstr.items():
                if placeholders(text) not in wanted:
                    problems.append(f"msgstr[{index}] placeholders {placeholders(text)} != {wanted}: {entry.label}")
                if tags(text) not in wanted_tags:
                    problems.append(f"msgstr[{index}] HTML tags differ: {entry.label}")
        assert not problems, f"{po}:\n" + "\n".join(problems)


def test_compiled_catalogue_matches_the_po(language):
    """The committed .mo holds exactly what the .po says, so `compilemessages` was run after the last edit.

    This compares contents rather than modification times: a fresh git clone writes django.mo just before
    django.po, so an mtime check would fail on every clean checkout.
    """
    for po in catalogues(language):
        mo = po.with_suffix(".mo")
        assert mo.exists(), f"{mo} is missing: run `make messages`"
        _metadata, entries = split_header(parse_po(po))
        expected: dict[object, str] = {}
        for entry in entries:
            key = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
            if entry.msgid_plural is None:
                expected[key] = entry.msgstr[0]
            else:
                expected.update({(key, index): text for index, text in entry.msgstr.items()})
        with mo.open("rb") as handle:
            compiled = dict(gettext.GNUTranslations(handle)._catalog)
        compiled.pop("", None)
        assert compiled == expected, f"{mo} is stale: run `make messages` (or compilemessages)"


@pytest.mark.parametrize(
    ("language_code", "sign_out", "sign_in", "jobs"),
    [("fr", "Se déconnecter", "Se connecter", "Tâches"), ("th", "ออกจากระบบ", "เข้าสู่ระบบ", "งาน")],
)
def test_django_translates_at_run_time(language_code, sign_out, sign_in, jobs):
    with translation.override(language_code):
        assert translation.gettext("Sign out") == sign_out
        assert translation.gettext("Sign in") == sign_in
        assert translation.gettext("Jobs") == jobs


def test_plural_forms_work_at_run_time():
    singular, plural = "%(counter)s job, newest first.", "%(counter)s jobs, newest first."
    with translation.override("fr"):
        assert translation.ngettext(singular, plural, 1) % {"counter": 1} == "1 tâche, la plus récente en premier."
        assert translation.ngettext(singular, plural, 2) % {"counter": 2} == "2 tâches, les plus récentes en premier."
    with translation.override("th"):
        for count in (1, 2):
            assert translation.ngettext(singular, plural, count) % {"counter": count} == f"{count} งาน เรียงจากใหม่ไปเก่า"
