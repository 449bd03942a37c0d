"""Per-request context handed to every route handler."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from werkzeug.wrappers import Request, Response

from .catalog import Catalog
from .config import PartnerConfig
from .faults import FaultInjector
from .state import State
from .throttling import Throttling


@dataclass
class Context:
    state: State
    catalog: Catalog
    partner: PartnerConfig
    faults: FaultInjector
    request: Request
    now: datetime
    base_url: str
    settle: Callable[[datetime], None]
    dispatch: Callable[..., Response]
    throttling: Throttling | None = None
    claims: dict | None = None

    @cached_property
    def settings(self) -> dict:
        return self.state.settings()

    @property
    def pc_base(self) -> str:
        return f"{self.base_url}/partnercenter"

    @property
    def graph_base(self) -> str:
        return f"{self.base_url}/graph/v1.0"
