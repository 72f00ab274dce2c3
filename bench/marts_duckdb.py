"""The peer of `cchc refresh --full`: DuckDB (2 threads) runs the same model SQL of
pipelines/compliance.yaml over the same staged Parquet, with the same versions and state views
(src/warehouse/state.rs) and the same periods, materialises every mart and writes it to Parquet.

usage: marts_duckdb.py WAREHOUSE OUT_DIR FIRST_DAY LAST_DAY UNITS_CSV
"""
import datetime as dt
import os
import sys

import duckdb
import yaml

wh, out, first, last, units = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
first, last = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
root = os.path.dirname(os.path.abspath(__file__)) + "/.."

# An error exits with 3: exit 1 is a run with a failed target to the bench's `measure`.
sys.excepthook = lambda t, e, tb: (sys.__excepthook__(t, e, tb), os._exit(3))

con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("SET TimeZone = 'Asia/Ho_Chi_Minh'")
# cchc's function of the model SQL (src/warehouse/engine.rs), in DuckDB's terms.
con.execute("CREATE MACRO cchc_list_min(l, f) AS list_min(list_transform(l, lambda x: struct_extract(x, f)))")

KEYS = {"dossiers": "dossier_id", "documents": "doc_id", "procedures": "procedure_code",
        "signature_events": "event_id"}
pipelines = [yaml.safe_load(open(f"{root}/pipelines/{f}"))
             for f in sorted(os.listdir(f"{root}/pipelines")) if f.endswith(".yaml")]
# Each source's derived columns (README "Derived columns"), computed per version as cchc does.
derived = {s["name"]: s.get("derived", []) for p in pipelines for s in p.get("sources", [])}
for t in KEYS:
    cols = "".join(f", {d['sql']} AS {d['name']}" for d in derived.get(t, []))
    con.execute(f"CREATE VIEW {t} AS SELECT *{cols} FROM read_parquet('{wh}/staging/{t}/*/*.parquet')")
ORDER = "extract_date, source_file, source_position"
for t in ["dossiers", "documents"]:
    con.execute(f"""CREATE VIEW {t}_versions AS SELECT *, extract_date AS valid_from,
        lead(extract_date) OVER (PARTITION BY {KEYS[t]} ORDER BY {ORDER}) AS valid_to FROM {t}""")
con.execute(f"""CREATE VIEW signature_events_versions AS SELECT * EXCLUDE (version_rank),
    extract_date AS valid_from, CAST(NULL AS DATE) AS valid_to FROM (
    SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY {ORDER}) AS version_rank
    FROM signature_events) WHERE version_rank = 1""")
con.execute("""CREATE VIEW procedures_versions AS SELECT v.*, v.extract_date AS valid_from,
    s.next_day AS valid_to FROM procedures v JOIN (SELECT extract_date, source_file,
    lead(extract_date) OVER (ORDER BY extract_date, source_file) AS next_day
    FROM (SELECT DISTINCT extract_date, source_file FROM procedures)) s
    ON v.extract_date = s.extract_date AND v.source_file = s.source_file""")

# Every month of the range and its year, as of the last ingested day in it.
periods = []
d = first.replace(day=1)
while d <= last:
    nxt = (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    end = nxt - dt.timedelta(days=1)
    periods.append((d.strftime("%Y-%m"), "month", d, end, min(end, last), last >= end))
    d = nxt
for y in sorted({p[2].year for p in periods}):
    s, e = dt.date(y, 1, 1), dt.date(y, 12, 31)
    periods.append((str(y), "year", s, e, min(e, last), last >= e))
con.execute("""CREATE TABLE periods (period VARCHAR, period_kind VARCHAR, period_start DATE,
    period_end DATE, as_of DATE, "final" BOOLEAN)""")
con.executemany("INSERT INTO periods VALUES (?, ?, ?, ?, ?, ?)", periods)
for t in KEYS:
    con.execute(f"""CREATE VIEW {t}_state AS SELECT p.period, p.period_kind, p.period_start,
        p.period_end, p.as_of, p."final", v.* FROM periods p JOIN {t}_versions v
        ON v.valid_from <= p.as_of AND (v.valid_to IS NULL OR v.valid_to > p.as_of)""")

# The units each period reports (src/warehouse/models.rs `unit_periods`): the rows of units.csv
# valid on its as-of day, `valid_from` <= E < `valid_to` (empty or absent: open).
con.execute(f"CREATE TABLE units AS SELECT * FROM read_csv('{units}', header = true, all_varchar = true)")
ucols = {r[0] for r in con.execute("DESCRIBE units").fetchall()}
since = "(nullif(u.valid_from, '') IS NULL OR CAST(u.valid_from AS DATE) <= p.as_of)" if "valid_from" in ucols else "true"
until = "(nullif(u.valid_to, '') IS NULL OR p.as_of < CAST(u.valid_to AS DATE))" if "valid_to" in ucols else "true"
con.execute(f"""CREATE VIEW unit_periods AS SELECT p.period, p.period_start, p.as_of, p."final",
    u.unit_code FROM periods p JOIN units u ON {since} AND {until}""")

models = [m for p in pipelines for m in p.get("models", [])]
os.makedirs(out, exist_ok=True)
for m in models:
    if m.get("materialized", "table") == "view":
        con.execute(f"CREATE VIEW {m['name']} AS {m['sql']}")
    else:
        con.execute(f"CREATE TABLE {m['name']} AS {m['sql']}")
        con.execute(f"COPY {m['name']} TO '{out}/{m['name']}.parquet' (FORMAT PARQUET)")
        n = con.execute(f"SELECT count(*) FROM {m['name']}").fetchone()[0]
        print(m["name"], n)
