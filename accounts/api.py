"""REST endpoints for users and for signing in with JWT.

``/api/auth/token/`` answers the access token in the body and sets the refresh token as an
HttpOnly, SameSite=Strict cookie scoped to ``/api/auth/``; ``/api/auth/refresh/`` reads that
cookie, rotates it and blacklists the old one; ``/api/auth/logout/`` blacklists it.
"""

from django.conf import settings
from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.models import User
from accounts.serializers import (
    AccessTokenSerializer,
    RevokedSerializer,
    SetPasswordSerializer,
    TokenRequestSerializer,
    UserCreateSerializer,
    UserSerializer,
)

# --- JWT with the refresh token in a cookie --------------------------------------------


def _with_refresh_cookie(response: Response, refresh: str) -> Response:
    response.set_cookie(
        settings.JWT_REFRESH_COOKIE,
        refresh,
        max_age=int(settings.SIMPLE_JWT["REFRESH_TOKEN_LIFETIME"].total_seconds()),
        path=settings.JWT_REFRESH_COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=settings.JWT_REFRESH_COOKIE_SECURE,
    )
    return response


def _without_refresh_cookie(response: Response) -> Response:
    response.delete_cookie(settings.JWT_REFRESH_COOKIE, path=settings.JWT_REFRESH_COOKIE_PATH,
                           samesite="Strict")
    return response


class TokenView(APIView):
    """Sign in: the access token in the body, the refresh token in an HttpOnly cookie."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=TokenRequestSerializer, responses={200: AccessTokenSerializer})
    def post(self, request):
        form = TokenRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        # The Django request, so django-axes can mark a locked-out client on it.
        user = authenticate(request._request, **form.validated_data)
        if user is None:
            return Response({"detail": "Wrong username or password, or the account is blocked."},
                            status=status.HTTP_401_UNAUTHORIZED)
        refresh = RefreshToken.for_user(user)
        services.record_login(user=user, request=request._request)
        return _with_refresh_cookie(Response({"access": str(refresh.access_token)}), str(refresh))


class RefreshView(APIView):
    """A new access token from the refresh cookie, which is rotated (the old one blacklisted)."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=None, responses={200: AccessTokenSerializer})
    def post(self, request):
        cookie = request.COOKIES.get(settings.JWT_REFRESH_COOKIE)
        if not cookie:
            return Response({"detail": "No refresh token cookie: sign in again."},
                            status=status.HTTP_401_UNAUTHORIZED)
        serializer = TokenRefreshSerializer(data={"refresh": cookie})
        try:
            serializer.is_valid(raise_exception=True)
        except (TokenError, User.DoesNotExist):
            return _without_refresh_cookie(Response(
                {"detail": "The refresh token is invalid, expired or revoked."},
                status=status.HTTP_401_UNAUTHORIZED))
        data = serializer.validated_data
        return _with_refresh_cookie(Response({"access": data["access"]}), data["refresh"])


class LogoutView(APIView):
    """Blacklist the refresh cookie and clear it."""

    permission_classes = [AllowAny]
    authentication_classes = []

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        cookie = request.COOKIES.get(settings.JWT_REFRESH_COOKIE)
        if cookie:
            try:
                RefreshToken(cookie).blacklist()
            except TokenError:
                pass  # already invalid: nothing left to revoke
        return _without_refresh_cookie(Response(status=status.HTTP_204_NO_CONTENT))


# --- Users ----------------------------------------------------------------------------


class UserViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                  mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Users, under the role rules: moderators and admins list everyone, users see
    themselves; admins create, delete and change roles; moderators block and set
    passwords of non-admins."""

    serializer_class = UserSerializer
    filterset_fields = ["role", "is_active"]

    def get_queryset(self):
        return User.objects.visible_to(self.request.user).order_by("username")

    def get_serializer_class(self):
        return UserCreateSerializer if self.action == "create" else UserSerializer

    def perform_create(self, serializer):
        serializer.instance = services.create_user(actor=self.request.user, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.update_profile(
            actor=self.request.user, target=serializer.instance, **serializer.validated_data)

    def perform_destroy(self, instance):
        services.delete_user(actor=self.request.user, target=instance)

    @extend_schema(request=SetPasswordSerializer, responses={204: None})
    @action(detail=True, methods=["post"], url_path="set-password")
    def set_password(self, request, pk=None):
        return _set_password(request, self.get_object())

    @extend_schema(request=None, responses={200: UserSerializer})
    @action(detail=True, methods=["post"])
    def block(self, request, pk=None):
        user = services.set_blocked(actor=request.user, target=self.get_object(), blocked=True)
        return Response(UserSerializer(user).data)

    @extend_schema(request=None, responses={200: UserSerializer})
    @action(detail=True, methods=["post"])
    def unblock(self, request, pk=None):
        user = services.set_blocked(actor=request.user, target=self.get_object(), blocked=False)
        return Response(UserSerializer(user).data)

    @extend_schema(request=None, responses={200: RevokedSerializer})
    @action(detail=True, methods=["post"], url_path="revoke-tokens")
    def revoke_tokens(self, request, pk=None):
        revoked = services.revoke_tokens(actor=request.user, target=self.get_object())
        return Response({"revoked": revoked})


def _set_password(request, target: User) -> Response:
    form = SetPasswordSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    if target.pk == request.user.pk:
        current = form.validated_data.get("current_password", "")
        if not request.user.check_password(current):
            raise PermissionDenied("Give your current password to change it.")
    services.set_password(actor=request.user, target=target, password=form.validated_data["password"])
    return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    """The signed-in user's own profile."""

    @extend_schema(responses={200: UserSerializer})
    def get(self, request):
        return Response(UserSerializer(request.user).data)

    @extend_schema(request=UserSerializer, responses={200: UserSerializer})
    def patch(self, request):
        serializer = UserSerializer(request.user, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        user = services.update_profile(actor=request.user, target=request.user, **serializer.validated_data)
        return Response(UserSerializer(user).data)


class MyPasswordView(APIView):
    """Change one's own password (the current one is required)."""

    @extend_schema(request=SetPasswordSerializer, responses={204: None})
    def post(self, request):
        return _set_password(request, request.user)

