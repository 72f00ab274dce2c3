//! `cchc serve`: a read-only SQL endpoint over the published warehouse that speaks the PostgreSQL
//! wire protocol (pgwire, through `datafusion-postgres`), so psql, DBeaver, Metabase, Excel/Power
//! BI (PostgreSQL ODBC) and psycopg can read the marts.
//!
//! - The session is `cchc sql`'s (staging, state views, marts, results, ranking; never
//!   quarantine) plus a `pg_catalog` for clients' schema browsing. It is rebuilt when a commit
//!   record of the warehouse changes (ledger entries, `_periods.json`, `_ranking.json`), checked
//!   before every query, so each query reads the newest published version.
//! - Read-only, by a hook placed before every other: queries, `EXPLAIN`, `SET`/`SHOW`, transaction
//!   and cursor statements pass; anything else is refused with SQLSTATE 25006.
//! - Authentication: SCRAM-SHA-256 against the users file of the config (`cchc serve add-user`);
//!   without users, no password is asked and the server listens on loopback only. TLS from the
//!   config's certificate and key; a certificate that fails to load is an error, never a fallback
//!   to plain text; a non-loopback address without TLS and users is refused.
//! - Operations: a connection limit, a per-statement timeout (`serve.query_timeout_s`, SQLSTATE
//!   57014) and memory limit (`serve.query_memory_limit`, SQLSTATE 53200: the engine spills to
//!   `temp_dir` first; the rows held for the version check count too), one log line per statement (user, duration, error), SIGTERM
//!   or SIGINT stops accepting and lets open connections finish (for up to 30 s).

use std::collections::HashMap;
use std::fmt::Debug;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::setup_pg_catalog;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::hooks::{HookClient, QueryHook};
use datafusion_postgres::pgwire;
use datafusion_postgres::DfSessionService;
use futures::Sink;
use pgwire::api::auth::noop::NoopStartupHandler;
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramAuth};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    AuthSource, DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::portal::Portal;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{QueryResponse, Response};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, ConnectionManager, ErrorHandler};
use pgwire::api::{PgWireServerHandlers, METADATA_USER};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::base::error::{Error, Result};
use crate::base::size::show_size;
use crate::config::units::Units;
use crate::config::{Config, EngineConfig};
use crate::store::location::Location;
use crate::store::publish::Published;
use crate::warehouse::models::{fit_to_memory, runtime_env, CATALOG};

mod pg;

/// SCRAM iterations of the verifiers `add-user` writes (PostgreSQL's default).
const ITERATIONS: usize = 4096;

// ---------------------------------------------------------------------------------------------
// Users

/// The users file: one line per user, `NAME:scram-sha-256:<iterations>:<salt hex>:<salted
/// password hex>`. The salted password is `Hi(password, salt, iterations)` of RFC 5802, what the
/// SCRAM exchange needs; the clear password is never stored. Keep the file readable by the
/// server's account only (it is written with mode 0600).
#[derive(Debug, Default, Clone)]
pub struct Users {
    by_name: HashMap<String, (Vec<u8>, Vec<u8>)>,
}

impl Users {
    pub fn parse(text: &str, file: &str) -> Result<Users> {
        let mut by_name = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| Error::Usage(format!("{file}:{}: {why}", i + 1));
            let parts: Vec<&str> = line.split(':').collect();
            let [name, "scram-sha-256", iters, salt, salted] = parts[..] else {
                return Err(bad(
                    "not `NAME:scram-sha-256:ITERATIONS:SALT:SALTED_PASSWORD` (write it with `cchc serve add-user`)",
                ));
            };
            if iters.parse::<usize>().ok() != Some(ITERATIONS) {
                return Err(bad(&format!("iterations must be {ITERATIONS}")));
            }
            let (Ok(salt), Ok(salted)) = (hex::decode(salt), hex::decode(salted)) else {
                return Err(bad("salt and salted password must be hex"));
            };
            by_name.insert(name.to_string(), (salt, salted));
        }
        Ok(Users { by_name })
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The line of a new verifier for `name`.
    pub fn verifier_line(name: &str, password: &str) -> Result<String> {
        let mut salt = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut salt))
            .map_err(|e| Error::io("cannot read random bytes for the salt", e))?;
        let salted = gen_salted_password(password, &salt, ITERATIONS);
        Ok(format!(
            "{name}:scram-sha-256:{ITERATIONS}:{}:{}",
            hex::encode(salt),
            hex::encode(salted)
        ))
    }
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        match login.user().and_then(|u| self.by_name.get(u)) {
            Some((salt, salted)) => Ok(Password::new(Some(salt.clone()), salted.clone())),
            // An unknown user goes through the same exchange and fails at its proof, so the
            // answer does not tell which names exist.
            None => Ok(Password::new(Some(vec![0; 16]), vec![0; 32])),
        }
    }
}

