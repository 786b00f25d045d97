"""notes URLs: staff only, pages and the read API."""

from django.urls import path

from notes import api, views
from userportal.access import Rule, guard

app_name = "notes"

urlpatterns = [
    guard(Rule.STAFF, path("secure/notes/", views.index, name="index")),
    guard(Rule.STAFF, path("secure/notes/new/", views.new, name="new")),
    guard(Rule.STAFF, path("secure/notes/<int:note_id>/", views.detail, name="detail")),
    guard(Rule.STAFF, path("secure/notes/<int:note_id>/edit/", views.edit, name="edit")),
    guard(Rule.STAFF, path("secure/notes/<int:note_id>/delete/", views.delete, name="delete")),
    guard(Rule.STAFF, path("api/notes/", api.NoteList.as_view(), name="api-list")),
    guard(Rule.STAFF, path("api/notes/<int:note_id>/", api.NoteDetail.as_view(), name="api-detail")),
]
