//! What BI clients ask of a PostgreSQL server beyond `datafusion-postgres`'s `pg_catalog`:
//!
//! - `information_schema` as PostgreSQL has it. DataFusion's own `columns` names Arrow types
//!   (`Utf8`, `Timestamp(µs, "Asia/Ho_Chi_Minh")`), counts positions from 0 and lacks `udt_name`,
//!   `udt_schema` and `is_identity`; `table_constraints`, `key_column_usage`,
//!   `constraint_column_usage` and `referential_constraints` do not exist. A statement that names
//!   them reads, in their place, a derived table over DataFusion's with PostgreSQL's columns,
//!   type names (those of the wire types the server sends) and 1-based positions; the published
//!   tables declare no keys, so the constraint tables are empty. Metabase's field sync reads
//!   exactly these.
//! - `col_description` and `obj_description`: no table or column carries a comment
//!   (`pg_description` is empty), so both are NULL, whatever their arguments (which are not
//!   evaluated: Metabase passes `CAST(format(..) AS regclass)` of a column, a cast the catalog
//!   only resolves for literals).
//! - `format(fmt, args...)` with `%s`, `%I`, `%L`, `%%` and positions (`%2$s`); widths are not
//!   supported. `%I` quotes an identifier unless it is lowercase letters, digits and `_` (it does
//!   not know PostgreSQL's reserved words).
//!
//! Only a statement that names one of these is rewritten, and it is written back as SQL only if
//! something changed, so every other statement reaches `datafusion-postgres` byte for byte.

use std::borrow::Cow;
use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::{
    Expr, ObjectName, Query, TableAlias, TableFactor, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser as SqlParser;
use datafusion_postgres::pgwire;
use datafusion_postgres::Parser;
use pgwire::api::portal::Format;
use pgwire::api::results::FieldInfo;
use pgwire::api::stmt::QueryParser;
use pgwire::api::{ClientInfo, Type};
use pgwire::error::PgWireResult;

/// PostgreSQL's name and `udt_name` of each Arrow type (as DataFusion's `information_schema`
/// spells it) the published tables use, matching the wire types the server sends.
const TYPES: &str = "CASE \
    WHEN data_type IN ('Utf8', 'LargeUtf8', 'Utf8View') THEN '{text}' \
    WHEN data_type IN ('Int64', 'UInt32') THEN '{int8}' \
    WHEN data_type IN ('Int32', 'UInt16') THEN '{int4}' \
    WHEN data_type IN ('Int16', 'Int8', 'UInt8') THEN '{int2}' \
    WHEN data_type = 'Float64' THEN '{float8}' \
    WHEN data_type = 'Float32' THEN '{float4}' \
    WHEN data_type = 'Boolean' THEN '{bool}' \
    WHEN data_type IN ('Date32', 'Date64') THEN '{date}' \
    WHEN data_type IN ('Binary', 'LargeBinary', 'BinaryView') THEN '{bytea}' \
    WHEN data_type LIKE 'Timestamp(%,%' THEN '{timestamptz}' \
    WHEN data_type LIKE 'Timestamp(%' THEN '{timestamp}' \
    WHEN data_type LIKE 'Decimal%' THEN '{numeric}' \
    WHEN data_type LIKE 'List(Utf8%' THEN '{_text}' \
    WHEN data_type = 'List(Int64)' THEN '{_int8}' \
    WHEN data_type = 'List(Int32)' THEN '{_int4}' \
    WHEN data_type LIKE 'List(%' THEN '{_record}' \
    ELSE '{text}' END";

/// (udt_name, data_type) of the names in [`TYPES`].
const NAMES: [(&str, &str); 16] = [
    ("text", "text"),
    ("int8", "bigint"),
    ("int4", "integer"),
    ("int2", "smallint"),
    ("float8", "double precision"),
    ("float4", "real"),
    ("bool", "boolean"),
    ("date", "date"),
    ("bytea", "bytea"),
    ("timestamptz", "timestamp with time zone"),
    ("timestamp", "timestamp without time zone"),
    ("numeric", "numeric"),
    ("_text", "ARRAY"),
    ("_int8", "ARRAY"),
    ("_int4", "ARRAY"),
    ("_record", "ARRAY"),
];

fn type_case(udt: bool) -> String {
    NAMES.iter().fold(TYPES.to_string(), |s, (udt_name, name)| {
        s.replace(
            &format!("'{{{udt_name}}}'"),
            &format!("'{}'", if udt { udt_name } else { name }),
        )
    })
}

/// The SQL read in place of `information_schema.<table>`, if it is one we complete. (The
/// rewrite replaces a table after visiting it, so it does not visit the replacement's own
/// reference to DataFusion's table.)
fn replacement(table: &str) -> Option<String> {
    let no_rows = |cols: &[(&str, &str)]| {
        let cols: Vec<String> = cols
            .iter()
            .map(|(c, t)| format!("CAST(NULL AS {t}) AS {c}"))
            .collect();
        format!("SELECT {} WHERE false", cols.join(", "))
    };
    const T: &str = "TEXT";
    const I: &str = "INT";
    Some(match table {
        "columns" => format!(
            "SELECT table_catalog, table_schema, table_name, column_name, \
             CAST(ordinal_position + 1 AS INT) AS ordinal_position, column_default, is_nullable, \
             {} AS data_type, character_maximum_length, character_octet_length, \
             numeric_precision, numeric_precision_radix, numeric_scale, datetime_precision, \
             interval_type, table_catalog AS udt_catalog, 'pg_catalog' AS udt_schema, \
             {} AS udt_name, 'NO' AS is_identity, 'NEVER' AS is_generated, \
             'NO' AS is_updatable FROM \"information_schema\".\"columns\"",
            type_case(false),
            type_case(true)
        ),
        "table_constraints" => no_rows(&[
            ("constraint_catalog", T),
            ("constraint_schema", T),
            ("constraint_name", T),
            ("table_catalog", T),
            ("table_schema", T),
            ("table_name", T),
            ("constraint_type", T),
            ("is_deferrable", T),
            ("initially_deferred", T),
            ("enforced", T),
            ("nulls_distinct", T),
        ]),
        "key_column_usage" => no_rows(&[
            ("constraint_catalog", T),
            ("constraint_schema", T),
            ("constraint_name", T),
            ("table_catalog", T),
            ("table_schema", T),
            ("table_name", T),
            ("column_name", T),
            ("ordinal_position", I),
            ("position_in_unique_constraint", I),
        ]),
        "constraint_column_usage" => no_rows(&[
            ("table_catalog", T),
            ("table_schema", T),
            ("table_name", T),
            ("column_name", T),
            ("constraint_catalog", T),
            ("constraint_schema", T),
            ("constraint_name", T),
        ]),
        "referential_constraints" => no_rows(&[
            ("constraint_catalog", T),
            ("constraint_schema", T),
            ("constraint_name", T),
            ("unique_constraint_catalog", T),
            ("unique_constraint_schema", T),
            ("unique_constraint_name", T),
            ("match_option", T),
            ("update_rule", T),
            ("delete_rule", T),
        ]),
        _ => return None,
    })
}

/// The parts of a name as PostgreSQL resolves them (unquoted ones lowercased); None if a part is
/// not an identifier.
fn resolved(name: &ObjectName) -> Option<Vec<String>> {
    name.0
        .iter()
        .map(|p| {
            p.as_ident().map(|i| match i.quote_style {
                None => i.value.to_lowercase(),
                Some(_) => i.value.clone(),
            })
        })
        .collect()
}

fn parse_query(sql: &str) -> Option<Query> {
    SqlParser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_query())
        .ok()
        .map(|q| *q)
}

