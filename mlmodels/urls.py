"""Page routes of this app."""

from django.urls import path

from mlmodels import views

urlpatterns = [
    path("models/", views.model_list, name="models"),
    path("models/new/", views.model_create, name="model-create"),
    path("models/<int:pk>/", views.model_detail, name="model-detail"),
    path("models/<int:pk>/edit/", views.model_edit, name="model-edit"),
    path("models/<int:pk>/delete/", views.model_delete, name="model-delete"),
    path("models/<int:pk>/<str:action>/", views.model_action, name="model-action"),
]
