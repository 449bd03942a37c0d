"""Invoice and credit note PDFs, drawn in-process with fpdf2 (no browser, no external service).

The standard PDF fonts cover Latin-1 only, so text outside it is replaced rather than dropped
silently; amounts and numbers are always Latin-1.
"""

from __future__ import annotations

from fpdf import FPDF


def _text(value) -> str:
    return str(value if value is not None else "").encode("latin-1", "replace").decode("latin-1")


def _address(address: dict | None) -> list[str]:
    if not address:
        return []
    first = ", ".join(x for x in (address.get("line1"), address.get("line2")) if x)
    city = " ".join(x for x in (address.get("postal_code"), address.get("city")) if x)
    return [line for line in (first, ", ".join(x for x in (city, address.get("region")) if x),
                              address.get("country")) if line]


def invoice_pdf(*, invoice, lines, seller: dict) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(_text(f"{invoice.get_kind_display()} {invoice.number}"))
    pdf.set_author(_text(seller["name"]))
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _text(f"{invoice.get_kind_display()} {invoice.number}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    meta = [f"Issued {invoice.issued_at:%d %b %Y}"]
    if invoice.kind == "invoice":
        meta.append(f"Due {invoice.due_on:%d %b %Y}")
    if invoice.credited_invoice_id:
        meta.append(f"Credits {invoice.credited_invoice.number}: {invoice.reason}")
    pdf.multi_cell(0, 5, _text(" | ".join(meta)), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    top = pdf.get_y()
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(90, 5, "From", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    pdf.multi_cell(90, 5, _text(f"{seller['name']}\n{seller['address']}\nTax id {seller['tax_id']}"),
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(110, top)
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(90, 5, "Bill to", new_x="LEFT", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    buyer = [invoice.bill_to_name, *_address(invoice.bill_to_address)]
    if invoice.bill_to_tax_id:
        buyer.append(f"Tax id {invoice.bill_to_tax_id}")
    pdf.multi_cell(90, 5, _text("\n".join(buyer)), new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(pdf.get_y(), top + 25) + 4)
    widths = (8, 92, 16, 30, 34)
    pdf.set_font("Helvetica", "B", 9)
    for width, title, align in zip(widths, ("#", "Description", "Qty", "Unit price", "Amount"),
                                   ("L", "L", "R", "R", "R"), strict=True):
        pdf.cell(width, 6, title, border="B", align=align)
    pdf.ln()
    for line in lines:
        if line.kind == "tax":
            continue
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(widths[0], 5, str(line.position))
        pdf.cell(widths[1], 5, _text(line.description[:60]))
        pdf.cell(widths[2], 5, str(line.quantity), align="R")
        pdf.cell(widths[3], 5, f"{line.unit_price}", align="R")
        pdf.cell(widths[4], 5, f"{line.amount}", align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=8)
        detail = line.explanation
        if line.ms_subscription_id:
            detail += f" Microsoft subscription {line.ms_subscription_id}."
        pdf.set_x(pdf.l_margin + widths[0])
        pdf.multi_cell(widths[1], 4, _text(detail), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    pdf.ln(2)
    pdf.set_font("Helvetica", size=9)
    for label, amount, bold in (("Subtotal", invoice.subtotal, False),
                                (f"{invoice.tax_name} {invoice.tax_rate_percent}%", invoice.tax_total, False),
                                ("Total", invoice.total, True)):
        pdf.set_font("Helvetica", "B" if bold else "", 10 if bold else 9)
        pdf.cell(sum(widths[:4]), 6, _text(label), align="R")
        pdf.cell(widths[4], 6, f"{invoice.currency} {amount}", align="R", new_x="LMARGIN", new_y="NEXT")
    if invoice.tax_note:
        pdf.set_font("Helvetica", size=8)
        pdf.multi_cell(0, 4, _text(invoice.tax_note), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
