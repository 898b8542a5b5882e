"""The Clusters pages: the list, a cluster's page with its resource graphs and API keys,
adding a cluster (ending on its agent's ready-to-paste configuration) and editing one.

Everyone signed in sees clusters and their graphs; only admins add, edit, enable and
disable them and manage their keys (``accounts.permissions.can_manage_clusters``), which
``clusters.services`` asks once more. A key's text is shown once: it travels from the
POST that made it to the key page in the server-side session, is removed from there when
that page is shown, and never appears in a URL or a log.
"""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts import permissions as perms
from calculations.states import ACTIVE
from clusters import services
from clusters.api import WINDOWS
from clusters.filters import ClusterFilter
from clusters.forms import ApiKeyForm, ClusterForm
from clusters.models import MISSED_INTERVALS, ApiKey, Cluster
from siestaflow.forms import run_service

NEW_KEY = "clusters_new_key"  # session entry holding a key's text until the key page shows it
PAGE_SIZE = 50
WORK_DIR = "/scratch/siestaflow"
AGENT_PREFIX = "/opt/siestaflow-agent"


def clusters_with_activity():
    """Clusters with the number of calculations their agents work on now, in one query: a
    count per cluster on the (cluster, state) index, not a join of every calculation."""
    from calculations.models import Calculation  # calculations depends on clusters

    active = (Calculation.objects.filter(cluster=OuterRef("pk"), state__in=ACTIVE).order_by()
              .values("cluster").annotate(n=Count("pk")).values("n"))
    return Cluster.objects.annotate(active=Coalesce(Subquery(active), 0)).order_by("name")


@perms.require(perms.can_use_science)
def cluster_list(request):
    """Every cluster: online or not, heartbeat age, enabled, running over its cap."""
    filterset = ClusterFilter(request.GET, queryset=clusters_with_activity())
    clusters = filterset.qs if filterset.is_valid() else Cluster.objects.none()
    page = Paginator(clusters, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "clusters/cluster_list.html", {
        "filter": filterset, "page": page, "can_manage": perms.can_manage_clusters(request.user)})


@perms.require(perms.can_use_science)
def cluster_detail(request, pk):
    """A cluster: what its agent reports, resource graphs; for admins its keys and switches."""
    cluster = get_object_or_404(clusters_with_activity(), pk=pk)
    can_manage = perms.can_manage_clusters(request.user)
    keys = cluster.api_keys.select_related("created_by") if can_manage else None
    return render(request, "clusters/cluster_detail.html", {
        "cluster": cluster, "can_manage": can_manage, "keys": keys, "key_form": ApiKeyForm(),
        "windows": list(WINDOWS), "silence": cluster.heartbeat_interval * MISSED_INTERVALS})


@never_cache
@perms.require(perms.can_manage_clusters)
def cluster_create(request):
    """Add a cluster and its first API key; then the key page shows how to start its agent."""
    form = ClusterForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        created = run_service(form, lambda: _create_with_key(request.user, form.cleaned_data))
        if created:
            _stash_key(request, *created)
            return redirect("cluster-key", pk=created[0].pk)
    return render(request, "clusters/cluster_form.html", {"form": form, "cluster": None},
                  status=400 if form.errors else 200)


@transaction.atomic
def _create_with_key(actor, data) -> tuple[Cluster, ApiKey, str]:
    cluster = services.create_cluster(actor=actor, **data)
    key, text = services.create_key(actor=actor, cluster=cluster, name="agent")
    return cluster, key, text


@perms.require(perms.can_manage_clusters)
def cluster_edit(request, pk):
    """Change a cluster's name, description, limits and approval rule."""
    cluster = get_object_or_404(Cluster, pk=pk)
    form = ClusterForm(request.POST if request.method == "POST" else None, instance=Cluster.objects.get(pk=pk))
    if request.method == "POST" and form.is_valid():
        if run_service(form, lambda: services.update_cluster(actor=request.user, cluster=cluster,
                                                             **form.cleaned_data)):
            messages.success(request, f"Cluster {cluster.name} saved.")
            return redirect("cluster-detail", pk=pk)
    return render(request, "clusters/cluster_form.html", {"form": form, "cluster": cluster},
                  status=400 if form.errors else 200)


@require_POST
@perms.require(perms.can_manage_clusters)
def cluster_switch(request, pk, action):
    """Enable or disable a cluster: a disabled one gets no new work."""
    if action not in ("enable", "disable"):
        raise PermissionDenied
    cluster = get_object_or_404(Cluster, pk=pk)
    services.set_enabled(actor=request.user, cluster=cluster, enabled=action == "enable")
    messages.success(request, f"Cluster {cluster.name} {action}d.")
    return redirect("cluster-detail", pk=pk)


