"""Browser tests: headless system Chromium (Playwright) against the portal served by pytest-django's live server.

The live server runs in a thread of this process, so the test can read the emails it sends
(locmem backend) and set up rows directly. Every page opened through these fixtures (``page``,
``new_page``) is watched for Content-Security-Policy violations and uncaught script errors, and
every document it shows is checked by axe-core (``AxeGate`` below); any problem fails the test.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

CHROMIUM = os.environ.get("PLAYWRIGHT_CHROMIUM_EXECUTABLE", "/usr/bin/chromium")
# Running as root needs --no-sandbox; the background-networking flags stop Chromium calling Google.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "e2e-artifacts"
DEFAULT_TIMEOUT_MS = 10_000
TOTP_STEP = 30
TOTP_DIGITS = 6


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="package", autouse=True)
def _allow_orm_beside_playwright():
    """Playwright's sync API keeps an event loop running in the test thread, so Django's async-safety
    check would refuse the test's own ORM calls (setting up rows). Only for this package: the loop
    stops with the browser fixture below, and the rest of the suite keeps the check."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="package")
def browser(_allow_orm_beside_playwright):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(
            f"Chromium not found at {CHROMIUM}: install it (apt install chromium) or set PLAYWRIGHT_CHROMIUM_EXECUTABLE"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def _portal_for_browser(live_server, settings):
    """Links in emails must point at the live server; mail stays in memory; no lockout carries over."""
    from django.core import mail
    from django.core.cache import cache

    settings.SITE_URL = live_server.url
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    cache.clear()
    mail.outbox = []
    yield
    cache.clear()


@dataclass
class PageProblems:
    """What the browser reported while the test ran, across every context it opened."""

    csp_violations: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)
    missing_csp: list[str] = field(default_factory=list)

    def watch(self, page, origin: str) -> None:
        def on_console(message):
            if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
                self.csp_violations.append(f"{page.url}: {message.text}")

        def on_response(response):
            if response.request.resource_type != "document" or not response.url.startswith(origin):
                return
            policy = response.headers.get("content-security-policy", "")
            if not policy or "unsafe-inline" in policy:
                self.missing_csp.append(f"{response.url} ({response.status}): {policy or 'no CSP header'}")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.script_errors.append(f"{page.url}: {error}"))
        page.on("response", on_response)


@pytest.fixture
def page_problems() -> PageProblems:
    return PageProblems()


# --- accessibility: axe-core on every document the suite shows ------------------------------------

AXE_VERSION = "4.14.1"
AXE_FILE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
# The SHA-256 axe-core publishes for this file (sri-history.json in the npm package): an edited or
# truncated copy fails loudly instead of quietly checking less. See vendor/axe-core/README.md.
AXE_SHA256 = "KTSJmUUM3yhJqOcLeRL8LahahJ2jnA0NU5T1HUqe2Vw="
# WCAG 2.0 and 2.1, levels A and AA, plus Deque's best practices (landmarks, headings, regions).
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")
# WCAG 2.0/2.1 success criterion 4.1.1 (Parsing, level A): unique ids. axe-core files these rules
# under "wcag2a-obsolete" since WCAG 2.2 dropped the criterion and leaves them off; we still hold
# the pages to 2.1, and a repeated id makes a label name the wrong field.
AXE_EXTRA_RULES = ("duplicate-id", "duplicate-id-active")
# "Needs review" results that fail like violations. A contrast axe-core cannot compute is a contrast
# nobody checks, so text must sit on backgrounds it can read (flat colours, no gradients, nothing on
# top). An id that ARIA or a label points at and that occurs twice is reported for review only,
# though it always names or describes the wrong element.
AXE_INCOMPLETE_FAILS = ("color-contrast", "duplicate-id-aria")

