"""Forms for the Users pages and the admin. They shape input; services apply the rules."""

from django import forms
from django.contrib.auth import forms as auth_forms

from accounts.models import User


class UserCreationForm(auth_forms.UserCreationForm):
    """An admin creates a user: username, e-mail, role and a validated password."""

    class Meta:
        model = User
        fields = ["username", "email", "first_name", "last_name", "role"]


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class ProfileForm(forms.ModelForm):
    """Name, e-mail and notification level; the role only where the actor may change it."""

    class Meta:
        model = User
        fields = ["first_name", "last_name", "email", "notify_level", "role"]

    def __init__(self, *args, can_change_role: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not can_change_role:
            del self.fields["role"]
