"""Page routes of this app."""

from django.urls import path

from clusters import views

urlpatterns = [
    path("clusters/", views.cluster_list, name="clusters"),
    path("clusters/new/", views.cluster_create, name="cluster-create"),
    path("clusters/<int:pk>/", views.cluster_detail, name="cluster-detail"),
    path("clusters/<int:pk>/edit/", views.cluster_edit, name="cluster-edit"),
    path("clusters/<int:pk>/status/", views.cluster_status, name="cluster-status"),
    path("clusters/<int:pk>/key/", views.key_page, name="cluster-key"),
    path("clusters/<int:pk>/keys/", views.key_create, name="cluster-key-create"),
    path("clusters/<int:pk>/keys/<int:key_pk>/<slug:action>/", views.key_action, name="cluster-key-action"),
    path("clusters/<int:pk>/<slug:action>/", views.cluster_switch, name="cluster-switch"),
]
