"""Microsoft's public downloads the portal reads (served without authentication, as Microsoft does).

- "Product names and service plan identifiers for licensing" (learn.microsoft.com/entra/identity/
  users/licensing-service-plan-reference): one row per product and included service plan, with the
  plans' friendly names. Graph's subscribedSkus gives only plan codes (EXCHANGE_S_STANDARD); this file
  is where the admin center's "Exchange Online (Plan 1)" comes from. The emulator serves the rows of
  its own catalog, which were built from that file.
"""

import csv
import io

from werkzeug.routing import Rule
from werkzeug.wrappers import Response

PRODUCT_NAMES_PATH = ("/download/e/3/e/e3e9faf2-f28b-490a-9ada-c6089a1fc5b0/"
                      "Product names and service plan identifiers for licensing.csv")
COLUMNS = ["Product_Display_Name", "String_Id", "GUID", "Service_Plan_Name", "Service_Plan_Id",
           "Service_Plans_Included_Friendly_Names"]


def product_names(ctx):
    out = io.StringIO()
    out.write("\ufeff")  # Microsoft's file is UTF-8 with a byte-order mark
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for offer in ctx.catalog.offers:
        for plan in offer.service_plans:
            writer.writerow([offer.title, offer.sku_part_number, offer.provisioning_id, plan["servicePlanName"],
                             plan["servicePlanId"], plan.get("friendlyName") or plan["servicePlanName"]])
    return Response(out.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8")


ROUTES = [Rule(PRODUCT_NAMES_PATH, endpoint=product_names, methods=["GET"])]
