"""How an agent proves which cluster it drives: ``Authorization: Api-Key sfk_<prefix>_<secret>``.

The agent routes use only :class:`ClusterKeyAuthentication`, so a user's JWT or session
is refused there; and no user route accepts a key. The principal of an agent,
:class:`AgentPrincipal`, is authenticated but holds no user rights: it is not active and
has no role, so every predicate of ``accounts.permissions`` answers no for it.
"""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission

from clusters.models import ApiKey, Cluster, hash_key

KEYWORD = "Api-Key"
# last_used_at is written at most this often per key: no write per request.
LAST_USED_PRECISION = timedelta(minutes=1)
# A valid key's hash, compared against when the prefix is unknown, so both paths take as long.
_DUMMY_HASH = hash_key("sfk_000000000000_unknown")


class AgentPrincipal:
    """``request.user`` on the agent routes: the cluster and the key that signed the request.

    Authenticated, but with no user rights at all: not active, no role, no staff flags.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = False
    is_staff = False
    is_superuser = False
    role = None
    pk = None
    id = None

    def __init__(self, cluster: Cluster, key: ApiKey) -> None:
        self.cluster = cluster
        self.key = key

    def __str__(self) -> str:
        return f"agent of {self.cluster.name}"

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def has_perms(self, perm_list, obj=None) -> bool:
        return False

    def has_module_perms(self, app_label) -> bool:
        return False


class ClusterKeyAuthentication(BaseAuthentication):
    """``Authorization: Api-Key <key>``: the key's cluster, or 401."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD.lower().encode():
            return None  # not ours: the request stays anonymous, and is refused with 401
        if len(parts) != 2:
            raise AuthenticationFailed("Invalid Authorization header: give 'Api-Key <key>'.")
        try:
            text = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid API key.") from None
        key = self.key_for(text)
        return AgentPrincipal(key.cluster, key), key

    def key_for(self, text: str) -> ApiKey:
        """The key of this text: found by its prefix, its hash compared in constant time."""
        scheme, _, rest = text.partition("_")
        prefix, _, _secret = rest.partition("_")
        key = None
        if scheme == ApiKey.PREFIX and prefix:
            try:  # get(), not first(): the prefix is unique, and ordering costs every agent request
                key = ApiKey.objects.select_related("cluster").get(prefix=prefix)
            except ApiKey.DoesNotExist:
                pass
        stored = key.key_hash if key is not None else _DUMMY_HASH
        if not hmac.compare_digest(hash_key(text), stored) or key is None:
            raise AuthenticationFailed("Invalid API key.")
        if key.is_revoked:
            raise AuthenticationFailed("API key revoked")
        self._touch(key)
        return key

    @staticmethod
    def _touch(key: ApiKey) -> None:
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now

    def authenticate_header(self, request) -> str:
        return KEYWORD


class IsClusterAgent(BasePermission):
    """Only an agent signed in with its cluster's key."""

    message = "An agent's cluster API key is required."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, AgentPrincipal)


class ClusterKeyScheme(OpenApiAuthenticationExtension):
    """The API-key scheme in the OpenAPI schema."""

    target_class = "clusters.authentication.ClusterKeyAuthentication"
    name = "clusterApiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "A cluster's key: `Api-Key sfk_<prefix>_<secret>`."}
