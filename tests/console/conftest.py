"""A real browser for the console tests: Playwright driving Debian's Chromium (``/usr/bin/chromium``).

Playwright's own browser download does not work here, so ``.ci/test``
installs Debian's ``chromium`` and the tests launch it by path. When a test
fails, every page it had open is saved as a PNG under
``var/test-screenshots/`` (the path is printed with the failure).
"""
import re
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = Path("/usr/bin/chromium")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def chromium(django_db_setup):
    """One browser for a test module; the test database exists before Playwright starts."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/test does this).")
    # Playwright's sync API keeps an asyncio loop on this thread while it runs; Django then refuses
    # synchronous database calls here unless told they are fine (they are: nothing here is async).
    # Only for this module: the variable must not reach other tests (`check --deploy` rejects it).
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        # as root, Chromium refuses to start with its sandbox
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def browser_pages(chromium, request):
    """``open_page()`` gives a page in a fresh browser context (its own cookies: one per user)."""
    contexts = []

    def open_page():
        context = chromium.new_context(accept_downloads=True)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    failed = getattr(request.node, "report_call", None)
    if failed is not None and failed.failed:
        folder = Path(settings.VAR_DIR) / "test-screenshots"
        folder.mkdir(parents=True, exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.name)
        for index, context in enumerate(contexts):
            for number, page in enumerate(context.pages):
                path = folder / f"{name}-{index}-{number}.png"
                page.screenshot(path=str(path), full_page=True)
                print(f"screenshot of {page.url}: {path}")
    for context in contexts:
        context.close()
