from .authorizations import AuthorizationDocument
from .corrections import Correction
from .erasures import Erasure, RecipientNotice
from .exports import ExportJob
from .optouts import BrowserOptOut, OptOut, OptOutMethod
from .requests import MAX_CODE_FAILURES, REQUESTER_EMAIL_INDEX, PrivacyRequest, PrivacyRequestEvent
from .retention import LegalHold, RetentionRun

__all__ = [
    "MAX_CODE_FAILURES",
    "REQUESTER_EMAIL_INDEX",
    "AuthorizationDocument",
    "BrowserOptOut",
    "Correction",
    "Erasure",
    "ExportJob",
    "LegalHold",
    "OptOut",
    "OptOutMethod",
    "PrivacyRequest",
    "PrivacyRequestEvent",
    "RecipientNotice",
    "RetentionRun",
]