/// `cchc serve add-user NAME`: add or replace a user's verifier in the users file.
pub fn add_user(cfg: &Config, name: &str) -> Result<()> {
    let file = cfg.serve.users_file.as_ref().ok_or_else(|| {
        Error::Usage("the config names no users file: set `serve: { users_file: … }`".into())
    })?;
    if name.is_empty() || name.contains(':') || name.chars().any(char::is_whitespace) {
        return Err(Error::Usage(format!(
            "`{name}` is not a user name (no `:` or spaces)"
        )));
    }
    use std::io::IsTerminal;
    let password = if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password(format!("password for {name}: "))
            .map_err(|e| Error::io("cannot read the password", e))?;
        let again = rpassword::prompt_password("again: ")
            .map_err(|e| Error::io("cannot read the password", e))?;
        if p != again {
            return Err(Error::Usage("the passwords differ".into()));
        }
        p
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Error::io("cannot read the password from stdin", e))?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    if password.chars().count() < 8 {
        return Err(Error::Usage("a password has at least 8 characters".into()));
    }
    let old = std::fs::read_to_string(file).unwrap_or_default();
    Users::parse(&old, file)?;
    let mut lines: Vec<String> = old
        .lines()
        .filter(|l| l.split(':').next() != Some(name))
        .map(String::from)
        .collect();
    lines.push(Users::verifier_line(name, &password)?);
    let text = lines.join("\n") + "\n";
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .map_err(|e| Error::io(format!("cannot write {file}"), e))?;
    std::io::Write::write_all(&mut f, text.as_bytes())
        .map_err(|e| Error::io(format!("cannot write {file}"), e))
}

// ---------------------------------------------------------------------------------------------
// Read-only

fn read_only_error(what: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "25006".into(),
        format!(
            "cannot execute {what}: this server is read-only (queries, EXPLAIN, SET, SHOW, transactions and cursors)"
        ),
    )))
}

/// Refuses every statement but queries, EXPLAIN, SET/SHOW, transaction and cursor statements;
/// placed first, so no other hook or the planner sees a refused statement.
struct ReadOnlyHook;

impl ReadOnlyHook {
    fn check(statement: &Statement) -> Option<PgWireError> {
        use datafusion::sql::sqlparser::ast::Statement as S;
        match statement {
            S::StartTransaction { .. }
            | S::Commit { .. }
            | S::Rollback { .. }
            | S::Declare { .. }
            | S::Fetch { .. }
            | S::Close { .. }
            | S::Discard { .. } => None,
            other => crate::sql::statement_refusal(other).map(|what| read_only_error(&what)),
        }
    }
}

