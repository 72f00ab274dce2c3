//! `cchc cluster scheduler|executor`: the processes of an Apache DataFusion Ballista cluster, from
//! this binary, so that every node has the same codecs, functions and object stores (see
//! `warehouse::engine`). Each node reads the warehouse named by its own config; the client
//! (`run`, `backfill`, `refresh`, `rank`, `sql` with `engine: ballista://HOST:PORT`) plans, the
//! scheduler splits plans into stages, the executors run them. Executors write shuffle files in
//! their work folder only; publishing stays in the client.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::{create_scheduler, start_grpc_service_with_listener};
use datafusion::prelude::SessionConfig;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};

use crate::base::error::{Error, Result};
use crate::config::Config;
use crate::store::location::Location;
use crate::warehouse::engine::{cluster_config, node_runtime, server_state, Codec};

/// Where a scheduler listens unless told otherwise (Ballista's usual port).
pub const DEFAULT_SCHEDULER: &str = "127.0.0.1:50050";

/// How often an executor tells the scheduler it lives, and how long the scheduler waits for it
/// before running its tasks elsewhere. Ballista's own defaults (60 s, 180 s) suit long queries;
/// a cchc run takes seconds, and a killed executor would hold it for three minutes (measured:
/// a demo refresh with one executor SIGKILLed mid-way finished after 3 min 06 s).
pub const DEFAULT_HEARTBEAT_S: u64 = 5;
pub const DEFAULT_EXECUTOR_TIMEOUT_S: u64 = 20;

/// Executors pull their tasks. With Ballista's default (the scheduler pushes tasks), a job whose
/// executor was killed mid-way hung for good (measured: the lost stages were rolled back and
/// never launched again).
const POLICY: TaskSchedulingPolicy = TaskSchedulingPolicy::PullStaged;

fn cluster_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::io(what.to_string(), std::io::Error::other(e.to_string()))
}

/// Run a scheduler on `listen` until the process is stopped. Prints `listening on ADDR`.
pub fn scheduler(cfg: &Config, listen: &str, executor_timeout_s: u64) -> Result<()> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|_| Error::Usage(format!("`{listen}` is not ADDR:PORT")))?;
    let wh = Location::open(&cfg.warehouse, false)?;
    let engine = cfg.engine.clone();
    let rt = crate::run::runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(format!("cannot listen on {addr}"), e))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the bound address", e))?;
        let runtime = node_runtime(&engine, engine.memory_limit, &wh)?;
        let mut config = SchedulerConfig {
            bind_host: bound.ip().to_string(),
            bind_port: bound.port(),
            external_host: bound.ip().to_string(),
            scheduling_policy: POLICY,
            executor_timeout_seconds: executor_timeout_s,
            expire_dead_executor_interval_seconds: (executor_timeout_s / 4).clamp(1, 15),
            no_executors_grace_period_seconds: executor_timeout_s,
            ..Default::default()
        };
        config.override_logical_codec = Some(Arc::new(Codec::default()));
        config.override_config_producer = Some(Arc::new(|| cluster_config(SessionConfig::new())));
        config.override_session_builder = Some(Arc::new(move |c: SessionConfig| {
            Ok(server_state(c, runtime.clone()))
        }));
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(|e| cluster_error("cannot set up the scheduler", e))?;
        let server =
            create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(cluster, Arc::new(config))
                .await
                .map_err(|e| cluster_error("cannot start the scheduler", e))?;
        println!("listening on {bound}");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
        start_grpc_service_with_listener(listener, server)
            .await
            .map_err(|e| cluster_error("the scheduler stopped", e))
    })
}

/// What an executor is told on its command line.
pub struct ExecutorOptions {
    /// `HOST:PORT` of the scheduler.
    pub scheduler: String,
    /// Tasks run at once; 0 = one per core.
    pub slots: usize,
    /// `ADDR:PORT` of its Arrow Flight service (results and shuffle reads); port 0 = any free.
    pub listen: String,
    /// Its shuffle files and spills.
    pub work_dir: std::path::PathBuf,
    /// Seconds between heartbeats.
    pub heartbeat_s: u64,
}

/// Run an executor until the process is stopped (SIGTERM or SIGINT, handled by Ballista).
pub fn executor(cfg: &Config, opts: ExecutorOptions) -> Result<()> {
    let (host, port) = opts
        .scheduler
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| Error::Usage(format!("`{}` is not HOST:PORT", opts.scheduler)))?;
    let listen: SocketAddr = opts
        .listen
        .parse()
        .map_err(|_| Error::Usage(format!("`{}` is not ADDR:PORT", opts.listen)))?;
    let flight = free_port(listen)?;
    let grpc = free_port(SocketAddr::new(listen.ip(), 0))?;
    std::fs::create_dir_all(&opts.work_dir)
        .map_err(|e| Error::io(format!("cannot create {}", opts.work_dir.display()), e))?;
    let wh = Location::open(&cfg.warehouse, false)?;
    let mut engine = cfg.engine.clone();
    engine.temp_dir = Some(opts.work_dir.join("spill"));
    let limit = engine.memory_limit;
    // Every function a client may plan (Ballista's default registry lacks the nested ones, e.g.
    // `array_slice`, which the marts use): those of a full session of this binary.
    let functions = BallistaFunctionRegistry::from(&server_state(
        cluster_config(SessionConfig::new()),
        node_runtime(&engine, limit, &wh)?,
    ));
    let config = ExecutorProcessConfig {
        override_function_registry: Some(Arc::new(functions)),
        bind_host: listen.ip().to_string(),
        external_host: Some(listen.ip().to_string()),
        port: flight,
        grpc_port: grpc,
        scheduler_host: host,
        scheduler_port: port,
        vcores: opts.slots,
        task_scheduling_policy: POLICY,
        executor_heartbeat_interval_seconds: opts.heartbeat_s.max(1),
        work_dir: Some(opts.work_dir.display().to_string()),
        override_logical_codec: Some(Arc::new(Codec::default())),
        override_config_producer: Some(Arc::new(|| cluster_config(SessionConfig::new()))),
        override_runtime_producer: Some(Arc::new(move |_: &SessionConfig| {
            node_runtime(&engine, limit, &wh)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))
        })),
        ..Default::default()
    };
    let rt = crate::run::runtime()?;
    println!(
        "executor on {}:{flight}, scheduler {}",
        listen.ip(),
        opts.scheduler
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    rt.block_on(start_executor_process(Arc::new(config)))
        .map_err(|e| cluster_error(&format!("executor (scheduler {})", opts.scheduler), e))
}

/// `addr`'s port, or a free one when it is 0.
fn free_port(addr: SocketAddr) -> Result<u16> {
    if addr.port() != 0 {
        return Ok(addr.port());
    }
    let l = std::net::TcpListener::bind(addr)
        .map_err(|e| Error::io(format!("cannot bind {addr}"), e))?;
    Ok(l.local_addr()
        .map_err(|e| Error::io("cannot read the bound address", e))?
        .port())
}
