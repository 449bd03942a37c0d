"""Checking a start-up hook that freezes the heap (Celery's worker processes, gunicorn's web workers)."""

import gc


def objects_frozen_by(hook) -> int:
    """Run ``hook`` from a thawed heap and return how many objects it froze; the heap is thawed again after."""
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    try:
        hook()
        return gc.get_freeze_count()
    finally:
        gc.unfreeze()
