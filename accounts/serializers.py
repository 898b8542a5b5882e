"""Shapes of users in the API. Rules are not here: they are in permissions and services."""

from rest_framework import serializers

from accounts.models import User


class UserSerializer(serializers.ModelSerializer):
    """A user as seen through the API (never the password)."""

    blocked = serializers.BooleanField(source="is_blocked", read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "role",
                  "notify_level", "blocked", "last_login", "date_joined"]
        read_only_fields = ["id", "username", "blocked", "last_login", "date_joined"]


class UserCreateSerializer(UserSerializer):
    """What an admin gives to create a user."""

    password = serializers.CharField(write_only=True, style={"input_type": "password"})

    class Meta(UserSerializer.Meta):
        fields = UserSerializer.Meta.fields + ["password"]
        read_only_fields = ["id", "blocked", "last_login", "date_joined"]


class SetPasswordSerializer(serializers.Serializer):
    """A new password; ``current_password`` is required when users change their own."""

    password = serializers.CharField(write_only=True, style={"input_type": "password"})
    current_password = serializers.CharField(
        write_only=True, required=False, style={"input_type": "password"})


class RevokedSerializer(serializers.Serializer):
    revoked = serializers.IntegerField(read_only=True)


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField()
    password = serializers.CharField(style={"input_type": "password"})


class AccessTokenSerializer(serializers.Serializer):
    access = serializers.CharField(read_only=True)
