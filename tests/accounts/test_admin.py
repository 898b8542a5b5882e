"""The Django admin follows the same rules as pages and API."""

from accounts.models import User


def test_it_shows_moderators_no_add_or_delete_buttons(page_as, bob):
    html = page_as("mod").get("/admin/accounts/user/").content.decode()
    assert "/admin/accounts/user/add/" not in html
    assert "delete_selected" not in html
    change = page_as("mod").get(f"/admin/accounts/user/{bob.pk}/change/").content.decode()
    assert f"/admin/accounts/user/{bob.pk}/delete/" not in change


def test_it_shows_admins_the_add_button(page_as):
    assert "/admin/accounts/user/add/" in page_as("root").get("/admin/accounts/user/").content.decode()


def test_it_keeps_the_role_read_only_for_moderators_their_own_included(page_as, bob, mod):
    for target in (bob, mod):
        form = page_as("mod").get(f"/admin/accounts/user/{target.pk}/change/").content.decode()
        assert 'name="role"' not in form
    page_as("mod").post(f"/admin/accounts/user/{mod.pk}/change/", {
        "username": "mod", "email": mod.email, "role": "admin", "is_active": "on",
        "notify_level": "INFO"})
    mod.refresh_from_db()
    assert mod.role == "moderator"


def test_it_lets_a_moderator_block_a_user_with_the_admin_action(page_as, bob, root):
    page_as("mod").post("/admin/accounts/user/", {
        "action": "block_users", "_selected_action": [bob.pk, root.pk]})
    assert User.objects.get(pk=bob.pk).is_active is False
    assert User.objects.get(pk=root.pk).is_active is True


def test_it_lets_an_admin_change_a_role(page_as, bob):
    page_as("root").post(f"/admin/accounts/user/{bob.pk}/change/", {
        "username": "bob", "email": bob.email, "role": "moderator", "is_active": "on",
        "notify_level": "INFO", "first_name": "", "last_name": ""})
    bob.refresh_from_db()
    assert bob.role == "moderator"
    assert bob.is_staff and not bob.is_superuser


def test_it_offers_admins_the_revoke_tokens_action_only(page_as):
    assert "revoke_refresh_tokens" in page_as("root").get("/admin/accounts/user/").content.decode()
    assert "revoke_refresh_tokens" not in page_as("mod").get("/admin/accounts/user/").content.decode()
