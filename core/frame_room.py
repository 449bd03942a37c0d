"""Room on the interpreter's frame stack for a whole request, so deep rendering does not map and unmap memory.

CPython 3.11 keeps the frames of Python calls in 16 KiB chunks. When a call does not fit in the current chunk it
maps a new one, and when that call returns the chunk is unmapped at once. Template rendering recurses deeply and
goes up and down all the time, so wherever a chunk boundary falls inside its range of depths, every crossing is an
``mmap``, four page faults and a ``munmap``: about a thousand times for a 100-row admin list, 12 to 24 ms of kernel
time per request on this kind of machine (docs/performance.md, eighth round; decision 055).

``with_room(call, ...)`` calls ``call`` from a frame that reserves half a megabyte of stack slots it never uses.
That frame cannot fit in the current chunk, so the interpreter maps one chunk of 1 MiB with the frame at its base,
and everything ``call`` does runs in the room above it: one mapping per request instead of a thousand. The slots
are reserved, not written (a frame's value stack is not initialised), so only the pages the request's own frames
touch are faulted in.
"""

from __future__ import annotations

# Value-stack slots (8 bytes each) the wrapper's frame reserves: its frame is then just over 512 KiB, for which the
# interpreter maps a chunk of 1 MiB (it doubles 16 KiB until the frame and its margin fit), leaving about 500 KiB
# of room; a page's deepest rendering uses well under 100 KiB.
ROOM_SLOTS = 64 * 1024


def with_room(call, *args, **kwargs):
    """``call(*args, **kwargs)``, run with room on the frame stack (see the module's docstring)."""
    return call(*args, **kwargs)


# The room: value-stack slots this function's frame reserves and never uses.
with_room.__code__ = with_room.__code__.replace(co_stacksize=with_room.__code__.co_stacksize + ROOM_SLOTS)


class FrameRoomMiddleware:
    """Runs the rest of the request (the other middleware, the view and its template) with :func:`with_room`.
    First in ``MIDDLEWARE``, so that everything below it is inside the room."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return with_room(self.get_response, request)
