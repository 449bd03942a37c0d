"""The database side of "an issued document is immutable": triggers on invoices and their lines.

``Invoice.save``/``delete`` refuse in the ORM; these triggers refuse the same changes from raw SQL, a
queryset ``update()`` or an operator's psql prompt (docs/decisions/029-immutable-billing-documents.md):

- A line is never updated. An invoice changes only in what moves after issue (``INVOICE_MUTABLE``):
  its payment status and paid amount, when it was paid and e-mailed. Its encrypted columns change only
  when re-encrypted under another data key (key rotation changes the ciphertext's "v1:<key id>"
  prefix); rewriting one under the same key is refused.
- Void is final; a credit note's status never moves (it is issued settled); an invoice's paid amount
  stays between zero and its total (check constraints on the model).
- Deleting either is refused, except in the retention purge's transaction
  (``core.immutable.retention_purge_deletes``), once the legal period has passed. There the updates
  the delete brings along are admitted too (a credit note's link to a purged invoice, a line's link to
  a purged subscription, both set to null).

On SQLite (development) the update rules are triggers too, except that the links a purge sets to null
(a credit note's invoice, a line's subscription) may be cleared. Deletes are not guarded there: Django's
test flush empties tables with DELETE, and SQLite has no transaction-local setting to recognise the
purge by. SQLite drops a table's triggers when a migration rebuilds the table, so every billing
migration that alters ``billing_invoice`` ends with :func:`install`. A refusal is an integrity error
(SQLSTATE 23001 on Postgres), on both.

The SQL is built from arguments, not from the live models, so an old migration keeps meaning what it
meant when it ran.
"""

from __future__ import annotations

from core.immutable import PURGE_SETTING

INVOICE_MUTABLE = ("status", "paid_at", "emailed_at", "updated_at", "amount_paid")
INVOICE_ENCRYPTED = ("bill_to_name", "bill_to_address", "bill_to_tax_id")
# "v1:" and the data key id's 32 hex digits: what re-encryption under another key changes.
KEY_PREFIX = 35

