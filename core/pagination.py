"""Django's paginator without the ``COUNT`` a short page makes pointless.

Django's ``Paginator`` counts every row before it reads a page, to validate the page number. When the page it
then reads holds fewer rows than a page, the rows before it plus its own are the total, so the count was a round
trip and an ORM compilation spent for nothing. Most lists a customer opens (subscriptions, orders, the API's
subscriptions) fit on one page. :class:`ShortPageCountPaginator` reads the page first and counts only when the
page comes back full (there may be more; the rows read are kept) or empty past the first page (the number is
out of range). What it answers (page, count, number of pages, errors for bad numbers) is Django's; with
``orphans`` it leaves everything to Django, whose last page then swallows a short tail.
"""

from __future__ import annotations

from django.core.paginator import InvalidPage, Page, Paginator

# The largest OFFSET databases take (PostgreSQL's and SQLite's are signed 64-bit): a page number past it is
# out of range whatever the count, and must not reach SQL, where it is an error that aborts the transaction.
_LARGEST_OFFSET = 2**63 - 1


class ShortPageCountPaginator(Paginator):
    def page(self, number) -> Page:
        page = self._page_read_first(number)
        return super().page(number) if page is None else page  # an empty page is falsy

    def get_page(self, number) -> Page:
        page = self._page_read_first(number, default=1)
        return super().get_page(number) if page is None else page

    def _page_read_first(self, number, *, default: int | None = None) -> Page | None:
        """The page, its rows read before the count, which a short page makes unnecessary (it records the
        total); None where Django's own way answers (an error, or an empty page past the first).

        ``default`` is what ``get_page`` makes of a number that is not a whole number."""
        if self.orphans or "count" in self.__dict__ or isinstance(number, float):
            return None
        try:
            number = int(number)
        except (TypeError, ValueError):
            if default is None:
                return None  # Django raises PageNotAnInteger
            number = default
        if number < 1:
            return None
        bottom = (number - 1) * self.per_page
        if bottom + self.per_page > _LARGEST_OFFSET:
            return None  # Django counts first, and answers with its error (or get_page's last page)
        rows = list(self.object_list[bottom:bottom + self.per_page])
        if not rows and (number > 1 or not self.allow_empty_first_page):
            return None
        if len(rows) < self.per_page:
            self.__dict__["count"] = bottom + len(rows)  # Paginator.count is a cached_property
        else:
            try:
                self.validate_number(number)  # a full page: there may be more, so Django counts them
            except InvalidPage:
                return None  # rows deleted since the read: Django's answer for the number
        return self._get_page(rows, number, self)
