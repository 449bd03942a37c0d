"""Build msemulator/data/catalog.json from the shared licensing data.

Usage: python -m msemulator.tools.build_catalog /path/to/shared/data [--out msemulator/data/catalog.json]

The source directory must hold Microsoft's "Product names and service plan identifiers for
licensing" CSV (microsoft_skus.csv, UTF-8 with BOM) and seed_prices.csv (USD per user per month on
an annual term). The emulator never reads the source at run time: it loads the generated JSON.
"""

import argparse
import csv
import json
from decimal import Decimal
from pathlib import Path

# (product id, Graph skuPartNumber, title, availability id, terms, max seats, fallback price,
#  upgrade targets). Product ids quoted in Microsoft's docs are real (CFQ7TTC0LH18 Business Basic,
#  CFQ7TTC0LDPB Business Standard, CFQ7TTC0LF8Q/R/S Office 365 E1/E3/E5); the others are stable
#  emulator-assigned ids in the same format.
SELECTION = [
    ("CFQ7TTC0LH18", "O365_BUSINESS_ESSENTIALS", "Microsoft 365 Business Basic", "CFQ7TTC0K971",
     ["P1M", "P1Y"], 300, None, ["CFQ7TTC0LDPB", "CFQ7TTC0LCHC"]),
    ("CFQ7TTC0LDPB", "O365_BUSINESS_PREMIUM", "Microsoft 365 Business Standard", "CFQ7TTC0K9DK",
     ["P1M", "P1Y"], 300, None, ["CFQ7TTC0LCHC"]),
    ("CFQ7TTC0LCHC", "SPB", "Microsoft 365 Business Premium", "CFQ7TTC0KFCP",
     ["P1M", "P1Y"], 300, None, ["CFQ7TTC0LFLX", "CFQ7TTC0LFLZ"]),
    ("CFQ7TTC0LFLX", "SPE_E3", "Microsoft 365 E3", "CFQ7TTC0KDDZ",
     ["P1M", "P1Y", "P3Y"], 10000, None, ["CFQ7TTC0LFLZ"]),
    ("CFQ7TTC0LFLZ", "SPE_E5", "Microsoft 365 E5", "CFQ7TTC0KDF4",
     ["P1M", "P1Y", "P3Y"], 10000, None, []),
    ("CFQ7TTC0LGZT", "SPE_F1", "Microsoft 365 F3", "CFQ7TTC0KDMS",
     ["P1M", "P1Y"], 10000, None, ["CFQ7TTC0LFLX"]),
    ("CFQ7TTC0LF8Q", "STANDARDPACK", "Office 365 E1", "CFQ7TTC0K39X",
     ["P1M", "P1Y"], 10000, None, ["CFQ7TTC0LF8R", "CFQ7TTC0LF8S", "CFQ7TTC0LFLX"]),
    ("CFQ7TTC0LF8R", "ENTERPRISEPACK", "Office 365 E3", "CFQ7TTC0KCSV",
     ["P1M", "P1Y", "P3Y"], 10000, None, ["CFQ7TTC0LF8S", "CFQ7TTC0LFLX"]),
    ("CFQ7TTC0LF8S", "ENTERPRISEPREMIUM", "Office 365 E5", "CFQ7TTC0N81H",
     ["P1M", "P1Y", "P3Y"], 10000, None, ["CFQ7TTC0LFLZ"]),
    ("CFQ7TTC0LH16", "EXCHANGESTANDARD", "Exchange Online (Plan 1)", "CFQ7TTC0K8P5",
     ["P1M", "P1Y"], 10000, None, ["CFQ7TTC0LH1G", "CFQ7TTC0LH18"]),
    ("CFQ7TTC0LH1G", "EXCHANGEENTERPRISE", "Exchange Online (Plan 2)", "CFQ7TTC0K8PB",
     ["P1M", "P1Y"], 10000, None, []),
    ("CFQ7TTC0LFK5", "AAD_PREMIUM", "Microsoft Entra ID P1", "CFQ7TTC0KCV1",
     ["P1M", "P1Y"], 10000, None, ["CFQ7TTC0LFK6"]),
    ("CFQ7TTC0LFK6", "AAD_PREMIUM_P2", "Microsoft Entra ID P2", "CFQ7TTC0KCV2",
     ["P1M", "P1Y"], 10000, None, []),
    ("CFQ7TTC0LCHX", "INTUNE_A", "Microsoft Intune Plan 1", "CFQ7TTC0KD3V",
     ["P1M", "P1Y"], 10000, None, []),
    ("CFQ7TTC0L3PB", "POWER_BI_PRO", "Power BI Pro", "CFQ7TTC0KHLR",
     ["P1M", "P1Y"], 10000, None, ["CFQ7TTC0HL8W"]),
    ("CFQ7TTC0HL8W", "PBI_PREMIUM_PER_USER", "Power BI Premium Per User", "CFQ7TTC0KHLS",
     ["P1M", "P1Y"], 10000, None, []),
    ("CFQ7TTC0RM8K", "Teams_Ess", "Microsoft Teams Essentials", "CFQ7TTC0K1QL",
     ["P1M", "P1Y"], 300, None, ["CFQ7TTC0LH18"]),
    ("CFQ7TTC0MM8R", "Microsoft_365_Copilot", "Microsoft 365 Copilot", "CFQ7TTC0MM8P",
     ["P1M", "P1Y"], 10000, None, []),
    ("CFQ7TTC0HD33", "VISIOONLINE_PLAN1", "Visio Plan 1", "CFQ7TTC0K0SC",
     ["P1M", "P1Y"], 10000, "5.00", ["CFQ7TTC0HD32"]),
    ("CFQ7TTC0HD32", "VISIOCLIENT", "Visio Plan 2", "CFQ7TTC0K0SB",
     ["P1M", "P1Y"], 10000, None, []),
    ("CFQ7TTC0HDB1", "PROJECT_P1", "Project Plan 1", "CFQ7TTC0K0T1",
     ["P1M", "P1Y"], 10000, "10.00", ["CFQ7TTC0HDB0", "CFQ7TTC0HDB2"]),
    ("CFQ7TTC0HDB0", "PROJECTPROFESSIONAL", "Project Plan 3", "CFQ7TTC0K0T0",
     ["P1M", "P1Y"], 10000, None, ["CFQ7TTC0HDB2"]),
    ("CFQ7TTC0HDB2", "PROJECTPREMIUM", "Project Plan 5", "CFQ7TTC0K0T2",
     ["P1M", "P1Y"], 10000, "55.00", []),
    ("CFQ7TTC0LFJJ", "DYN365_ENTERPRISE_SALES", "Dynamics 365 Sales Enterprise", "CFQ7TTC0K7WX",
     ["P1M", "P1Y", "P3Y"], 10000, None, []),
    ("CFQ7TTC0LGNH", "DYN365_ENTERPRISE_CUSTOMER_SERVICE", "Dynamics 365 Customer Service Enterprise",
     "CFQ7TTC0K7WY", ["P1M", "P1Y", "P3Y"], 10000, "105.00", []),
    ("CFQ7TTC0LHSF", "DYN365_BUSCENTRAL_ESSENTIAL", "Dynamics 365 Business Central Essentials",
     "CFQ7TTC0K7X0", ["P1M", "P1Y", "P3Y"], 10000, None, []),
]

