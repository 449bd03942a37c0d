"""The API's JSON parser: DRF's, with a bound on nesting.

Python's json module recurses once per level, so a body of a few thousand ``[`` raises
RecursionError, which DRF's parser does not catch (a 500). Real request bodies nest a few
levels; anything deeper than MAX_JSON_DEPTH is refused as malformed, in the one error shape
(core.api.errors maps ParseError to ``malformed_request``), before a serializer sees it.
"""

from __future__ import annotations

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_JSON_DEPTH = 32
TOO_DEEP = f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels."


def json_depth_exceeds(data, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if ``data`` (parsed JSON) nests lists or objects more than ``limit`` levels; no recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if json_depth_exceeds(data):
            raise ParseError(TOO_DEEP)
        return data
