"""PostgreSQL table definitions read from the catalogue, and the DDL that recreates them.

What a definition covers (and a restore recreates when a table was dropped or changed): the
columns (type, collation, default, NOT NULL, identity, stored generated expression), the
table's constraints (primary key, unique, check, exclusion, foreign keys), its other indexes,
its triggers (and whether each is enabled), the sequences its columns own (serial and
identity, with their current values), UNLOGGED, and the privileges granted on it. Foreign keys
of other tables that point at it are recorded too, so they can be put back.

Not covered: the table's owner (a recreated table belongs to the restoring role), comments,
row-level security policies, storage parameters, inheritance, partitioned tables (refused),
and objects outside tables (views, functions, types, extensions), which must still exist.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from releasectl.clients.sql import Database, quote_ident
from releasectl.errors import TargetError

_USER_SCHEMA = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'"
)
Key = tuple[str, str]  # (schema, table)


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def display(key: Key) -> str:
    return f"{key[0]}.{key[1]}"


def current_schema(db: Database) -> str:
    rows = db.query("SELECT current_schema()")
    if not rows or rows[0][0] is None:
        raise TargetError("the connection has no current schema (check search_path)")
    return str(rows[0][0])


def user_tables(db: Database) -> list[Key]:
    rows = db.query(
        "SELECT n.nspname, c.relname FROM pg_class c "  # noqa: S608 (constant text)
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE c.relkind IN ('r', 'p') AND {_USER_SCHEMA} ORDER BY 1, 2"
    )
    return [(str(s), str(t)) for s, t in rows]


def locate(db: Database, name: str) -> Key | None:
    """Where an (optionally qualified) table name resolves through the search path."""
    rows = db.query(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.oid = to_regclass(%s)",
        (quote_ident(name),),
    )
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def _escape(text: str) -> str:
    return "".join(f"[{ch}]" if ch in "*?[" else ch for ch in text)


def select(db: Database, patterns: list[str], exclude: set[Key]) -> list[Key]:
    """Tables named by scope patterns: `name` (in the current schema) or `schema.name`, with
    globs (`*`, `?`, `[..]`) in either part."""
    schema = _escape(current_schema(db))
    full = [p if "." in p else f"{schema}.{p}" for p in patterns]
    return [
        key
        for key in user_tables(db)
        if key not in exclude and any(fnmatchcase(display(key), p) for p in full)
    ]


def _oid(db: Database, key: Key) -> int | None:
    rows = db.query(
        "SELECT c.oid, c.relkind, c.relispartition FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        key,
    )
    if not rows:
        return None
    oid, kind, partition = rows[0]
    if kind == "p" or partition:
        raise TargetError(f"table {display(key)}: partitioned tables cannot be backed up")
    return int(oid)


def describe(db: Database, key: Key) -> dict[str, Any] | None:
    """The definition of table `key`, or None if it does not exist."""
    oid = _oid(db, key)
    if oid is None:
        return None
    persistence = db.query("SELECT relpersistence FROM pg_class WHERE oid = %s", (oid,))[0][0]
    columns = [
        {
            "name": name,
            "type": type_,
            "notnull": bool(notnull),
            "default": default,
            "identity": identity or "",
            "generated": generated or "",
            "collation": collation,
        }
        for name, type_, notnull, default, identity, generated, collation in db.query(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated, "
            "CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation "
            "THEN quote_ident(cn.nspname) || '.' || quote_ident(co.collname) END "
            "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "LEFT JOIN pg_collation co ON co.oid = a.attcollation "
            "LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace "
            "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            (oid,),
        )
    ]
    constraints = [
        {"name": n, "type": t, "def": d}
        for n, t, d in db.query(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s AND contype IN ('p', 'u', 'c', 'x', 'f') ORDER BY conname",
            (oid,),
        )
    ]
    indexes = [
        str(r[0])
        for r in db.query(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i WHERE i.indrelid = %s "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = i.indrelid "
            "AND c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x')) ORDER BY 1",
            (oid,),
        )
    ]
    triggers = [
        {"name": n, "def": d, "enabled": e}
        for n, d, e in db.query(
            "SELECT tgname, pg_get_triggerdef(oid), tgenabled FROM pg_trigger "
            "WHERE tgrelid = %s AND NOT tgisinternal ORDER BY tgname",
            (oid,),
        )
    ]
    return {
        "schema": key[0],
        "name": key[1],
        "unlogged": persistence == "u",
        "columns": columns,
        "constraints": constraints,
        "indexes": indexes,
        "triggers": triggers,
        "sequences": _sequences(db, oid),
        "grants": _grants(db, oid),
        "incoming": incoming(db, [oid]),
    }


def shape(defn: dict[str, Any]) -> dict[str, Any]:
    """The parts of a definition that decide whether a table must be recreated."""
    return {
        "unlogged": defn["unlogged"],
        "columns": defn["columns"],
        "constraints": [c for c in defn["constraints"] if c["type"] != "f"],
        "indexes": defn["indexes"],
        "triggers": [(t["name"], t["def"]) for t in defn["triggers"]],
    }


def copy_columns(defn: dict[str, Any]) -> list[str]:
    return [c["name"] for c in defn["columns"] if not c["generated"]]


def _sequences(db: Database, oid: int) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT a.attname, sn.nspname, s.relname, format_type(q.seqtypid, NULL), q.seqstart, "
        "q.seqincrement, q.seqmin, q.seqmax, q.seqcache, q.seqcycle "
        "FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
        "JOIN pg_namespace sn ON sn.oid = s.relnamespace "
        "JOIN pg_sequence q ON q.seqrelid = s.oid "
        "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
        "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
        "AND d.refobjid = %s AND d.deptype IN ('a', 'i') ORDER BY a.attnum",
        (oid,),
    )
    out: list[dict[str, Any]] = []
    for column, schema, name, type_, start, inc, low, high, cache, cycle in rows:
        query = f"SELECT last_value, is_called FROM {qualified(schema, name)}"  # noqa: S608
        last, called = db.query(query)[0]
        out.append(
            {
                "column": column,
                "schema": schema,
                "name": name,
                "type": type_,
                "options": f"INCREMENT BY {inc} MINVALUE {low} MAXVALUE {high} START WITH {start} "
                f"CACHE {cache} {'CYCLE' if cycle else 'NO CYCLE'}",
                "last_value": int(last),
                "is_called": bool(called),
            }
        )
    return out


def _grants(db: Database, oid: int) -> list[list[Any]]:
    rows = db.query(
        "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END, "
        "a.privilege_type, a.is_grantable "
        "FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a "
        "LEFT JOIN pg_roles r ON r.oid = a.grantee WHERE c.oid = %s AND a.grantee <> c.relowner "
        "ORDER BY 1, 2",
        (oid,),
    )
    return [[str(g), str(p), bool(o)] for g, p, o in rows]


def incoming(db: Database, oids: list[int]) -> list[dict[str, str]]:
    """Foreign keys of other tables that reference the tables `oids`."""
    rows = db.query(
        "SELECT n.nspname, c.relname, con.conname, pg_get_constraintdef(con.oid) "
        "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE con.contype = 'f' AND con.confrelid = ANY(%s::oid[]) "
        "AND con.conrelid <> con.confrelid ORDER BY 1, 2, 3",
        (oids,),
    )
    return [{"schema": s, "table": t, "name": n, "def": d} for s, t, n, d in rows]


def oids(db: Database, keys: list[Key]) -> list[int]:
    found = [_oid(db, key) for key in keys]
    return [o for o in found if o is not None]


def has_constraint(db: Database, key: Key, name: str) -> bool:
    rows = db.query(
        "SELECT 1 FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = %s AND con.conname = %s",
        (*key, name),
    )
    return bool(rows)


# --- DDL -----------------------------------------------------------------------------------


def create_statements(defn: dict[str, Any]) -> list[str]:
    """Schema, owned sequences, the table with its non-FK constraints, and its grants."""
    table = qualified(defn["schema"], defn["name"])
    identity_seq = {s["column"]: s for s in defn["sequences"]}
    out = [f"CREATE SCHEMA IF NOT EXISTS {quote_ident(defn['schema'])}"]
    serial = [
        s
        for s in defn["sequences"]
        if not any(c["name"] == s["column"] and c["identity"] for c in defn["columns"])
    ]
    for seq in serial:
        out.append(
            f"CREATE SEQUENCE IF NOT EXISTS {qualified(seq['schema'], seq['name'])} "
            f"AS {seq['type']} {seq['options']}"
        )
    parts = [_column(c, identity_seq.get(c["name"])) for c in defn["columns"]]
    parts += [
        f"CONSTRAINT {quote_ident(c['name'])} {c['def']}"
        for c in defn["constraints"]
        if c["type"] != "f"
    ]
    body = ",\n    ".join(parts)
    out.append(f"CREATE {'UNLOGGED ' if defn['unlogged'] else ''}TABLE {table} (\n    {body}\n)")
    for seq in serial:
        out.append(
            f"ALTER SEQUENCE {qualified(seq['schema'], seq['name'])} "
            f"OWNED BY {table}.{quote_ident(seq['column'])}"
        )
    for grantee, privilege, grantable in defn["grants"]:
        option = " WITH GRANT OPTION" if grantable else ""
        out.append(f"GRANT {privilege} ON TABLE {table} TO {grantee}{option}")
    return out


def _column(col: dict[str, Any], seq: dict[str, Any] | None) -> str:
    text = f"{quote_ident(col['name'])} {col['type']}"
    if col["collation"]:
        text += f" COLLATE {col['collation']}"
    if col["generated"]:
        text += f" GENERATED ALWAYS AS ({col['default']}) STORED"
    elif col["default"] is not None:
        text += f" DEFAULT {col['default']}"
    if col["identity"]:
        kind = "ALWAYS" if col["identity"] == "a" else "BY DEFAULT"
        options = ""
        if seq is not None:
            options = f" (SEQUENCE NAME {qualified(seq['schema'], seq['name'])} {seq['options']})"
        text += f" GENERATED {kind} AS IDENTITY{options}"
    if col["notnull"]:
        text += " NOT NULL"
    return text


_TRIGGER_STATE = {"D": "DISABLE", "O": "ENABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


def trigger_state(defn: dict[str, Any]) -> list[str]:
    table = qualified(defn["schema"], defn["name"])
    return [
        f"ALTER TABLE {table} {_TRIGGER_STATE.get(t['enabled'], 'ENABLE')} TRIGGER "
        f"{quote_ident(t['name'])}"
        for t in defn["triggers"]
    ]
