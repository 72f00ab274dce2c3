//! The engine of the marts, checks and SQL: this process, or an Apache DataFusion Ballista
//! cluster (`engine: ballista://HOST:PORT`, the scheduler and executors of `cchc cluster`).
//!
//! On a cluster the client plans, the scheduler splits the plan into stages and the executors run
//! them; every node is this binary, so object stores and codecs are the same everywhere:
//! - Tables of the warehouse are listing tables over the files the commit records name: every
//!   node opens the warehouse from its own config (local shared path or `s3://`, with the same
//!   `AWS_*` settings), so no key travels with a plan.
//! - The small in-memory tables of a session (`periods`, `units`, `<source>_files`, and each mart
//!   for the models after it) travel inside the plan as Arrow IPC ([`Codec`]); Ballista's own
//!   codec refuses in-memory tables.
//! - Settings our SQL relies on, and why: adaptive planning off (wrong or stalled plans were
//!   reported on join-heavy queries, apache/datafusion-ballista #2024, #2321, #2046; the
//!   comparison test of the cluster against the local engine guards the rest); Parquet strings
//!   as `Utf8` as the staging schemas declare them (Ballista's default too); sort-merge joins
//!   (Ballista's default: they spill); no leaf-expression pushdown (its names do not survive
//!   the plan's serialisation).

use std::sync::Arc;

use arrow::datatypes::DataType;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Extension;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionConfig;
use datafusion_proto::logical_plan::LogicalExtensionCodec;

use crate::base::error::{Error, Result};
use crate::config::EngineConfig;
use crate::store::location::Location;

/// Marks an in-memory table encoded by [`Codec`].
const MAGIC: &[u8] = b"cchc-memtable-ipc-1\n";

/// Ballista's logical codec, plus in-memory tables as Arrow IPC.
#[derive(Debug, Default)]
pub struct Codec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for Codec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> DfResult<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: arrow::datatypes::SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        let Some(ipc) = buf.strip_prefix(MAGIC) else {
            return self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx);
        };
        let batches = StreamReader::try_new(ipc, None)?.collect::<Result<Vec<_>, _>>()?;
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        let Some(mem) = node.downcast_ref::<MemTable>() else {
            return self.inner.try_encode_table_provider(table_ref, node, buf);
        };
        buf.extend_from_slice(MAGIC);
        let mut w = StreamWriter::try_new(&mut *buf, &mem.schema())?;
        for part in &mem.batches {
            let batches = part.try_read().map_err(|_| {
                DataFusionError::Internal(format!("`{table_ref}` is being written"))
            })?;
            for b in batches.iter() {
                w.write(b)?;
            }
        }
        w.finish()?;
        Ok(())
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> DfResult<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

/// The settings of a session on the cluster (client, scheduler and executors alike).
pub fn cluster_config(base: SessionConfig) -> SessionConfig {
    use ballista_core::extension::SessionConfigExt;
    let mut config = base
        .upgrade_for_ballista()
        .with_ballista_logical_extension_codec(Arc::new(Codec::default()));
    let options = config.options_mut();
    let _ = options.set("ballista.planner.adaptive.enabled", "false");
    let _ = options.set(
        "datafusion.execution.parquet.schema_force_view_types",
        "false",
    );
    // The client sends its optimised plan; the names this rule gives extracted expressions
    // (`__datafusion_extracted_N` under an aggregate) do not survive the plan's serialisation,
    // and the scheduler refuses the plan ("No field named min(__datafusion_extracted_5)").
    let _ = options.set(
        "datafusion.optimizer.enable_leaf_expression_pushdown",
        "false",
    );
    config
}

/// A client session whose queries run on the scheduler at `addr` (`HOST:PORT`), with this
/// process's runtime (its object stores and memory) for what the client itself reads.
pub fn client_state(
    addr: &str,
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
) -> Result<SessionState> {
    use ballista_core::extension::SessionStateExt;
    reachable(addr)?;
    let state = SessionStateBuilder::new()
        .with_config(cluster_config(config))
        .with_runtime_env(runtime)
        .with_default_features()
        .build();
    state
        .upgrade_for_ballista(format!("http://{addr}"))
        .map_err(|e| Error::Usage(format!("engine ballista://{addr}: {e}")))
}

