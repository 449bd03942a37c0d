"""The emulated Entra directory store shared by Partner Center (tenant creation) and Graph."""

import json


def user_columns(tenant_id: str, doc: dict) -> tuple:
    return (tenant_id, doc["id"], doc["userPrincipalName"], doc.get("mail"), doc["displayName"],
            1 if doc.get("accountEnabled", True) else 0, json.dumps(doc))


INSERT_USER = ("INSERT INTO users (tenant_id, id, upn, mail, display_name, account_enabled, doc)"
               " VALUES (?, ?, ?, ?, ?, ?, ?)")


def insert_user(state, tenant_id: str, doc: dict) -> None:
    state.execute(INSERT_USER, user_columns(tenant_id, doc))


def insert_users(state, tenant_id: str, docs: list[dict]) -> None:
    state.executemany(INSERT_USER, [user_columns(tenant_id, d) for d in docs])


def update_user(state, tenant_id: str, doc: dict) -> None:
    state.execute("UPDATE users SET upn = ?, mail = ?, display_name = ?, account_enabled = ?, doc = ?"
                  " WHERE tenant_id = ? AND id = ?",
                  (doc["userPrincipalName"], doc.get("mail"), doc["displayName"],
                   1 if doc.get("accountEnabled", True) else 0, json.dumps(doc), tenant_id, doc["id"]))
