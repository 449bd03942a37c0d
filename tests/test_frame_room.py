"""Room on the frame stack: a request's deep, oscillating calls map no memory (core/frame_room.py)."""

from __future__ import annotations

import resource
import sys

import pytest
from django.conf import settings

from core.frame_room import FrameRoomMiddleware, with_room

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="counts this thread's page faults (Linux's RUSAGE_THREAD)"
)


def _down(depth: int) -> int:
    return _down(depth - 1) if depth else 0


def _hover_everywhere(top: int = 400, swings: int = 100) -> None:
    """At every depth up to ``top``, dip a few frames deeper and back ``swings`` times: wherever a chunk of the
    frame stack ends, the dips cross it."""

    def at(depth: int) -> None:
        if depth:
            at(depth - 1)
        for _ in range(swings):
            _down(4)

    at(top)


def _page_faults(call, *args) -> int:
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    call(*args)
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before


def test_calls_that_cross_a_chunk_of_the_frame_stack_map_memory_and_with_room_they_do_not():
    _hover_everywhere()  # warm: the code, the caches
    without = min(_page_faults(_hover_everywhere) for _ in range(3))
    with_it = min(_page_faults(with_room, _hover_everywhere) for _ in range(3))
    # Each crossing maps a fresh chunk (at least one page fault); the room is one chunk, faulted in once.
    assert without > 500
    assert with_it < without / 10


def test_with_room_passes_arguments_results_and_errors_through():
    assert with_room(lambda a, b=0: a + b, 2, b=3) == 5
    with pytest.raises(KeyError):
        with_room({}.__getitem__, "missing")


def test_the_middleware_is_first_and_returns_the_response():
    assert settings.MIDDLEWARE[0] == "core.frame_room.FrameRoomMiddleware"
    sentinel = object()
    assert FrameRoomMiddleware(lambda request: (request, sentinel))("request") == ("request", sentinel)