# Runs in the page: null for a document that is not HTML (a JSON or CSV response), else the rules
# that fail, with their nodes. The page is checked scrolled to the top (and put back afterwards):
# scrolled down, the sticky header lies over the text below it, and axe-core cannot tell that text's
# background any more.
_AXE_RUN = """async ([tags, extraRules, incompleteFails]) => {
    if (document.contentType !== "text/html") return null;
    const [x, y] = [window.scrollX, window.scrollY];
    window.scrollTo({left: 0, top: 0, behavior: "instant"});
    let results;
    try {
        results = await axe.run(document, {
            runOnly: {type: "tag", values: tags},
            rules: Object.fromEntries(extraRules.map((id) => [id, {enabled: true}])),
            resultTypes: ["violations", "incomplete"],
        });
    } finally {
        window.scrollTo({left: x, top: y, behavior: "instant"});
    }
    const pick = (rule, kind) => ({
        kind, id: rule.id, impact: rule.impact, help: rule.help, helpUrl: rule.helpUrl,
        nodes: rule.nodes.map((node) => ({
            target: node.target.map(String).join(" "),
            summary: (node.failureSummary || "").replace(/\\s+/g, " ").trim(),
        })),
    });
    return [
        ...results.violations.map((rule) => pick(rule, "violation")),
        ...results.incomplete.filter((rule) => incompleteFails.includes(rule.id))
            .map((rule) => pick(rule, "needs review")),
    ];
}"""


@cache
def axe_source() -> str:
    data = AXE_FILE.read_bytes()
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    if digest != AXE_SHA256:
        raise RuntimeError(f"{AXE_FILE} is not axe-core {AXE_VERSION} as published (its sha256 is {digest})")
    return data.decode("utf-8")


@dataclass(frozen=True)
class AxeFinding:
    path: str
    when: str
    rule: str
    kind: str  # "violation" or "needs review"
    impact: str
    help: str
    help_url: str
    nodes: tuple[str, ...]

    @property
    def key(self) -> tuple:
        return (self.path, self.rule, self.kind, self.nodes)

    def __str__(self) -> str:
        nodes = "".join(f"\n    {node}" for node in self.nodes)
        where = f"{self.path} ({self.when})"
        return f"{where}: {self.rule} [{self.kind}, {self.impact}] {self.help} <{self.help_url}>{nodes}"


