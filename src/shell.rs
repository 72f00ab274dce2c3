//! `cchc shell`: an interactive SQL prompt over the same session as `cchc sql` (history in
//! `~/.cchc_history`, statements end with `;` and may span lines, `\d` lists tables and columns).

use datafusion::prelude::SessionContext;
use rustyline::error::ReadlineError;

use crate::base::error::{Error, Result};
use crate::sql::{query, OutputFormat};

const HELP: &str = "\\d              list tables and views
\\d NAME         columns of a table or view
\\format F       output: table, csv or json
\\q              quit (or Ctrl-D)
Statements end with `;` and may span several lines.";

/// What one line of input asks for, once a statement is complete.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// Keep reading: the statement is not finished.
    More,
    Sql(String),
    Meta(String),
    Empty,
}

/// Add `line` to the pending buffer and say what to do.
pub fn feed(buffer: &mut String, line: &str) -> Input {
    let trimmed = line.trim();
    if buffer.trim().is_empty() && trimmed.starts_with('\\') {
        buffer.clear();
        return Input::Meta(trimmed.to_string());
    }
    if !buffer.is_empty() {
        buffer.push('\n');
    }
    buffer.push_str(line);
    if buffer.trim().is_empty() {
        buffer.clear();
        return Input::Empty;
    }
    if trimmed.ends_with(';') {
        let sql = std::mem::take(buffer);
        Input::Sql(sql.trim().trim_end_matches(';').to_string())
    } else {
        Input::More
    }
}

/// The SQL a meta command stands for, or the text to print.
pub fn meta_sql(cmd: &str) -> std::result::Result<String, String> {
    let mut parts = cmd.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("\\d"), None) => Ok(
            "SELECT table_name, table_type FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY table_name"
                .into(),
        ),
        (Some("\\d"), Some(name)) => Ok(format!(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = '{}' ORDER BY ordinal_position",
            name.replace('\'', "''")
        )),
        (Some("\\?" | "\\h" | "\\help"), _) => Err(HELP.into()),
        (Some(other), _) => Err(format!("unknown command {other}; \\? for help")),
        (None, _) => Err(String::new()),
    }
}

/// Run the prompt until `\q` or end of input.
pub async fn run(ctx: &SessionContext) -> Result<()> {
    let mut rl = rustyline::DefaultEditor::new()
        .map_err(|e| Error::io("cannot start the line editor", e))?;
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cchc_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    println!("cchc shell: SQL over staging, state views, marts and target_results. \\? for help.");
    let mut buffer = String::new();
    let mut format = OutputFormat::Table;
    loop {
        let prompt = if buffer.is_empty() {
            "cchc> "
        } else {
            "  ... "
        };
        let line = match rl.readline(prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(Error::io("cannot read input", e)),
        };
        match feed(&mut buffer, &line) {
            Input::More | Input::Empty => {}
            Input::Meta(cmd) => {
                let _ = rl.add_history_entry(cmd.as_str());
                if cmd == "\\q" {
                    break;
                }
                if let Some(f) = cmd.strip_prefix("\\format") {
                    match f.trim() {
                        "table" => format = OutputFormat::Table,
                        "csv" => format = OutputFormat::Csv,
                        "json" => format = OutputFormat::Json,
                        other => println!("unknown format `{other}`: table, csv or json"),
                    }
                    continue;
                }
                match meta_sql(&cmd) {
                    Ok(sql) => print_result(ctx, &sql, OutputFormat::Table).await,
                    Err(text) if !text.is_empty() => println!("{text}"),
                    Err(_) => {}
                }
            }
            Input::Sql(sql) => {
                let _ = rl.add_history_entry(format!("{sql};").as_str());
                print_result(ctx, &sql, format).await;
            }
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    Ok(())
}

async fn print_result(ctx: &SessionContext, sql: &str, format: OutputFormat) {
    match query(ctx, sql, format).await {
        Ok(out) => println!("{}", out.trim_end()),
        Err(e) => println!("error: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_span_lines_until_a_semicolon() {
        let mut b = String::new();
        assert_eq!(feed(&mut b, "SELECT 1"), Input::More);
        assert_eq!(feed(&mut b, "  + 1;"), Input::Sql("SELECT 1\n  + 1".into()));
        assert_eq!(feed(&mut b, ""), Input::Empty);
        assert_eq!(feed(&mut b, "\\d marts"), Input::Meta("\\d marts".into()));
        assert!(meta_sql("\\d")
            .unwrap()
            .contains("information_schema.tables"));
        assert!(meta_sql("\\d mart_dossiers")
            .unwrap()
            .contains("'mart_dossiers'"));
        assert!(meta_sql("\\x").is_err());
    }
}