#[async_trait]
impl QueryHook for ReadOnlyHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::check(statement).map(Err)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _ctx: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<datafusion::logical_expr::LogicalPlan>> {
        Self::check(statement).map(Err)
    }

    async fn handle_extended_query(
        &self,
        _statement: &Statement,
        _plan: &datafusion::logical_expr::LogicalPlan,
        _params: &datafusion::common::ParamValues,
        _ctx: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Versions of the warehouse

/// One published version of the warehouse, as a query service, with the commit records it was
/// listed under (which know every file it reads).
struct Snapshot {
    stamp: String,
    /// The session of this version; each statement runs in a copy with its own memory pool.
    ctx: SessionContext,
    /// Plans extended-protocol statements (planning holds no memory of the pool).
    service: Arc<DfSessionService>,
    published: Published,
    wh: Location,
}

impl Snapshot {
    /// A service for one statement: this version's tables and settings, within `limit` bytes
    /// of memory (sorts, aggregations and joins spill beyond it, then the statement fails).
    fn statement_service(
        &self,
        engine: &EngineConfig,
        limit: u64,
    ) -> PgWireResult<DfSessionService> {
        let runtime = runtime_env(engine, limit).map_err(api_error)?;
        let state = self.ctx.state();
        let mut config = state.config().clone();
        fit_to_memory(&mut config, limit);
        let state = SessionStateBuilder::new_from_existing(state)
            .with_config(config)
            .with_runtime_env(runtime)
            .build();
        Ok(DfSessionService::new_with_hooks(
            Arc::new(SessionContext::new_with_state(state)),
            hooks(),
        ))
    }

    /// Whether every file of this version still exists (see `Published::intact`).
    async fn intact(&self) -> PgWireResult<bool> {
        self.published.intact(&self.wh).await.map_err(api_error)
    }
}

/// Read a response's rows to the end, so that they can be checked before they are sent; with
/// how many rows it holds. Rows past `limit` bytes end the result with an out-of-memory error,
/// and so does a statement the engine could not run within its memory.
async fn materialise(resp: Response, limit: u64) -> (Response, usize) {
    use futures::StreamExt;
    match resp {
        Response::Query(mut q) => {
            let mut rows: Vec<PgWireResult<DataRow>> = Vec::new();
            let mut bytes = 0u64;
            while let Some(row) = q.data_rows.next().await {
                match row {
                    Ok(r) => {
                        bytes += r.data.len() as u64 + 8;
                        if bytes > limit {
                            rows.push(Err(memory_error(limit, "its result is larger")));
                            break;
                        }
                        rows.push(Ok(r));
                    }
                    Err(e) => {
                        rows.push(Err(out_of_memory(e, limit)));
                        break;
                    }
                }
            }
            let n = rows.iter().filter(|r| r.is_ok()).count();
            let tag = q.command_tag().to_string();
            let mut again = QueryResponse::new(q.row_schema(), futures::stream::iter(rows));
            again.set_command_tag(&tag);
            (Response::Query(again), n)
        }
        other => (other, 0),
    }
}

fn memory_error(limit: u64, what: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "53200".into(),
        format!(
            "out of memory: {what} than serve.query_memory_limit ({}) allows; narrow the query (WHERE, LIMIT) or raise the limit",
            show_size(limit)
        ),
    )))
}

/// The engine's "resources exhausted", as PostgreSQL says it (53200); other errors unchanged.
fn out_of_memory(e: PgWireError, limit: u64) -> PgWireError {
    let text = e.to_string();
    match text.contains("Resources exhausted") {
        true => {
            tracing::debug!(error = %text, "statement over its memory limit");
            memory_error(limit, "the statement needs more memory, even spilling,")
        }
        false => e,
    }
}

/// Attempts of a statement whose files were replaced while it read them.
const ATTEMPTS: usize = 5;

fn timeout_error(limit: Duration) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "57014".into(),
        format!(
            "canceling statement: it ran longer than serve.query_timeout_s ({} s)",
            limit.as_secs()
        ),
    )))
}

fn replaced_error() -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "40001".into(),
        "the warehouse was republished while this statement read it; run it again".into(),
    )))
}

/// What changes when anything is published: the ledger's entries and the two commit records.
async fn stamp(wh: &Location) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for o in wh.list("ledger").await? {
        h.update(o.location.as_ref());
        h.update(o.last_modified.to_rfc3339());
        h.update(o.size.to_le_bytes());
    }
    for name in [
        crate::store::commits::PERIODS,
        crate::store::commits::RANKINGS,
    ] {
        if let Some(b) = wh.get_opt(&wh.path(name)).await? {
            h.update(&b);
        }
    }
    Ok(hex::encode(h.finalize()))
}