class AxeGate:
    """axe-core over every document a test's browser shows: the accessibility gate (decision 014).

    When: once per document, after its navigation, before the test's first action or auto-waiting
    assertion on it (a Playwright locator handler on ``<html>`` without the ``data-axe-checked``
    mark: Playwright runs it and waits for it before the action, so the check never races the
    test). An htmx swap removes the mark, so new content is checked before the next action too; at
    the end of the test every page still open is checked once more, in the state the test left it.
    There is no list of URLs: a page a new test visits is covered by construction, for whoever is
    signed in to that browser context. ``check(page)`` checks a state in between, such as an open
    dialog.

    How: axe-core is added to every document as an init script and run with ``page.evaluate``, both
    through the DevTools protocol, which the page's Content-Security-Policy does not govern. The
    contexts do not bypass CSP, so the policy users get stays in force in the tests and its
    violations still fail them.

    What fails: any violation of a WCAG 2.0/2.1 A or AA rule (with the unique-id rules of 4.1.1) or
    of a best-practice rule, and any colour contrast or repeated referenced id axe-core could not
    decide. Findings are collected and fail the test at teardown, each with the page, the moment,
    the rule, its help link and the offending elements.

    Not covered: ``NOT_CHECKED`` (third-party UI served as shipped, each with its reason), pages
    opened outside ``page``/``new_page`` (a context made from ``browser``
    directly), frames other than the main one, and a document the test leaves without acting on it
    or asserting anything about it (``goto`` straight after ``goto``).
    """

    MARK = "data-axe-checked"
    # Documents the gate does not judge, each with its reason. Only third-party UI we serve as it is.
    NOT_CHECKED = {
        "/api/docs/": "Swagger UI (drf-spectacular-sidecar), served as its authors ship it; the API docs are "
        "for developers, and its markup and colours are not ours to change",
    }
    # Init script (runs in every document before its own scripts, outside the CSP like evaluate):
    # content htmx swapped in has not been checked yet.
    _UNMARK_AFTER_SWAPS = (
        'document.addEventListener("htmx:afterSettle", '
        '() => document.documentElement.removeAttribute("data-axe-checked"));'
    )

    def __init__(self, origin: str):
        self.origin = origin
        self.findings: list[AxeFinding] = []
        self.documents_checked = 0
        self._watched: set[int] = set()
        self._running: set[int] = set()

    def watch(self, context) -> None:
        """Check every page of ``context``: those open now and those it opens later (popups)."""
        context.add_init_script(script=self._UNMARK_AFTER_SWAPS)
        context.add_init_script(script=axe_source())  # compiled in the renderer: no 650 kB per check
        context.on("page", self.watch_page)
        for page in context.pages:
            self.watch_page(page)

    def watch_page(self, page) -> None:
        if id(page) in self._watched:
            return
        self._watched.add(id(page))
        page.add_locator_handler(
            page.locator(f"html:not([{self.MARK}])"),
            lambda: self._after_navigation(page),
            no_wait_after=True,
        )

    def _after_navigation(self, page) -> None:
        try:
            page.wait_for_load_state("load")
            self.check(page, when="after navigation")
        except PlaywrightError as error:
            # The test's last action navigated on while the check ran: the next document has no
            # mark, so the next action or assertion checks it.
            if "Execution context was destroyed" not in error.message:
                raise

    def check(self, page, *, when: str = "checked by the test") -> None:
        """Run axe-core on the document ``page`` shows now; findings fail the test at teardown."""
        if page.is_closed() or id(page) in self._running:
            return
        self._running.add(id(page))  # axe-core refuses a second run on a document before the first ends
        try:
            rules = None
            not_ours = page.url[len(self.origin):].split("?")[0] in self.NOT_CHECKED
            if page.url.startswith(self.origin + "/") and not not_ours:
                if not page.evaluate("() => typeof window.axe === 'object'"):  # a document from before watch()
                    page.evaluate(axe_source())
                rules = page.evaluate(_AXE_RUN, [list(AXE_TAGS), list(AXE_EXTRA_RULES), list(AXE_INCOMPLETE_FAILS)])
            page.evaluate("mark => document.documentElement.setAttribute(mark, '')", self.MARK)
        finally:
            self._running.discard(id(page))
        if rules is None:
            return
        self.documents_checked += 1
        path = page.url[len(self.origin) :]
        for rule in rules:
            finding = AxeFinding(
                path=path, when=when, rule=rule["id"], kind=rule["kind"], impact=rule["impact"] or "",
                help=rule["help"], help_url=rule["helpUrl"],
                nodes=tuple(f"{node['target']}: {node['summary']}" for node in rule["nodes"]),
            )
            if finding.key not in {f.key for f in self.findings}:  # the same page, found the same way again
                self.findings.append(finding)


@pytest.fixture
def axe_gate(live_server) -> AxeGate:
    """The accessibility gate of this test's browser contexts (see ``AxeGate``)."""
    return AxeGate(live_server.url)