struct Compat {
    changed: bool,
}

impl VisitorMut for Compat {
    type Break = ();

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        let parts = resolved(name).unwrap_or_default();
        let table = match parts.as_slice() {
            [schema, table] | [_, schema, table] if schema == "information_schema" => table,
            _ => return ControlFlow::Continue(()),
        };
        let Some(subquery) = replacement(table).and_then(|sql| parse_query(&sql)) else {
            return ControlFlow::Continue(());
        };
        let alias = alias.take().unwrap_or_else(|| TableAlias {
            explicit: true,
            name: table.as_str().into(),
            columns: vec![],
            at: None,
        });
        *factor = TableFactor::Derived {
            lateral: false,
            subquery: Box::new(subquery),
            alias: Some(alias),
            sample: None,
        };
        self.changed = true;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            let last = f.name.0.last().and_then(|p| p.as_ident());
            if last.is_some_and(|i| {
                let n = i.value.to_lowercase();
                n == "col_description" || n == "obj_description"
            }) {
                *expr = Expr::Cast {
                    kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
                    expr: Box::new(Expr::Value(
                        datafusion::sql::sqlparser::ast::Value::Null.into(),
                    )),
                    data_type: datafusion::sql::sqlparser::ast::DataType::Text,
                    array: false,
                    format: None,
                };
                self.changed = true;
            }
        }
        ControlFlow::Continue(())
    }
}

/// `sql` with the references above replaced; the text itself when it names none of them (or
/// does not parse: the server's parser then reports the error).
pub fn rewrite(sql: &str) -> Cow<'_, str> {
    let lower = sql.to_lowercase();
    if !["information_schema", "col_description", "obj_description"]
        .iter()
        .any(|w| lower.contains(w))
    {
        return Cow::Borrowed(sql);
    }
    let Ok(mut statements) = SqlParser::parse_sql(&PostgreSqlDialect {}, sql) else {
        return Cow::Borrowed(sql);
    };
    let mut compat = Compat { changed: false };
    let _ = statements.visit(&mut compat);
    if !compat.changed {
        return Cow::Borrowed(sql);
    }
    let text: Vec<String> = statements.iter().map(|s| s.to_string()).collect();
    Cow::Owned(text.join(";\n"))
}

/// `datafusion-postgres`'s parser of extended-protocol statements, after [`rewrite`].
pub struct CompatParser(pub Arc<Parser>);

#[async_trait]
impl QueryParser for CompatParser {
    type Statement = <Parser as QueryParser>::Statement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        self.0.parse_sql(client, &rewrite(sql), types).await
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        self.0.get_parameter_types(stmt)
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        self.0.get_result_schema(stmt, column_format)
    }
}

