//! Engine-side validation of the configuration: every model's SQL planned on empty tables, and
//! the targets' columns checked against what the SQL returns. The config stays a leaf; what needs
//! DataFusion to check is checked here (`cchc validate` and every run call it).

use std::sync::Arc;

use arrow::datatypes::{DataType, SchemaRef};

use super::models::{create_view, local_context, mem_table, register_state};
use crate::base::error::Diagnostic;
use crate::config::{Config, Materialized};

/// Plan every model's SQL on empty tables: SQL errors (C011) and declared columns that differ
/// from the SQL's output (C012), each with the model's file and line.
pub async fn check_sql(cfg: &Config) -> Vec<Diagnostic> {
    let mut diags = check_derived(cfg).await;
    if !diags.is_empty() {
        return diags;
    }
    let setup = async {
        let ctx = local_context(&cfg.engine)?;
        register_state(&ctx, cfg, None, None, &[], None).await?;
        Ok::<_, crate::base::error::Error>(ctx)
    };
    let ctx = match setup.await {
        Ok(ctx) => ctx,
        Err(e) => {
            diags.push(Diagnostic {
                code: "C011",
                file: cfg.config_file.display().to_string(),
                line: 0,
                column: 0,
                message: format!("cannot set up the state views: {e}"),
            });
            return diags;
        }
    };
    for m in &cfg.models {
        let at = |code, message| Diagnostic {
            code,
            file: m.file.clone(),
            line: m.sql_at.0,
            column: m.sql_at.1,
            message,
        };
        let df = match ctx.sql(&m.sql).await {
            Ok(df) => df,
            Err(e) => {
                diags.push(at(
                    "C011",
                    format!("SQL of model `{}`: {}", m.name, e.strip_backtrace()),
                ));
                continue;
            }
        };
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let got: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let declared: Vec<&str> = m.columns.iter().map(|(n, _)| n.as_str()).collect();
        if got != declared {
            let missing: Vec<&str> = got
                .iter()
                .filter(|c| !declared.contains(c))
                .copied()
                .collect();
            let extra: Vec<&str> = declared
                .iter()
                .filter(|c| !got.contains(c))
                .copied()
                .collect();
            diags.push(at(
                "C012",
                format!(
                    "columns of model `{}` differ from its SQL's output ({}); undeclared: [{}]; not returned: [{}]",
                    m.name,
                    got.join(", "),
                    missing.join(", "),
                    extra.join(", ")
                ),
            ));
        }
        if let Err(e) = register_planned(&ctx, m, schema).await {
            diags.push(at("C011", e.to_string()));
        }
    }
    // Targets: the numerator and denominator must be integer columns, the sample a list.
    for plan in &cfg.plans {
        for t in &plan.targets {
            let Ok(table) = ctx.table(t.mart.as_str()).await else {
                continue;
            };
            let schema = table.schema().as_arrow().clone();
            let mut check = |col: &str, ok: fn(&DataType) -> bool, what: &str| {
                if let Ok(f) = schema.field_with_name(col) {
                    if !ok(f.data_type()) {
                        diags.push(Diagnostic {
                            code: "C013",
                            file: t.at.0.clone(),
                            line: t.at.1,
                            column: t.at.2,
                            message: format!(
                                "target `{}`: `{}.{col}` is {}, not {what}",
                                t.id,
                                t.mart,
                                f.data_type()
                            ),
                        });
                    }
                }
            };
            check(&t.numerator, |d| d.is_integer(), "an integer");
            check(&t.denominator, |d| d.is_integer(), "an integer");
            if let Some(o) = &t.offending {
                check(
                    o,
                    |d| matches!(d, DataType::List(f) | DataType::LargeList(f) if f.data_type() == &DataType::Utf8 || f.data_type() == &DataType::Utf8View),
                    "a list of text",
                );
            }
        }
    }
    diags
}

/// Register model `m`, planned, for the models after it in a session on empty tables: a view,
/// or (a mart) an empty table of its output `schema`.
pub async fn register_planned(
    ctx: &datafusion::prelude::SessionContext,
    m: &crate::config::Model,
    schema: SchemaRef,
) -> crate::base::error::Result<()> {
    match m.materialized {
        Materialized::View => create_view(ctx, m).await,
        Materialized::Table => {
            ctx.register_table(m.name.as_str(), mem_table(schema, vec![])?)?;
            Ok(())
        }
    }
}

/// Plan every derived column's SQL over its source's staging columns (C011 at its `sql`), before
/// the views that use them: a wrong expression is reported where it is written.
async fn check_derived(cfg: &Config) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    for source in cfg.sources.iter().filter(|s| !s.derived.is_empty()) {
        let at = |d: &crate::config::Derived, message| Diagnostic {
            code: "C011",
            file: source.file.clone(),
            line: d.sql_at.0,
            column: d.sql_at.1,
            message,
        };
        let ctx = match local_context(&cfg.engine).and_then(|ctx| {
            let t = mem_table(crate::ingest::typing::staging_schema(source), vec![])?;
            ctx.register_table(source.name.as_str(), t)?;
            Ok(ctx)
        }) {
            Ok(ctx) => ctx,
            Err(e) => {
                diags.push(at(&source.derived[0], e.to_string()));
                continue;
            }
        };
        for d in &source.derived {
            let sql = format!(
                "SELECT {} FROM {}",
                d.sql,
                crate::base::text::ident(&source.name)
            );
            if let Err(e) = ctx.sql(&sql).await {
                diags.push(at(
                    d,
                    format!(
                        "SQL of derived column `{}` of source `{}`: {}",
                        d.name,
                        source.name,
                        e.strip_backtrace()
                    ),
                ));
            }
        }
    }
    diags
}
