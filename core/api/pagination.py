from rest_framework.pagination import PageNumberPagination

from core.pagination import ShortPageCountPaginator


class StandardPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    # A list that fits on its page needs no COUNT: its length is the total.
    django_paginator_class = ShortPageCountPaginator