// ---------------------------------------------------------------------------------------------
// format()

/// PostgreSQL's `format(fmt, args...)`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Format_ {
    signature: Signature,
}

/// `%I` of PostgreSQL, without its list of reserved words.
fn quote_ident(s: &str) -> String {
    let plain = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// One formatted string; `args` are the arguments as text (None for NULL).
pub fn format_one(fmt: &str, args: &[Option<&str>]) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(fmt.len());
    let mut chars = fmt.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut digits = String::new();
        while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            digits.push(*d);
            chars.next();
        }
        let index = if digits.is_empty() {
            next
        } else if chars.peek() == Some(&'$') {
            chars.next();
            match digits.parse::<usize>() {
                Ok(n) if n >= 1 => n - 1,
                _ => {
                    return Err(
                        "format specifies argument 0, but arguments are numbered from 1".into(),
                    )
                }
            }
        } else {
            return Err("format(): widths are not supported".into());
        };
        let kind = chars
            .next()
            .ok_or_else(|| "unterminated format() type specifier".to_string())?;
        let arg = *args
            .get(index)
            .ok_or_else(|| "too few arguments for format()".to_string())?;
        next = index + 1;
        match (kind, arg) {
            ('s', Some(a)) => out.push_str(a),
            ('s', None) => {}
            ('I', Some(a)) => out.push_str(&quote_ident(a)),
            ('I', None) => {
                return Err("null values cannot be formatted as an SQL identifier".into())
            }
            ('L', Some(a)) => out.push_str(&format!("'{}'", a.replace('\'', "''"))),
            ('L', None) => out.push_str("NULL"),
            (k, _) => return Err(format!("unrecognized format() type specifier \"{k}\"")),
        }
    }
    Ok(out)
}

impl ScalarUDFImpl for Format_ {
    fn name(&self) -> &str {
        "format"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let text: Vec<ArrayRef> = arrays
            .iter()
            .map(|a| cast(a, &DataType::Utf8))
            .collect::<std::result::Result<_, _>>()?;
        let text: Vec<_> = text.iter().map(|a| a.as_string::<i32>()).collect();
        let Some((fmt, rest)) = text.split_first() else {
            return exec_err!("format() needs a format string");
        };
        let rows = fmt.len();
        let mut out = StringBuilder::with_capacity(rows, rows * 16);
        for row in 0..rows {
            if fmt.is_null(row) {
                out.append_null();
                continue;
            }
            let values: Vec<Option<&str>> = rest
                .iter()
                .map(|a| (!a.is_null(row)).then(|| a.value(row)))
                .collect();
            match format_one(fmt.value(row), &values) {
                Ok(s) => out.append_value(s),
                Err(e) => return exec_err!("{e}"),
            }
        }
        let out: ArrayRef = Arc::new(out.finish());
        if scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// Register the functions above in a session.
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::from(Format_ {
        signature: Signature::variadic_any(Volatility::Immutable),
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_follows_postgres() {
        let f = |fmt: &str, args: &[Option<&str>]| format_one(fmt, args);
        assert_eq!(
            f("%I.%I", &[Some("public"), Some("target_results")]).unwrap(),
            "public.target_results"
        );
        assert_eq!(
            f("%I", &[Some("Mixed \"q\"")]).unwrap(),
            "\"Mixed \"\"q\"\"\""
        );
        assert_eq!(
            f("%L and %s%%", &[Some("it's"), None]).unwrap(),
            "'it''s' and %"
        );
        assert_eq!(f("%L", &[None]).unwrap(), "NULL");
        assert_eq!(f("%2$s %1$s %s", &[Some("a"), Some("b")]).unwrap(), "b a b");
        assert!(f("%I", &[None]).unwrap_err().contains("identifier"));
        assert!(f("%s %s", &[Some("a")]).unwrap_err().contains("too few"));
        assert!(f("%5s", &[Some("a")]).is_err());
    }

    #[test]
    fn only_statements_naming_the_completed_parts_are_rewritten() {
        let plain = "SELECT relname FROM pg_catalog.pg_class";
        assert!(matches!(rewrite(plain), Cow::Borrowed(s) if s == plain));
        let tables = "SELECT table_name FROM information_schema.tables";
        assert!(matches!(rewrite(tables), Cow::Borrowed(_)));
        let cols = rewrite("SELECT c.udt_name FROM information_schema.columns AS c");
        assert!(cols.contains("AS udt_name"), "{cols}");
        assert!(
            cols.contains("\"information_schema\".\"columns\""),
            "{cols}"
        );
        let quoted = rewrite("SELECT 1 FROM \"information_schema\".\"key_column_usage\" AS kc");
        assert!(quoted.contains("position_in_unique_constraint"), "{quoted}");
        let comment =
            rewrite("SELECT col_description(CAST(CAST(format('%I', x) AS REGCLASS) AS OID), 1)");
        assert!(!comment.to_lowercase().contains("regclass"), "{comment}");
        assert!(comment.contains("CAST(NULL AS TEXT)"), "{comment}");
    }
}