async fn snapshot(cfg: &Config, units: Option<&Units>, stamp: String) -> Result<Snapshot> {
    let (ctx, published, wh) = crate::sql::snapshot_session(cfg, units).await?;
    setup_pg_catalog(&ctx, CATALOG, EmptyContextProvider)
        .map_err(|e| Error::Internal(format!("pg_catalog: {e}")))?;
    pg::register(&ctx);
    Ok(Snapshot {
        stamp,
        service: Arc::new(DfSessionService::new_with_hooks(
            Arc::new(ctx.clone()),
            hooks(),
        )),
        ctx,
        published,
        wh,
    })
}

/// The statement hooks, read-only first.
fn hooks() -> Vec<Arc<dyn QueryHook>> {
    vec![
        Arc::new(ReadOnlyHook),
        Arc::new(CursorStatementHook),
        Arc::new(SetShowHook),
        Arc::new(TransactionStatementHook),
    ]
}

/// The server's state: the config and the current snapshot.
struct State {
    cfg: Config,
    units: Option<Units>,
    wh: Location,
    current: RwLock<Arc<Snapshot>>,
    refresh: tokio::sync::Mutex<()>,
    /// The longest a statement may run, reading its rows included.
    timeout: Duration,
}

impl State {
    fn current(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// The snapshot of the newest published version, rebuilt if a commit record changed.
    async fn fresh(&self) -> PgWireResult<Arc<Snapshot>> {
        let now = stamp(&self.wh).await.map_err(api_error)?;
        if self.current().stamp == now {
            return Ok(self.current());
        }
        let _one = self.refresh.lock().await;
        if self.current().stamp == now {
            return Ok(self.current());
        }
        let snap = Arc::new(
            snapshot(&self.cfg, self.units.as_ref(), now)
                .await
                .map_err(api_error)?,
        );
        tracing::info!("a new version of the warehouse was published: serving it");
        if let Ok(mut c) = self.current.write() {
            *c = snap.clone();
        }
        Ok(snap)
    }
}

fn api_error(e: Error) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "58000".into(),
        e.to_string(),
    )))
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// The query handlers: each statement runs on the newest snapshot, and is logged.
struct Queries {
    state: Arc<State>,
}

fn user_of<C: ClientInfo>(client: &C) -> String {
    client
        .metadata()
        .get(METADATA_USER)
        .cloned()
        .unwrap_or_default()
}

fn log_statement<T>(user: &str, query: &str, t0: Instant, r: &PgWireResult<(T, usize)>) {
    let ms = t0.elapsed().as_millis() as u64;
    let query: String = query.chars().take(200).collect();
    match r {
        Ok((_, rows)) => tracing::info!(user, ms, rows, query = %query, "statement done"),
        Err(e) => tracing::info!(user, ms, query = %query, error = %e, "statement failed"),
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let t0 = Instant::now();
        let user = user_of(client);
        // Rows are read whole and sent only if every file of the version still exists after
        // the read; otherwise the statement runs again on the newest version (as `cchc sql`).
        let mut r = Err(replaced_error());
        for attempt in 1..=ATTEMPTS {
            // Listing a version fails when a run vacuums one of its files meanwhile (a mart's
            // schema read from a file just removed): list again, as `cchc sql` does.
            let snap = match self.state.fresh().await {
                Ok(s) => s,
                Err(e) if attempt < ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "listing the warehouse failed: listing again");
                    continue;
                }
                Err(e) => {
                    r = Err(e);
                    break;
                }
            };
            let limit = self.state.cfg.serve.query_memory_limit;
            let run = async {
                let service = snap.statement_service(&self.state.cfg.engine, limit)?;
                let responses = SimpleQueryHandler::do_query(&service, client, &pg::rewrite(query))
                    .await
                    .map_err(|e| out_of_memory(e, limit))?;
                let mut all = Vec::with_capacity(responses.len());
                let mut rows = 0;
                for resp in responses {
                    let (resp, n) = materialise(resp, limit).await;
                    all.push(resp);
                    rows += n;
                }
                Ok((all, rows))
            };
            let out = match tokio::time::timeout(self.state.timeout, run).await {
                Ok(out) => out,
                Err(_) => Err(timeout_error(self.state.timeout)),
            };
            if snap.intact().await? {
                r = out;
                break;
            }
            tracing::debug!("files replaced while reading: running the statement again");
        }
        log_statement(&user, query, t0, &r);
        r.map(|(responses, _)| responses)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = <DfSessionService as ExtendedQueryHandler>::Statement;
    type QueryParser = pg::CompatParser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        Arc::new(pg::CompatParser(
            self.state.current().service.query_parser(),
        ))
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let t0 = Instant::now();
        let user = user_of(client);
        let snap = self.state.current();
        let limit = self.state.cfg.serve.query_memory_limit;
        let run = async {
            let service = snap.statement_service(&self.state.cfg.engine, limit)?;
            let resp = ExtendedQueryHandler::do_query(&service, client, portal, max_rows)
                .await
                .map_err(|e| out_of_memory(e, limit))?;
            Ok::<_, PgWireError>(materialise(resp, limit).await)
        };
        let r = match tokio::time::timeout(self.state.timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(timeout_error(self.state.timeout)),
        };
        // A prepared statement is bound to the version it was planned on: if that version's
        // files went while it read them, the client is told to run it again (40001), never
        // given a partial answer.
        let r = match (r, snap.intact().await?) {
            (Ok(_), false) => Err(replaced_error()),
            (r, _) => r,
        };
        log_statement(&user, &portal.statement.statement.0, t0, &r);
        let r = r.map(|(resp, _)| resp);
        // The next statement is parsed on the newest version.
        let _ = self.state.fresh().await;
        r
    }
}