@require_POST
@perms.require(perms.can_manage_clusters)
def key_create(request, pk):
    """A new API key for the cluster, shown once on the key page."""
    cluster = get_object_or_404(Cluster, pk=pk)
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the key a name of at most 100 characters.")
        return redirect("cluster-detail", pk=pk)
    key, text = services.create_key(actor=request.user, cluster=cluster, name=form.cleaned_data["name"])
    _stash_key(request, cluster, key, text)
    return redirect("cluster-key", pk=pk)


@require_POST
@perms.require(perms.can_manage_clusters)
def key_action(request, pk, key_pk, action):
    """Revoke a key, or rotate it (revoke it and make a new one of the same name)."""
    key = get_object_or_404(ApiKey.objects.select_related("cluster"), pk=key_pk, cluster_id=pk)
    if action == "revoke":
        services.revoke_key(actor=request.user, key=key)
        messages.success(request, f"Key {key.name} ({key.prefix}) revoked.")
        return redirect("cluster-detail", pk=pk)
    if action != "rotate":
        raise PermissionDenied
    try:
        new, text = services.rotate_key(actor=request.user, key=key)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("cluster-detail", pk=pk)
    _stash_key(request, key.cluster, new, text)
    return redirect("cluster-key", pk=pk)


@never_cache
@perms.require(perms.can_manage_clusters)
def key_page(request, pk):
    """The new key, this once, with the agent's configuration and install commands; then
    the agent's first heartbeat shows up here. Reloading shows no key any more."""
    cluster = get_object_or_404(Cluster, pk=pk)
    stash = request.session.get(NEW_KEY)
    text = key = None
    if stash and stash["cluster"] == cluster.pk:
        del request.session[NEW_KEY]
        text, key = stash["text"], ApiKey.objects.filter(pk=stash["key"]).first()
    return render(request, "clusters/key_created.html", {
        "cluster": cluster, "key": key, "key_text": text,
        "config": agent_config(cluster, text) if text else None, "install": install_commands()})


@never_cache
@require_GET
@perms.require(perms.can_use_science)
def cluster_status(request, pk):
    """Whether the cluster's agent is heard from: polled by the key page every 2 s."""
    cluster = get_object_or_404(Cluster, pk=pk)
    age = cluster.heartbeat_age()
    return JsonResponse({
        "online": cluster.is_online, "last_heartbeat_at": cluster.last_heartbeat_at,
        "heartbeat_age": None if age is None else round(age, 1), "agent_version": cluster.agent_version,
        "enabled": cluster.enabled})


# --- helpers ------------------------------------------------------------------------------


def _stash_key(request, cluster: Cluster, key: ApiKey, text: str) -> None:
    request.session[NEW_KEY] = {"cluster": cluster.pk, "key": key.pk, "text": text}


def _toml(text: str) -> str:
    # A JSON string of ASCII text is a valid TOML basic string (same escapes).
    return json.dumps(text, ensure_ascii=True)


def agent_config(cluster: Cluster, key_text: str) -> str:
    """A ready-to-paste ``agent.toml`` for this cluster (keys as in agent/README.md)."""
    return "\n".join([
        f"# siestaflow agent of cluster {_toml(cluster.name)}: /etc/siestaflow/agent.toml, readable by",
        "# the agent's user only. Reference of every key: agent/README.md.",
        f"api_url = {_toml(settings.SITE_URL)}",
        f"api_key = {_toml(key_text)}",
        f"work_dir = {_toml(WORK_DIR)}            # calculation folders and the agent's databases",
        f"heartbeat_interval = {cluster.heartbeat_interval}",
        f"max_concurrent = {cluster.max_concurrent}",
        'executor = "local"                     # or "slurm", with a [slurm] table',
        "",
        "[engines]                              # command templates",
        'siesta = "mpirun -np {ntasks} siesta"',
        'tbtrans = "mpirun -np {ntasks} tbtrans"',
        'pyscf = "{python} -m siestaflow_agent.engines.pyscf_run"',
        "",
    ])


def install_commands() -> str:
    """Shell lines, run as the agent's user: install the agent from a siestaflow checkout,
    write the configuration readable by that user only, check it and start the agent."""
    agent = f"{AGENT_PREFIX}/bin/siestaflow-agent"
    return "\n".join([
        f"python3 -m venv {AGENT_PREFIX}",
        f"{AGENT_PREFIX}/bin/pip install ./agent        # './agent[pyscf]' for the PySCF engine",
        "install -d -m 0700 /etc/siestaflow",
        "(umask 077; cat > /etc/siestaflow/agent.toml)  # paste the configuration, then Ctrl-D",
        f"{agent} check --config /etc/siestaflow/agent.toml",
        f"{agent} run --config /etc/siestaflow/agent.toml    # or the systemd unit of agent/README.md",
    ])