@pytest.fixture
def new_page(browser, live_server, page_problems, axe_gate, request) -> Iterator[Callable]:
    """``new_page()`` opens a page in a fresh browser context (its own cookies: a different person)."""
    contexts = []

    def open_page():
        context = browser.new_context(base_url=live_server.url, locale="en-GB", timezone_id="UTC")
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        axe_gate.watch(context)
        contexts.append(context)
        page = context.new_page()
        page_problems.watch(page, live_server.url)
        return page

    yield open_page

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    if failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for c_index, context in enumerate(contexts):
            for p_index, page in enumerate(context.pages):
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)
                try:
                    page.screenshot(path=str(ARTIFACTS / f"{name}-{c_index}-{p_index}.png"), full_page=True)
                except Exception as exc:  # a crashed page must not hide the real failure
                    print(f"screenshot failed: {exc}")
    else:
        # Nothing navigates away from the last document of each page: check it here.
        for context in contexts:
            for page in context.pages:
                axe_gate.check(page, when="at the end of the test")
    for context in contexts:
        context.close()
    problems = [
        *(f"CSP violation: {v}" for v in page_problems.csp_violations),
        *(f"Script error: {e}" for e in page_problems.script_errors),
        *(f"Weak or missing CSP: {m}" for m in page_problems.missing_csp),
        *(f"Accessibility (axe-core {AXE_VERSION}): {f}" for f in axe_gate.findings),
    ]
    if problems and not failed:
        pytest.fail("\n".join(problems))


@pytest.fixture
def page(new_page):
    return new_page()


# --- email ----------------------------------------------------------------------------------------


class Mailbox:
    """The emails the portal sent during this test (the live server thread shares django.core.mail.outbox)."""

    def to(self, address: str) -> list:
        from django.core import mail

        return [m for m in mail.outbox if address.lower() in (r.lower() for r in m.to)]

    def link(self, address: str, path_fragment: str, timeout: float = 5.0) -> str:
        """The last link containing ``path_fragment`` sent to ``address`` (waits briefly: sent on commit)."""
        deadline = time.monotonic() + timeout
        while True:
            for message in reversed(self.to(address)):
                links = [u for u in re.findall(r"https?://\S+", message.body) if path_fragment in u]
                if links:
                    return links[-1]
            if time.monotonic() > deadline:
                from django.core import mail

                subjects = [(m.to, m.subject) for m in mail.outbox]
                raise AssertionError(f"No email to {address} with a link to {path_fragment!r}; outbox: {subjects}")
            time.sleep(0.1)


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


# --- authenticator app ----------------------------------------------------------------------------


