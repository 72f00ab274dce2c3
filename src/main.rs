fn main() -> std::process::ExitCode {
    cchc::cli::main()
}

// jemalloc instead of glibc's allocator: DataFusion's sorts, takes and merges allocate and free
// large buffers from both worker threads, which glibc served with `malloc_consolidate` and
// chunk unlinking (≈ 10% of a full refresh's CPU). The year's backfill, 5 alternating runs:
// 7.18–7.49 s with glibc, 6.94–7.14 s with jemalloc, peak RSS alike (387–436 against
// 391–438 MB). Freed pages go back to the system after a second (`dirty_decay_ms`; jemalloc's
// default of ten keeps more resident), at once for the lazily freed (`muzzy_decay_ms`).
// bench/README "Pseudonyms of 128 bits, jemalloc" has the measurements; `_RJEM_MALLOC_CONF`
// overrides the settings at run time.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's `malloc_conf` (the crate's symbols carry the `_rjem_` prefix); a C string.
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8; 37] = b"dirty_decay_ms:1000,muzzy_decay_ms:0\0";
