"""Replay what DBeaver, Metabase (both through pgjdbc) and psycopg send on connecting and when
browsing schemas, against a running `cchc serve`, through the extended protocol with bound
parameters (as pgjdbc does; object ids as int8, as DBeaver binds them).

Usage: replay.py PORT USER PASSWORD. Prints one line per statement, `ok <name> <rows>` or
`fail <name> <sqlstate> <message>`, and a last line `table <oid> columns <names…>` for the
columns DBeaver lists for `target_results`. The statements are those of the clients' sources
(pgjdbc ConnectionFactoryImpl/TypeInfoCache/PgDatabaseMetaData, DBeaver's PostgreSQL plugin,
Metabase's postgres driver); see README "Connecting a BI tool".
"""
import sys

import psycopg
from psycopg.types.numeric import Int8

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = psycopg.connect(host="127.0.0.1", port=port, user=user, password=password,
                       dbname="cchc", sslmode="disable", autocommit=True)


def run(name, sql, params=None):
    try:
        cur = conn.execute(sql, params, prepare=params is not None)
        rows = cur.fetchall() if cur.description else []
        print(f"ok {name} {len(rows)}")
        return rows
    except psycopg.Error as e:
        msg = str(e).splitlines()[0] if str(e) else ""
        print(f"fail {name} {e.sqlstate} {msg[:160]}")
        return None