class Authenticator:
    """What a phone app does with the setup key shown on the enrollment page.

    The portal refuses a code for a time step it already accepted, so ``code()`` waits for the next
    30-second step when the current one was used (at most one step: keep such waits rare).
    """

    def __init__(self, setup_key: str):
        compact = re.sub(r"\s+", "", setup_key).upper()
        self.key = base64.b32decode(compact + "=" * (-len(compact) % 8))
        self.last_step = -1

    def code_at(self, step: int) -> str:
        from django_otp.oath import hotp

        return str(hotp(self.key, step, digits=TOTP_DIGITS)).zfill(TOTP_DIGITS)

    def peek(self) -> str:
        """The current code, without using it up (for a submission the server is expected to refuse)."""
        return self.code_at(int(time.time() // TOTP_STEP))

    def code(self) -> str:
        now = time.time()
        step = int(now // TOTP_STEP)
        if step <= self.last_step:
            time.sleep((self.last_step + 1) * TOTP_STEP - now + 0.2)
            step = self.last_step + 1
        self.last_step = step
        return self.code_at(step)

    def wrong_code(self) -> str:
        """Six digits that match no step the server would accept now."""
        step = int(time.time() // TOTP_STEP)
        valid = {self.code_at(s) for s in range(step - 2, step + 3)}
        return next(c for c in (f"{n:06d}" for n in range(123456, 1_000_000, 111111)) if c not in valid)


# --- people ---------------------------------------------------------------------------------------

PASSWORD = "Blue-sky-licenses-2024!"


def fill_signup_person(page, *, full_name: str, email: str | None, password: str = PASSWORD) -> None:
    page.get_by_label("Your full name").fill(full_name)
    if email is not None:
        page.get_by_label("Work email").fill(email)
    page.get_by_label(re.compile(r"^Password")).fill(password)
    page.get_by_label("Confirm password").fill(password)


def enroll_authenticator(page) -> Authenticator:
    """On the enrollment page: read the setup key, add it to the 'app', confirm with a code."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", level=1)).to_have_text("Set up two-factor authentication")
    app = Authenticator(page.get_by_label("Setup key", exact=True).inner_text())
    page.get_by_label("Code from your app").fill(app.code())
    page.get_by_role("button", name="Confirm and continue").click()
    return app


def sign_in(page, *, email: str, password: str = PASSWORD, app: Authenticator | None = None, path: str = "/") -> None:
    """Password, then the code from ``app``; ends wherever the portal sends a verified user."""
    page.goto(path)
    page.get_by_label("Email").fill(email)
    page.get_by_label(re.compile(r"^Password")).fill(password)
    page.get_by_role("button", name="Sign in").click()
    if app is not None:
        page.get_by_label("Code").fill(app.code())
        page.get_by_role("button", name="Verify").click()


@dataclass
class Member:
    email: str
    user: object
    organization: object
    app: Authenticator


@pytest.fixture
def make_member() -> Callable[..., Member]:
    """A verified person with an authenticator, member of an organisation (set up in the DB, not the browser)."""
    counter = iter(range(1, 1000))

    def make(role: str = "owner", organization=None, full_name: str = "Ada Lovelace") -> Member:
        from accounts.tests.factories import MembershipFactory, OrganizationFactory, TOTPDeviceFactory, UserFactory

        n = next(counter)
        user = UserFactory(email=f"member{n}@example.com", full_name=full_name, password=PASSWORD)
        organization = organization or OrganizationFactory(legal_name="Contoso Trading Ltd", slug=f"contoso-{n}")
        MembershipFactory(user=user, organization=organization, role=role)
        device = TOTPDeviceFactory(user=user)
        app = Authenticator(base64.b32encode(device.bin_key).decode())
        return Member(email=user.email, user=user, organization=organization, app=app)

    return make


# --- Microsoft (the emulator) -----------------------------------------------------------------------

# The licensing tests' emulator: an HTTPS server in a thread, reset per test, MS_* settings pointing at
# it. The live server is a thread of this process, so it sees the same settings.
from licensing.tests.conftest import emulator, emulator_server  # noqa: E402, F401  (fixtures)

# Longer than any clock jump a test makes: tokens are stamped in emulator time, and the portal's
# cached tokens must not look expired to the emulator after its clock moves forward.
EMULATOR_TOKEN_LIFETIME = 60 * 60 * 24 * 60


@pytest.fixture
def microsoft(emulator, settings):  # noqa: F811  (the imported fixture, requested by name)
    """The emulator as the portal's Microsoft, set up as an operator would before customers arrive:
    the partner's Admin Agent signed in (GDAP requests are App+User calls), the catalog synced (the
    daily task), and the integration sandbox's 25-seat limit off (production partners have none)."""
    from licensing.microsoft.client import reset_default_client
    from licensing.services.catalog import catalog_sync

    emulator.update_settings(sandboxLimits=False, tokenLifetimeSeconds=EMULATOR_TOKEN_LIFETIME)
    settings.MSEMULATOR_URL = emulator.base_url
    settings.MS_ADMIN_AGENT_REFRESH_TOKEN = emulator.admin_agent_refresh_token()
    reset_default_client()
    catalog_sync(country="US")
    return emulator


def confirm_dialog(page, button_name: str, *, scope=None, message: str | None = None) -> None:
    """Press a button guarded by the confirmation dialog (components/confirm_button.html) and accept:
    the dialog's confirm button carries the same label."""
    from playwright.sync_api import expect

    (scope or page).get_by_role("button", name=button_name, exact=True).click()
    dialog = page.get_by_role("dialog", name="Please confirm")
    if message is not None:
        expect(dialog).to_contain_text(message)
    dialog.get_by_role("button", name=button_name, exact=True).click()
