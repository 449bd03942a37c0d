import pytest

import licensing.tasks  # noqa: F401
from licensing import demo
from licensing.services import directory as directory_services
from portal.tenancy import tenant_context
from security.audit import Actor

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.emulator, pytest.mark.django_db(transaction=True)]


def test_screens(page, microsoft, make_member):
    member = make_member()
    org = member.organization
    demo.seed_licensing_demo(organization=org, actor=member.user, emulator_url=microsoft.base_url,
                             ca_bundle=microsoft.ca_path)
    with tenant_context(org):
        directory_services.directory_sync_request(organization=org, actor=Actor.system("t"))
    sign_in(page, email=member.email, app=member.app)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in (("subscriptions", "subscriptions/"), ("licenses", "licenses/"),
                           ("operations", "operations/"), ("catalog", "catalog/")):
            page.goto(f"/o/{org.slug}/{path}")
            sw = page.evaluate("document.documentElement.scrollWidth")
            print(f"SCROLLWIDTH {name} {width}: {sw}")
            if sw > width:
                print(page.evaluate("""() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1 && !e.closest('details:not([open])')).slice(0, 12).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + ' parent=' + e.parentElement.tagName + '.' + e.parentElement.className)"""))
            page.screenshot(path=f"/tmp/shots/{name}-{width}.png", full_page=True)
        page.goto(f"/o/{org.slug}/subscriptions/")
        page.get_by_role("link").filter(has_text="Business Basic").first.click()
        page.screenshot(path=f"/tmp/shots/subscription-{width}.png", full_page=True)
