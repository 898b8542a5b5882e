"""Page routes of this app."""

from django.urls import path

from molecules import views

urlpatterns = [
    path("molecules/", views.molecule_list, name="molecules"),
    path("molecules/new/", views.molecule_create, name="molecule-create"),
    path("molecules/<int:pk>/", views.molecule_detail, name="molecule-detail"),
    path("molecules/<int:pk>/edit/", views.molecule_edit, name="molecule-edit"),
    path("molecules/<int:pk>/delete/", views.molecule_delete, name="molecule-delete"),
]
