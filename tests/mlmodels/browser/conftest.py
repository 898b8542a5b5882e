"""The Models pages in a real Chromium: the browser fixtures of tests/browser, used here too
(package-scoped there, so this package gets its own browser, closed when its tests are done)."""

from tests.browser.conftest import (  # noqa: F401 - fixtures and the report hook, re-exported
    browser,
    open_page,
    page,
    page_of,
    pytest_runtest_makereport,
)
