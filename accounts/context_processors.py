"""The eight sections of the navigation, with the current one marked."""

SECTIONS = [
    ("dashboard", "Dashboard", "/"),
    ("analyses", "Analyses", "/analyses/"),
    ("calculations", "Calculations", "/calculations/"),
    ("molecules", "Molecules", "/molecules/"),
    ("models", "Models", "/models/"),
    ("clusters", "Clusters", "/clusters/"),
    ("logs", "Logs", "/logs/"),
    ("users", "Users", "/users/"),
]


def _current(path: str) -> str:
    for key, _title, url in reversed(SECTIONS):
        if url != "/" and path.startswith(url):
            return key
    return "dashboard" if path == "/" else ""


def navigation(request):
    current = _current(request.path)
    return {"nav_sections": [
        {"key": key, "title": title, "url": url, "current": key == current}
        for key, title, url in SECTIONS
    ]}