/// Whether the scheduler answers at all: a session on a cluster connects only at its first query,
/// and would then fail deep in a model with a transport error.
fn reachable(addr: &str) -> Result<()> {
    use std::net::ToSocketAddrs;
    let unreachable = |why: String| {
        Error::io(
            format!("engine ballista://{addr}: the scheduler cannot be reached"),
            std::io::Error::other(why),
        )
    };
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| unreachable(e.to_string()))?
        .next()
        .ok_or_else(|| unreachable("no address".into()))?;
    std::net::TcpStream::connect_timeout(&sock, std::time::Duration::from_secs(5))
        .map(drop)
        .map_err(|e| unreachable(e.to_string()))
}

/// The session a scheduler plans a job in: Ballista's functions and rules over `runtime`, the
/// client's settings in `config`.
pub fn server_state(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionState {
    use ballista_core::extension::{
        ballista_aggregate_functions, ballista_scalar_functions, ballista_window_functions,
    };
    SessionStateBuilder::new()
        .with_default_features()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
        .with_scalar_functions({
            let mut f = ballista_scalar_functions();
            f.extend(functions());
            f
        })
        .with_aggregate_functions(ballista_aggregate_functions())
        .with_window_functions(ballista_window_functions())
        .build()
}

/// A runtime of `limit` bytes (spilling to `engine`'s temp folder) that reads `warehouse`.
pub fn node_runtime(
    engine: &EngineConfig,
    limit: u64,
    warehouse: &Location,
) -> Result<Arc<RuntimeEnv>> {
    let rt = super::models::runtime_env(engine, limit)?;
    if warehouse.url.scheme() != "file" {
        rt.register_object_store(&warehouse.url, warehouse.store.clone());
    }
    Ok(rt)
}

/// `cchc_bucket(value)`: a number in 0..64 that is the same for equal values (a hash of the
/// value's text). The versions views partition their window by it instead of by the entity key:
/// sixty-four large window partitions, each sorted by key, cost a fraction of one partition per
/// entity (1.6 M dossier versions: 0.3 s of CPU instead of 1.1 s), while all versions of an
/// entity still meet in one partition (see `crate::warehouse::state`).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Bucket {
    signature: datafusion::logical_expr::Signature,
}

/// Buckets of [`Bucket`]: enough to spread over every core of a large executor.
pub const BUCKETS: u64 = 64;