AZURE_PLAN = {
    "productId": "DZH318Z0BPS6",
    "skuId": "0001",
    "availabilityId": "DZH318Z0BXWC",
    "title": "Azure plan",
    "description": "Pay-as-you-go Azure consumption billed monthly in arrears.",
    "targetView": "MicrosoftAzure",
    "productType": {"id": "Azure", "displayName": "Azure"},
}


def build(source: Path) -> dict:
    plans: dict[str, dict] = {}
    with (source / "microsoft_skus.csv").open(encoding="utf-8-sig", newline="") as fh:
        for row in csv.DictReader(fh):
            part = row["String_Id"].strip()
            entry = plans.setdefault(part, {"guid": row["GUID"].strip(),
                                            "name": row["Product_Display_Name"].strip(),
                                            "plans": []})
            entry["plans"].append({
                "servicePlanId": row["Service_Plan_Id"].strip(),
                "servicePlanName": row["Service_Plan_Name"].strip(),
                "friendlyName": row["Service_Plans_Included_Friendly_Names"].strip(),
            })
    with (source / "seed_prices.csv").open(encoding="utf-8-sig", newline="") as fh:
        prices = {r["String_Id"]: r["usd_per_user_month_annual_term"] for r in csv.DictReader(fh)}

    products = []
    for (pid, part, title, avail, terms, max_qty, fallback, upgrades) in SELECTION:
        if part not in plans:
            raise SystemExit(f"{part} not found in microsoft_skus.csv")
        price = prices.get(part) or fallback
        if price is None:
            raise SystemExit(f"no price for {part}")
        products.append({
            "productId": pid,
            "skuId": "0001",
            "availabilityId": avail,
            "title": title,
            "description": f"{title} (New Commerce license-based offer).",
            "skuPartNumber": part,
            "provisioningId": plans[part]["guid"],
            "servicePlans": plans[part]["plans"],
            "terms": terms,
            "minimumQuantity": 1,
            "maximumQuantity": max_qty,
            "annualTermMonthlyPriceUsd": str(Decimal(price).quantize(Decimal("0.01"))),
            "upgradeTargets": [f"{t}:0001" for t in upgrades],
        })
    return {"products": products, "azurePlan": AZURE_PLAN}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("source", type=Path, help="directory with microsoft_skus.csv and seed_prices.csv")
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parent.parent / "data" / "catalog.json")
    args = parser.parse_args()
    args.out.write_text(json.dumps(build(args.source), indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