/// No authentication: only ever on loopback (see [`check_listen`]).
struct Trust {
    connections: Arc<ConnectionManager>,
}

impl NoopStartupHandler for Trust {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.connections.clone())
    }
}

/// The startup of one connection: SCRAM-SHA-256 against the users file, or trust.
enum Startup {
    Trust(Trust),
    Scram(SASLAuthStartupHandler<DefaultServerParameterProvider>),
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match self {
            Startup::Trust(t) => t.on_startup(client, message).await,
            Startup::Scram(s) => s.on_startup(client, message).await,
        }
    }
}

struct LogErrors;

impl ErrorHandler for LogErrors {
    fn on_error<C: ClientInfo>(&self, _client: &C, error: &mut PgWireError) {
        tracing::debug!(error = %error, "sending an error to a client");
    }
}

struct Handlers {
    queries: Arc<Queries>,
    users: Option<Arc<Users>>,
    connections: Arc<ConnectionManager>,
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.queries.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        // A SASL handler keeps the state of its exchange: one per connection.
        Arc::new(match &self.users {
            None => Startup::Trust(Trust {
                connections: self.connections.clone(),
            }),
            Some(users) => {
                let auth: Arc<dyn AuthSource> = users.clone();
                Startup::Scram(
                    SASLAuthStartupHandler::new(
                        Arc::new(DefaultServerParameterProvider::default()),
                    )
                    .with_scram(ScramAuth::new(auth))
                    .with_connection_manager(self.connections.clone()),
                )
            }
        })
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors)
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(DefaultCancelHandler::new(self.connections.clone()))
    }
}

// ---------------------------------------------------------------------------------------------
// The server

/// What `serve` will do, checked before it listens.
pub struct Plan {
    pub listen: SocketAddr,
    users: Option<Arc<Users>>,
    tls: Option<pgwire::tokio::TlsAcceptor>,
}