impl datafusion::logical_expr::ScalarUDFImpl for Bucket {
    fn name(&self) -> &str {
        "cchc_bucket"
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(
        &self,
        _args: &[arrow::datatypes::DataType],
    ) -> DfResult<arrow::datatypes::DataType> {
        Ok(arrow::datatypes::DataType::Int64)
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DfResult<datafusion::logical_expr::ColumnarValue> {
        use arrow::array::{Array, AsArray, Int64Array};
        use std::hash::{BuildHasher, Hasher};
        let arrays = datafusion::logical_expr::ColumnarValue::values_to_arrays(&args.args)?;
        let Some(first) = arrays.first() else {
            return datafusion::common::exec_err!("cchc_bucket() takes one value");
        };
        let text = arrow::compute::cast(first, &arrow::datatypes::DataType::Utf8)?;
        let text = text.as_string::<i32>();
        // A fixed seed: the same value gets the same bucket on every node of a cluster.
        let state = foldhash::fast::FixedState::with_seed(0x00cc_4c00);
        let out: Int64Array = (0..text.len())
            .map(|i| {
                (!text.is_null(i)).then(|| {
                    let mut h = state.build_hasher();
                    h.write(text.value(i).as_bytes());
                    (h.finish() % BUCKETS) as i64
                })
            })
            .collect();
        Ok(datafusion::logical_expr::ColumnarValue::Array(
            std::sync::Arc::new(out),
        ))
    }
}

/// `cchc_list_min(list, 'field')`: the smallest non-null value of a field of a list of structs
/// (a date, a timestamp or an integer), null for a null or empty list: e.g. a dossier version's
/// first apology, `cchc_list_min(apologies, 'apologised_at')`, read off the state row itself
/// instead of unnesting every staged version and joining it back.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ListMin {
    signature: datafusion::logical_expr::Signature,
}

impl ListMin {
    /// The struct field `name` of a list type, if the list's items are structs that have it.
    fn field(list: &DataType, name: &str) -> DfResult<arrow::datatypes::FieldRef> {
        let DataType::List(item) = list else {
            return datafusion::common::plan_err!("cchc_list_min: {list} is not a list");
        };
        let DataType::Struct(fields) = item.data_type() else {
            return datafusion::common::plan_err!("cchc_list_min: {list} is not a list of structs");
        };
        let Some((_, f)) = fields.find(name) else {
            return datafusion::common::plan_err!("cchc_list_min: no field `{name}` in {list}");
        };
        let t = f.data_type();
        if !(t.is_temporal() || t.is_integer()) {
            return datafusion::common::plan_err!(
                "cchc_list_min: field `{name}` is {t}, not a date, time or integer"
            );
        }
        Ok(f.clone())
    }
}

impl datafusion::logical_expr::ScalarUDFImpl for ListMin {
    fn name(&self) -> &str {
        "cchc_list_min"
    }
    fn signature(&self) -> &datafusion::logical_expr::Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        datafusion::common::internal_err!("cchc_list_min: the type comes from its arguments")
    }
    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> DfResult<arrow::datatypes::FieldRef> {
        let name = match args.scalar_arguments.get(1) {
            Some(Some(datafusion::common::ScalarValue::Utf8(Some(n)))) => n,
            _ => {
                return datafusion::common::plan_err!(
                    "cchc_list_min(list, 'field') takes a field name as its second argument"
                )
            }
        };
        let f = Self::field(args.arg_fields[0].data_type(), name)?;
        Ok(Arc::new(arrow::datatypes::Field::new(
            self.name(),
            f.data_type().clone(),
            true,
        )))
    }
    fn invoke_with_args(
        &self,
        args: datafusion::logical_expr::ScalarFunctionArgs,
    ) -> DfResult<datafusion::logical_expr::ColumnarValue> {
        use arrow::array::{Array, AsArray, Int64Array};
        use datafusion::logical_expr::ColumnarValue;
        let Some(ColumnarValue::Scalar(datafusion::common::ScalarValue::Utf8(Some(name)))) =
            args.args.get(1)
        else {
            return datafusion::common::exec_err!(
                "cchc_list_min(list, 'field') takes a field name"
            );
        };
        let arrays = ColumnarValue::values_to_arrays(&args.args[..1])?;
        let list = arrays[0].as_list::<i32>();
        let field = Self::field(list.data_type(), name)?;
        let items = list.values().as_struct();
        let values = items
            .column_by_name(name)
            .ok_or_else(|| datafusion::common::DataFusionError::Internal(name.clone()))?;
        let ints = arrow::compute::cast(values, &DataType::Int64)?;
        let ints = ints.as_primitive::<arrow::datatypes::Int64Type>();
        let offsets = list.value_offsets();
        let out: Int64Array = (0..list.len())
            .map(|i| {
                if list.is_null(i) {
                    return None;
                }
                (offsets[i] as usize..offsets[i + 1] as usize)
                    .filter(|&j| !ints.is_null(j))
                    .map(|j| ints.value(j))
                    .min()
            })
            .collect();
        let out = arrow::compute::cast(&out, field.data_type())?;
        Ok(ColumnarValue::Array(out))
    }
}

/// The functions of this project every session and every executor knows.
pub fn functions() -> Vec<Arc<datafusion::logical_expr::ScalarUDF>> {
    use datafusion::logical_expr::{ScalarUDF, Signature, Volatility};
    vec![
        Arc::new(ScalarUDF::new_from_impl(Bucket {
            signature: Signature::any(1, Volatility::Immutable),
        })),
        Arc::new(ScalarUDF::new_from_impl(ListMin {
            signature: Signature::any(2, Volatility::Immutable),
        })),
    ]
}
