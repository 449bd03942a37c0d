"""Graph conventions: tenant from the token, permissions, GDAP-gated delegated access."""

from ..identity import GRAPH_RESOURCE
from ..responses import graph_error

AUDIENCE = GRAPH_RESOURCE

# Entra role template ids (reference §4).
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
LICENSE_ADMIN = "4d6ac14f-3453-41d0-bef9-a3e0c569773a"
USER_ADMIN = "fe930be7-5e62-47db-91af-98c3a49a38b1"
DIRECTORY_READERS = "88d8e3e3-8f55-4a1e-953a-9b9898b8876b"
GLOBAL_READER = "f2ef992c-3afb-46b9-b7cf-a126ee74c451"
DIRECTORY_WRITERS = "9360feb5-f418-4baa-8175-e2a00bac4301"
HELPDESK_ADMIN = "729827e3-9c14-49f7-bb1b-9608f156bbb8"

READ = "read"
WRITE_USERS = "write_users"
ASSIGN_LICENSES = "assign_licenses"
AUDIT = "audit"
PASSWORD = "password"
REVOKE_SESSIONS = "revoke_sessions"

APP_PERMISSIONS = {
    READ: {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All",
           "LicenseAssignment.Read.All", "LicenseAssignment.ReadWrite.All", "Organization.Read.All"},
    WRITE_USERS: {"User.ReadWrite.All", "Directory.ReadWrite.All"},
    ASSIGN_LICENSES: {"LicenseAssignment.ReadWrite.All", "User.ReadWrite.All",
                      "Directory.ReadWrite.All"},
    AUDIT: {"AuditLog.Read.All"},
    PASSWORD: {"User-PasswordProfile.ReadWrite.All", "User.ReadWrite.All"},
    REVOKE_SESSIONS: {"User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All"},
}
GDAP_ROLES = {
    READ: {DIRECTORY_READERS, GLOBAL_READER, LICENSE_ADMIN, USER_ADMIN, DIRECTORY_WRITERS,
           HELPDESK_ADMIN, GLOBAL_ADMIN},
    WRITE_USERS: {USER_ADMIN, DIRECTORY_WRITERS, GLOBAL_ADMIN},
    ASSIGN_LICENSES: {LICENSE_ADMIN, USER_ADMIN, GLOBAL_ADMIN},
    AUDIT: {GLOBAL_READER, GLOBAL_ADMIN},
    PASSWORD: {USER_ADMIN, HELPDESK_ADMIN, GLOBAL_ADMIN},
    REVOKE_SESSIONS: {USER_ADMIN, HELPDESK_ADMIN, GLOBAL_ADMIN},
}


def denied():
    return graph_error(403, "Authorization_RequestDenied",
                       "Insufficient privileges to complete the operation.")


def _gdap_roles(state, customer_tenant_id: str) -> set[str]:
    roles: set[str] = set()
    for rel in state.docs("SELECT doc FROM gdap_relationships WHERE customer_tenant_id = ?",
                          (customer_tenant_id,)):
        if rel["status"] != "active":
            continue
        for assignment in state.docs("SELECT doc FROM gdap_assignments WHERE relationship_id = ?",
                                     (rel["id"],)):
            if assignment["status"] in ("active", "pending"):
                roles |= {r["roleDefinitionId"] for r in assignment["accessDetails"]["unifiedRoles"]}
    return roles


def authorize(ctx, need: str) -> str:
    """Return the tenant the token is for after checking it may do `need` there."""
    claims = ctx.claims
    tenant_id = claims["tid"]
    if claims.get("idtyp") == "user":
        # A partner user acting in a customer tenant over GDAP.
        if "idp" in claims and not _gdap_roles(ctx.state, tenant_id) & GDAP_ROLES[need]:
            raise denied()
        return tenant_id
    if not set(claims.get("roles", [])) & APP_PERMISSIONS[need]:
        raise denied()
    return tenant_id


def require_partner_tenant(ctx, app_role: str) -> str:
    claims = ctx.claims
    if claims["tid"] != ctx.partner.tenant_id:
        raise denied()
    if claims.get("idtyp") != "user" and app_role not in claims.get("roles", []):
        raise denied()
    if claims.get("idtyp") == "user" and app_role not in claims.get("scp", "").split():
        raise denied()
    return claims["tid"]


def odata(ctx, context: str, value, **extra) -> dict:
    return {"@odata.context": f"{ctx.graph_base}/$metadata#{context}", **extra, "value": value}
