"""billing URLs under /billing/ (the seed's /formula kept as /billing/formula), each with its access rule."""

from django.urls import URLPattern, path

from billing import views
from billing.roles import READ
from userportal.access import Rule, guard

app_name = "billing"
# The staff pages: staff, and users holding billing.view_receipt (Slurm Operators and Administrators,
# billing.roles) read them; what changes something checks its own permission (billing.roles.may).

USER = "billing/users/<str:username>/"
RECEIPT = USER + "receipts/<int:receipt_id>"


def staff_page(pattern: URLPattern) -> URLPattern:
    return guard(Rule.STAFF_OR_PERMISSION, pattern, permission=READ)


urlpatterns = [
    guard(Rule.LOGIN, path("billing/", views.index, name="index")),
    # GET: anyone signed in; POST: staff (checked in the view, audited).
    guard(Rule.LOGIN, path("billing/formula", views.formula, name="formula")),
    guard(Rule.LOGIN, path("billing/playground/", views.playground, name="playground")),
    guard(Rule.LOGIN, path("billing/forecast/", views.forecasts, name="forecasts")),
    guard(Rule.OWNER, path(USER + "usage/", views.usage, name="usage")),
    guard(Rule.OWNER, path(USER + "usage.csv", views.usage_csv, name="usage_csv")),
    guard(Rule.OWNER, path(USER + "receipts/", views.receipts, name="receipts")),
    guard(Rule.OWNER, path(RECEIPT + "/", views.receipt, name="receipt")),
    guard(Rule.OWNER, path(RECEIPT + ".csv", views.receipt_csv, name="receipt_csv")),
    guard(Rule.OWNER, path(RECEIPT + "/print/", views.receipt_print, name="receipt_print")),
    guard(
        Rule.ACCOUNT_MEMBER,
        path("billing/accounts/<str:account>/forecast/", views.account_forecast, name="account_forecast"),
    ),
    guard(
        Rule.ACCOUNT_MEMBER,
        path("billing/accounts/<str:account>/balance.json", views.account_balance, name="account_balance"),
    ),
    staff_page(path("billing/staff/balance.json", views.balance, name="balance")),
    staff_page(path("billing/staff/rates/", views.staff_rates, name="staff_rates")),
    staff_page(path("billing/staff/usage/", views.staff_usage, name="staff_usage")),
    staff_page(path("billing/staff/usage.csv", views.staff_usage_csv, name="staff_usage_csv")),
    staff_page(path("billing/staff/receipts/", views.staff_receipts, name="staff_receipts")),
    staff_page(path("billing/staff/receipts/<int:receipt_id>/paid", views.mark_paid, name="mark_paid")),
    staff_page(path("billing/staff/paid.csv", views.paid_csv, name="paid_csv")),
    guard(Rule.STAFF, path("billing/staff/audit/", views.staff_audit, name="staff_audit")),
    guard(Rule.STAFF, path("billing/staff/audit.csv", views.staff_audit_csv, name="staff_audit_csv")),
    staff_page(path("billing/staff/charts/", views.staff_charts, name="staff_charts")),
    staff_page(path("billing/staff/charts.json", views.staff_charts_json, name="staff_charts_json")),
]
