"""Page routes of this app."""

from django.urls import path

from calculations import views

urlpatterns = [
    path("analyses/", views.analyses, name="analyses"),
    path("analyses/compare/", views.analyses_compare, name="analyses-compare"),
    path("analyses/compare/<slug:kind>.svg", views.analyses_compare_plot, name="analyses-compare-plot"),
    path("calculations/", views.calculation_list, name="calculations"),
    path("calculations/new/", views.calculation_create, name="calculation-create"),
    path("calculations/<int:pk>/", views.calculation_detail, name="calculation-detail"),
    path("calculations/<int:pk>/edit/", views.calculation_edit, name="calculation-edit"),
    path("calculations/<int:pk>/progress/", views.calculation_progress, name="calculation-progress"),
    path("calculations/<int:pk>/actions/<slug:action>/", views.calculation_action, name="calculation-action"),
    path("calculations/<int:pk>/artifacts/<int:artifact_id>/", views.calculation_artifact,
         name="calculation-artifact"),
    path("calculations/<int:pk>/download/<slug:what>.<slug:fmt>", views.calculation_download,
         name="calculation-download"),
    path("calculations/<int:pk>/report/", views.calculation_report, name="calculation-report"),
    path("calculations/<int:pk>/report.pdf", views.calculation_report_pdf, name="calculation-report-pdf"),
    path("calculations/<int:pk>/report.zip", views.calculation_report_zip, name="calculation-report-zip"),
    path("logs/", views.logs, name="logs"),
    path("logs/feed/", views.logs_feed, name="logs-feed"),
    path("logs/delete/", views.logs_delete, name="logs-delete"),
]