PG_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION billing_refuse_delete_unless_purged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('{PURGE_SETTING}', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'Issued billing documents and their lines cannot be deleted (%); corrections are credit notes.',
        TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END $$;

CREATE OR REPLACE FUNCTION billing_refuse_line_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('{PURGE_SETTING}', true) = 'on' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'Lines of an issued document cannot be changed; corrections are credit notes.'
        USING ERRCODE = 'restrict_violation';
END $$;

-- TG_ARGV[0]: the columns that may move after issue; TG_ARGV[1]: the encrypted columns.
CREATE OR REPLACE FUNCTION billing_refuse_invoice_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mutable text[] := string_to_array(TG_ARGV[0], ',');
    encrypted text[] := string_to_array(TG_ARGV[1], ',');
    before jsonb := to_jsonb(OLD);
    after jsonb := to_jsonb(NEW);
    col text;
BEGIN
    IF current_setting('{PURGE_SETTING}', true) = 'on' THEN
        RETURN NEW;
    END IF;
    IF (before - mutable - encrypted) IS DISTINCT FROM (after - mutable - encrypted) THEN
        RAISE EXCEPTION 'Issued document % cannot be changed; corrections are credit notes.', OLD.number
            USING ERRCODE = 'restrict_violation';
    END IF;
    FOREACH col IN ARRAY encrypted LOOP
        IF (before ->> col) IS DISTINCT FROM (after ->> col)
           AND ((before ->> col) IS NULL OR (after ->> col) IS NULL
                OR left(before ->> col, {KEY_PREFIX}) = left(after ->> col, {KEY_PREFIX})) THEN
            RAISE EXCEPTION 'Issued document %: % may be re-encrypted under another key, never rewritten.',
                OLD.number, col USING ERRCODE = 'restrict_violation';
        END IF;
    END LOOP;
    IF OLD.status = 'void' AND NEW.status <> 'void' THEN
        RAISE EXCEPTION 'Invoice % is void, and stays void.', OLD.number USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.kind = 'credit_note' AND NEW.status <> OLD.status THEN
        RAISE EXCEPTION 'Credit note % has no payment status to change.', OLD.number
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
"""

PG_DROP = """
DROP TRIGGER IF EXISTS billing_invoice_refuse_update ON billing_invoice;
DROP TRIGGER IF EXISTS billing_invoice_refuse_delete ON billing_invoice;
DROP TRIGGER IF EXISTS billing_invoiceline_refuse_update ON billing_invoiceline;
DROP TRIGGER IF EXISTS billing_invoiceline_refuse_delete ON billing_invoiceline;
DROP FUNCTION IF EXISTS billing_refuse_invoice_update();
DROP FUNCTION IF EXISTS billing_refuse_line_update();
DROP FUNCTION IF EXISTS billing_refuse_delete_unless_purged();
"""


def _pg_statements(mutable, encrypted) -> list[str]:
    return [
        PG_FUNCTIONS,
        "DROP TRIGGER IF EXISTS billing_invoice_refuse_update ON billing_invoice",
        "CREATE TRIGGER billing_invoice_refuse_update BEFORE UPDATE ON billing_invoice FOR EACH ROW "
        f"EXECUTE FUNCTION billing_refuse_invoice_update('{','.join(mutable)}', '{','.join(encrypted)}')",
        "DROP TRIGGER IF EXISTS billing_invoice_refuse_delete ON billing_invoice",
        "CREATE TRIGGER billing_invoice_refuse_delete BEFORE DELETE ON billing_invoice FOR EACH ROW "
        "EXECUTE FUNCTION billing_refuse_delete_unless_purged()",
        "DROP TRIGGER IF EXISTS billing_invoiceline_refuse_update ON billing_invoiceline",
        "CREATE TRIGGER billing_invoiceline_refuse_update BEFORE UPDATE ON billing_invoiceline FOR EACH ROW "
        "EXECUTE FUNCTION billing_refuse_line_update()",
        "DROP TRIGGER IF EXISTS billing_invoiceline_refuse_delete ON billing_invoiceline",
        "CREATE TRIGGER billing_invoiceline_refuse_delete BEFORE DELETE ON billing_invoiceline FOR EACH ROW "
        "EXECUTE FUNCTION billing_refuse_delete_unless_purged()",
    ]


def _sqlite_statements(columns, line_columns, mutable, encrypted) -> list[str]:
    # SQLite has no setting to recognise the retention purge by, so the one update a purge brings along
    # (a credit note's link to a purged invoice set to null) is admitted there.
    fixed = [c for c in columns if c not in mutable and c not in encrypted and c != "credited_invoice_id"]
    changed = [f'NEW."{c}" IS NOT OLD."{c}"' for c in fixed]
    changed.append('(NEW."credited_invoice_id" IS NOT OLD."credited_invoice_id" '
                   'AND NEW."credited_invoice_id" IS NOT NULL)')
    changed += [f'(NEW."{c}" IS NOT OLD."{c}" AND (NEW."{c}" IS NULL OR OLD."{c}" IS NULL '
                f'OR substr(NEW."{c}", 1, {KEY_PREFIX}) = substr(OLD."{c}", 1, {KEY_PREFIX})))' for c in encrypted]
    changed += ["(OLD.status = 'void' AND NEW.status <> 'void')",
                "(OLD.kind = 'credit_note' AND NEW.status <> OLD.status)"]
    return [
        "DROP TRIGGER IF EXISTS billing_invoice_refuse_update",
        "CREATE TRIGGER billing_invoice_refuse_update BEFORE UPDATE ON billing_invoice FOR EACH ROW WHEN "
        + " OR ".join(changed)
        + " BEGIN SELECT RAISE(ABORT, 'An issued document cannot be changed; corrections are credit notes.'); END",
        "DROP TRIGGER IF EXISTS billing_invoiceline_refuse_update",
        # Likewise a line's link to a purged subscription set to null; nothing else.
        "CREATE TRIGGER billing_invoiceline_refuse_update BEFORE UPDATE ON billing_invoiceline FOR EACH ROW "
        "WHEN NOT (NEW.subscription_id IS NULL AND OLD.subscription_id IS NOT NULL AND "
        + " AND ".join(f'NEW."{c}" IS OLD."{c}"' for c in line_columns if c != "subscription_id")
        + ") BEGIN SELECT RAISE(ABORT, 'Lines of an issued document cannot be changed; corrections are credit "
        "notes.'); END",
    ]


def install(schema_editor, *, mutable=INVOICE_MUTABLE, encrypted=INVOICE_ENCRYPTED) -> None:
    """(Re)create the triggers; safe to run again."""
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        statements = _pg_statements(mutable, encrypted)
    elif connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            columns = [c.name for c in connection.introspection.get_table_description(cursor, "billing_invoice")]
            line_columns = [c.name for c in connection.introspection.get_table_description(cursor,
                                                                                           "billing_invoiceline")]
        statements = _sqlite_statements(columns, line_columns, mutable, encrypted)
    else:
        return
    for statement in statements:
        schema_editor.execute(statement, params=None)


def uninstall(schema_editor) -> None:
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        schema_editor.execute(PG_DROP, params=None)
    elif connection.vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS billing_invoice_refuse_update", params=None)
        schema_editor.execute("DROP TRIGGER IF EXISTS billing_invoiceline_refuse_update", params=None)