# pgjdbc's start (42.7.x) and the connection methods clients call.
run("jdbc.extra_float_digits", "SET extra_float_digits = 3")
run("jdbc.application_name", "SET application_name = 'PostgreSQL JDBC Driver'")
run("jdbc.isolation", "SHOW TRANSACTION ISOLATION LEVEL")
run("jdbc.set_isolation",
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED")
run("jdbc.current_schema", "select current_schema()")
run("jdbc.type_of_oid",
    "SELECT n.nspname = ANY(current_schemas(true)), n.nspname, t.typname FROM pg_catalog.pg_type t "
    "JOIN pg_catalog.pg_namespace n ON t.typnamespace = n.oid WHERE t.oid = %s", (Int8(1034),))
run("jdbc.get_schemas",
    "SELECT nspname AS \"TABLE_SCHEM\", current_database() AS \"TABLE_CATALOG\" FROM pg_catalog.pg_namespace "
    "WHERE nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_' OR nspname = (pg_catalog.current_schemas(true))[1]) "
    "AND (nspname !~ '^pg_toast_temp_' OR nspname = replace((pg_catalog.current_schemas(true))[1], 'pg_temp_', 'pg_toast_temp_')) "
    "ORDER BY \"TABLE_SCHEM\"")

# DBeaver: connect, then browse a schema and a table.
run("dbeaver.application_name", "SET application_name = 'DBeaver 25.1.5 - Main <cchc>'")
run("dbeaver.database", "SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname=%s", ("cchc",))
run("dbeaver.version", "SELECT version()")
run("dbeaver.enum_probe", "SELECT * FROM pg_catalog.pg_enum WHERE 1<>1 LIMIT 1")
run("dbeaver.class_probe", "SELECT reltype FROM pg_catalog.pg_class WHERE 1<>1 LIMIT 1")
run("dbeaver.settings", "select * from pg_catalog.pg_settings where name=%s",
    ("standard_conforming_strings",))
run("dbeaver.defaults", "SELECT current_schema(),session_user")
schemas = run("dbeaver.schemas",
              "SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n "
              "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 "
              "AND d.classoid='pg_namespace'::regclass ORDER BY nspname")
run("dbeaver.search_path", "SHOW search_path")
public = [r[0] for r in (schemas or []) if r[2] == "public"]
tables = run("dbeaver.tables",
             "SELECT c.oid,c.*,d.description FROM pg_catalog.pg_class c "
             "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 "
             "AND d.classoid='pg_class'::regclass WHERE c.relnamespace=%s AND c.relkind not in ('i','I','c')",
             (Int8(public[0] if public else 0),))
oid = None
for r in tables or []:
    if "target_results" in r:
        oid = r[0]
columns = run("dbeaver.columns",
              "SELECT c.relname,a.attname,a.attnum,a.atttypid,dsc.description FROM pg_catalog.pg_attribute a "
              "INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid) "
              "LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum) "
              "LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid) "
              "WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=%s ORDER BY a.attnum",
              (Int8(oid or 0),))
run("dbeaver.constraints",
    "SELECT c.oid,c.*,t.relname as tabrelname FROM pg_catalog.pg_constraint c "
    "INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid WHERE c.conrelid=%s ORDER BY c.oid",
    (Int8(oid or 0),))
run("dbeaver.indexes",
    "SELECT i.*,c.relname FROM pg_catalog.pg_index i INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid "
    "WHERE i.indrelid=%s ORDER BY c.relname", (Int8(oid or 0),))
run("dbeaver.data", "SELECT * FROM public.target_results LIMIT 200")

# Metabase: connect and sync.
run("metabase.ping", "SELECT 1")
run("metabase.privileges",
    "with table_privileges as (select NULL as role, t.schemaname as schema, t.objectname as table, "
    "pg_catalog.has_any_column_privilege(current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"', 'select') as select "
    "from (select schemaname, tablename as objectname from pg_catalog.pg_tables union "
    "select schemaname, viewname as objectname from pg_catalog.pg_views) t "
    "where t.schemaname !~ '^pg_' and t.schemaname <> 'information_schema' "
    "and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')) select t.* from table_privileges t")
run("metabase.tables",
    "SELECT \"n\".\"nspname\" AS \"schema\", \"c\".\"relname\" AS \"name\", CASE \"c\".\"relkind\" WHEN 'r' THEN 'TABLE' "
    "WHEN 'v' THEN 'VIEW' ELSE NULL END AS \"type\", \"d\".\"description\" AS \"description\" "
    "FROM \"pg_catalog\".\"pg_class\" AS \"c\" INNER JOIN \"pg_catalog\".\"pg_namespace\" AS \"n\" ON \"c\".\"relnamespace\" = \"n\".\"oid\" "
    "LEFT JOIN \"pg_catalog\".\"pg_description\" AS \"d\" ON (\"c\".\"oid\" = \"d\".\"objoid\") AND (\"d\".\"objsubid\" = 0) "
    "AND (\"d\".\"classoid\" = 'pg_class'::regclass) WHERE (\"n\".\"nspname\" !~ %s) AND (\"n\".\"nspname\" <> %s) "
    "AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND (\"n\".\"nspname\" IN (%s)) ORDER BY \"type\" ASC, \"schema\" ASC, \"name\" ASC",
    ("^pg_", "information_schema", "public"))
run("metabase.timezone", "show timezone")
run("metabase.enums",
    "SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
    "WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)")
run("metabase.fields",
    "SELECT c.column_name AS name, c.data_type AS \"database-type\", c.ordinal_position - 1 AS \"database-position\", "
    "c.table_schema AS \"table-schema\", c.table_name AS \"table-name\", c.is_nullable "
    "FROM information_schema.columns AS c WHERE c.table_schema IN (%s) AND c.table_name IN (%s) "
    "ORDER BY \"table-schema\", \"table-name\", \"database-position\"", ("public", "target_results"))
run("metabase.sample", "SELECT \"public\".\"target_results\".\"target_id\" AS \"target_id\" FROM \"public\".\"target_results\" LIMIT 10000")

# The statements as the clients write them in full, functions and all. Those that fail are
# named in the README ("known not to work"); they are reported, not required.
run("full.dbeaver.tables",
    "SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  "
    "pg_catalog.pg_get_partkeydef(c.oid) as partition_key FROM pg_catalog.pg_class c "
    "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass "
    "WHERE c.relnamespace=%s AND c.relkind not in ('i','I','c')", (Int8(public[0] if public else 0),))
run("full.dbeaver.columns",
    "SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid "
    "FROM pg_catalog.pg_attribute a INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid) "
    "LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum) "
    "LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid) "
    "LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid "
    "WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=%s ORDER BY a.attnum", (Int8(oid or 0),))
run("full.dbeaver.types",
    "SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description "
    "FROM pg_catalog.pg_type t LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem "
    "LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid "
    "WHERE t.typname IS NOT NULL AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C')")
run("full.dbeaver.sizes",
    "select c.oid,pg_catalog.pg_total_relation_size(c.oid) as total_rel_size,pg_catalog.pg_relation_size(c.oid) as rel_size "
    "FROM pg_class c WHERE c.relnamespace=%s", (Int8(public[0] if public else 0),))
run("full.jdbc.array_type",
    "SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid FROM pg_catalog.pg_type "
    "LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r from pg_namespace as ns join ( select s.r, (current_schemas(false))[s.r] as nspname "
    "from generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) as r using ( nspname ) ) as sp "
    "ON sp.nspoid = typnamespace WHERE pg_type.oid = %s ORDER BY sp.r, pg_type.oid DESC", (Int8(1034),))
run("full.jdbc.get_columns",
    "SELECT * FROM (SELECT current_database(), n.nspname,c.relname,a.attname,a.atttypid,a.attnotnull OR (t.typtype = 'd' AND t.typnotnull) AS attnotnull,"
    "a.atttypmod,a.attlen,t.typtypmod,row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS attnum, nullif(a.attidentity, '') as attidentity,"
    "nullif(a.attgenerated, '') as attgenerated,pg_catalog.pg_get_expr(def.adbin, def.adrelid) AS adsrc,dsc.description,t.typbasetype,t.typtype "
    "FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_class c ON (c.relnamespace = n.oid) JOIN pg_catalog.pg_attribute a ON (a.attrelid=c.oid) "
    "JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid) LEFT JOIN pg_catalog.pg_attrdef def ON (a.attrelid=def.adrelid AND a.attnum = def.adnum) "
    "LEFT JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid) "
    "LEFT JOIN pg_catalog.pg_class dc ON (dc.oid=dsc.classoid AND dc.relname='pg_class') "
    "LEFT JOIN pg_catalog.pg_namespace dn ON (dc.relnamespace=dn.oid AND dn.nspname='pg_catalog') "
    "WHERE c.relkind in ('r','p','v','f','m') and a.attnum > 0 AND NOT a.attisdropped AND n.nspname LIKE 'public' AND c.relname LIKE 'target_results') c "
    "WHERE true AND attname LIKE '%%' ORDER BY nspname,c.relname,attnum")
# Metabase's field sync (describe-fields of its postgres driver, as HoneySQL writes it).
fields = run("full.metabase.fields",
    "SELECT \"c\".\"column_name\" AS \"name\", CASE WHEN \"c\".\"udt_schema\" IN (%s, %s) THEN FORMAT(%s, \"c\".\"udt_name\") "
    "ELSE FORMAT(%s, \"c\".\"udt_schema\", \"c\".\"udt_name\") END AS \"database-type\", "
    "\"c\".\"ordinal_position\" - 1 AS \"database-position\", \"c\".\"table_schema\" AS \"table-schema\", "
    "\"c\".\"table_name\" AS \"table-name\", \"pk\".\"column_name\" IS NOT NULL AS \"pk?\", "
    "COL_DESCRIPTION(CAST(CAST(FORMAT(%s, CAST(\"c\".\"table_schema\" AS TEXT), CAST(\"c\".\"table_name\" AS TEXT)) AS REGCLASS) AS OID), \"c\".\"ordinal_position\") AS \"field-comment\", "
    "((\"column_default\" IS NULL) OR (LOWER(\"column_default\") = %s)) AND (\"is_nullable\" = %s) AND NOT (((\"column_default\" IS NOT NULL) "
    "AND (\"column_default\" LIKE %s)) OR (\"is_identity\" <> %s)) AS \"database-required\", "
    "((\"column_default\" IS NOT NULL) AND (\"column_default\" LIKE %s)) OR (\"is_identity\" <> %s) AS \"database-is-auto-increment\" "
    "FROM \"information_schema\".\"columns\" AS \"c\" "
    "LEFT JOIN (SELECT \"tc\".\"table_schema\", \"tc\".\"table_name\", \"kc\".\"column_name\" "
    "FROM \"information_schema\".\"table_constraints\" AS \"tc\" INNER JOIN \"information_schema\".\"key_column_usage\" AS \"kc\" "
    "ON (\"tc\".\"constraint_name\" = \"kc\".\"constraint_name\") AND (\"tc\".\"table_schema\" = \"kc\".\"table_schema\") "
    "AND (\"tc\".\"table_name\" = \"kc\".\"table_name\") WHERE \"tc\".\"constraint_type\" = %s) AS \"pk\" "
    "ON (\"c\".\"table_schema\" = \"pk\".\"table_schema\") AND (\"c\".\"table_name\" = \"pk\".\"table_name\") "
    "AND (\"c\".\"column_name\" = \"pk\".\"column_name\") "
    "WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND (\"c\".\"table_schema\" IN (%s)) "
    "AND (\"c\".\"table_name\" IN (%s)) ORDER BY \"table-schema\" ASC, \"table-name\" ASC, \"database-position\" ASC",
    ("public", "pg_catalog", "%I", "%I.%I", "%I.%I", "null", "NO", "%nextval(%", "NO", "%nextval(%", "NO",
     "PRIMARY KEY", "public", "target_results"))
run("full.metabase.indexes",
    "SELECT (INFORMATION_SCHEMA._PG_EXPANDARRAY(i.indkey)).n AS pos FROM pg_catalog.pg_index i")

print("table", oid, "columns", " ".join(r[1] for r in columns or []))
# What Metabase records of target_results's fields: name:type:position:pk:required:comment.
print("fields", " ".join(f"{r[0]}:{r[1]}:{r[2]}:{r[5]}:{r[7]}:{r[6]}" for r in fields or []))