/// Check the settings: the address, the users file, the TLS files, and that a non-loopback
/// address has both TLS and users. Every failure is a usage error (exit 2).
pub fn check(cfg: &Config, listen: Option<&str>) -> Result<Plan> {
    let text = listen.unwrap_or(&cfg.serve.listen);
    let listen: SocketAddr = text
        .parse()
        .map_err(|_| Error::Usage(format!("`{text}` is not ADDR:PORT (e.g. 127.0.0.1:5433)")))?;
    let users = match &cfg.serve.users_file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Error::Usage(format!("users file {f}: {e}")))?;
            let users = Users::parse(&text, f)?;
            (!users.is_empty()).then(|| Arc::new(users))
        }
        None => None,
    };
    let tls = match (&cfg.serve.tls_cert, &cfg.serve.tls_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(load_tls(cert, key)?),
        _ => {
            return Err(Error::Usage(
                "TLS needs both `serve.tls_cert` and `serve.tls_key`".into(),
            ))
        }
    };
    if !listen.ip().is_loopback() && (tls.is_none() || users.is_none()) {
        return Err(Error::Usage(format!(
            "refusing to listen on {listen}, beyond this machine, without TLS and users: set serve.tls_cert, serve.tls_key and serve.users_file (cchc serve add-user)"
        )));
    }
    Ok(Plan { listen, users, tls })
}

fn load_tls(cert: &str, key: &str) -> Result<pgwire::tokio::TlsAcceptor> {
    use pgwire::tokio::tokio_rustls::rustls;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::Usage(format!(
            "TLS {what}: {e} (the server does not fall back to plain text)"
        ))
    };
    let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(&format!("certificate {cert}"), &e))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(&format!("certificate {cert}"), &e))?;
    if certs.is_empty() {
        return Err(bad(
            &format!("certificate {cert}"),
            &"no certificate in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(&format!("key {key}"), &e))?;
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("certificate and key", &e))?;
    Ok(pgwire::tokio::TlsAcceptor::from(Arc::new(config)))
}

/// Serve until SIGTERM or SIGINT. Prints `listening on ADDR` (the bound address, also for port
/// 0) on stdout once it accepts connections.
pub fn serve(cfg: &Config, units: Option<Units>, plan: Plan) -> Result<()> {
    let rt = crate::run::runtime()?;
    rt.block_on(async move {
        // The endpoint answers from this process, whatever the config's engine: its statements
        // are small and many, a cluster's per-job latency would dominate them.
        let mut cfg = cfg.clone();
        cfg.engine.cluster = None;
        let cfg = &cfg;
        let wh = Location::open(&cfg.warehouse, true)?;
        let first = snapshot(cfg, units.as_ref(), stamp(&wh).await?).await?;
        let state = Arc::new(State {
            cfg: cfg.clone(),
            units,
            wh,
            current: RwLock::new(Arc::new(first)),
            refresh: Default::default(),
            timeout: Duration::from_secs(cfg.serve.query_timeout_s.max(1)),
        });
        let handlers = Arc::new(Handlers {
            queries: Arc::new(Queries { state }),
            users: plan.users.clone(),
            connections: Arc::new(ConnectionManager::new()),
        });
        let listener = tokio::net::TcpListener::bind(plan.listen)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {}", plan.listen), e))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the bound address", e))?;
        if plan.users.is_none() {
            tracing::warn!(address = %bound, "no users configured: connections are not authenticated (loopback only)");
        }
        println!(
            "listening on {bound}{}{}",
            if plan.tls.is_some() { " (TLS)" } else { "" },
            if plan.users.is_some() { ", SCRAM-SHA-256" } else { ", no authentication" }
        );
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        for sig in [
            signal_hook::consts::signal::SIGTERM,
            signal_hook::consts::signal::SIGINT,
        ] {
            let _ = signal_hook::flag::register(sig, stop.clone());
        }
        let limit = Arc::new(tokio::sync::Semaphore::new(cfg.serve.max_connections.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            if stop.load(std::sync::atomic::Ordering::SeqCst) {
                break;
            }
            let accepted =
                tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
            let Ok(accepted) = accepted else { continue };
            let (socket, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                tracing::warn!(peer = %peer, limit = cfg.serve.max_connections, "connection refused: too many connections");
                drop(socket);
                continue;
            };
            let handlers = handlers.clone();
            let tls = plan.tls.clone();
            tasks.spawn(async move {
                if let Err(e) = pgwire::tokio::process_socket(socket, tls, handlers).await {
                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                }
                drop(permit);
            });
            while tasks.try_join_next().is_some() {}
        }
        drop(listener);
        tracing::info!(open = tasks.len(), "stopping: no new connections; waiting for open ones (30 s at most)");
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        Ok(())
    })
}
