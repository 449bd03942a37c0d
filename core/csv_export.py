"""Streamed CSV exports, safe to open in a spreadsheet."""

import csv
from collections.abc import Iterable

from django.http import StreamingHttpResponse

# Spreadsheets run a cell that starts like a formula. Exported values can come from customers'
# tenants (names, UPNs), so such cells get a leading quote and stay text. Numbers stay numbers.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, int | float):
        return value
    text = str(value)
    if text.startswith(_FORMULA_PREFIXES):
        try:
            float(text)
        except ValueError:
            return f"'{text}"
    return text


class _Echo:
    def write(self, value):
        return value


def csv_rows(rows: Iterable[Iterable]) -> Iterable[str]:
    """Each row as one line of CSV, cells made safe."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([csv_cell(value) for value in row])


def csv_response(filename: str, rows: Iterable[Iterable]) -> StreamingHttpResponse:
    """A streamed CSV attachment; ``rows`` (header first) is consumed as the response is sent."""
    response = StreamingHttpResponse(csv_rows(rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
