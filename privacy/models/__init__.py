from .optouts import BrowserOptOut, OptOut, OptOutMethod

__all__ = ["BrowserOptOut", "OptOut", "OptOutMethod"]
