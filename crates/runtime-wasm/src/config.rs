//! Configuration of a node's [`WasmRuntime`](crate::WasmRuntime).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything a node's Wasm runtime can be tuned with. [`WasmRuntimeConfig::new`] gives
/// defaults sized for a node running thousands of mostly idle HTTP pods.
#[derive(Debug, Clone)]
pub struct WasmRuntimeConfig {
    /// Root of the runtime's on-disk state: `images/` (blobs, index, compiled modules).
    /// A node uses `<node data dir>/wasm` ([`WasmRuntimeConfig::for_node`]).
    pub data_dir: PathBuf,
    /// How instances get their memories, tables and stacks.
    pub allocation: Allocation,
    /// Period of the epoch ticker. Guests are yielded, throttled and interrupted at this
    /// granularity; 1–10 ms keeps the ticker cheap and stop/throttle precise.
    pub epoch_tick: Duration,
    /// Upper bound on one HTTP request's guest execution (instantiation to response).
    pub default_request_timeout: Duration,
    /// Largest request body handed to a WAGI guest on stdin.
    pub max_request_body_bytes: usize,
    /// Largest CGI output (headers and body) a WAGI guest may write for one response.
    pub max_response_bytes: usize,
    /// Largest module accepted from a registry pull.
    pub max_image_bytes: u64,
    /// Registries (`host[:port]`) reached over plain HTTP. Loopback registries always are.
    pub insecure_registries: Vec<String>,
    /// Timeout of one registry round trip.
    pub registry_timeout: Duration,
    /// How many output chunks may wait for a container's log writer before the guest's
    /// writes block (only that guest's).
    pub log_queue_chunks: usize,
    /// The cluster DNS server guests' outgoing HTTP resolves Service names through (with the
    /// pod's search path); `None` leaves names to the host's resolver.
    pub cluster_dns: Option<std::net::SocketAddr>,
    /// The cluster domain of the search path (`cluster.local`).
    pub cluster_domain: String,
}

impl WasmRuntimeConfig {
    /// Defaults rooted at `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        WasmRuntimeConfig {
            data_dir: data_dir.into(),
            allocation: Allocation::Pooling(PoolConfig::default()),
            epoch_tick: Duration::from_millis(2),
            default_request_timeout: Duration::from_secs(30),
            max_request_body_bytes: 16 << 20,
            max_response_bytes: 64 << 20,
            max_image_bytes: 512 << 20,
            insecure_registries: Vec::new(),
            registry_timeout: Duration::from_secs(30),
            log_queue_chunks: 64,
            cluster_dns: None,
            cluster_domain: "cluster.local".into(),
        }
    }

    /// Defaults for the node whose data directory (`--data-dir` of `wasmkube server` and
    /// `agent`) is `node_data_dir`: the runtime's state goes to `<node_data_dir>/wasm`.
    pub fn for_node(node_data_dir: &Path) -> Self {
        Self::new(node_data_dir.join("wasm"))
    }

    /// Where the image store lives: `<data_dir>/images`.
    pub fn image_store_dir(&self) -> PathBuf {
        self.data_dir.join("images")
    }
}

/// The image store of the node whose data directory is `node_data_dir`
/// (`<node_data_dir>/wasm/images`): where `wasmkube image` finds the images the node runs.
pub fn image_store_dir(node_data_dir: &Path) -> PathBuf {
    WasmRuntimeConfig::for_node(node_data_dir).image_store_dir()
}

/// The instance allocation strategy.
#[derive(Debug, Clone)]
pub enum Allocation {
    /// wasmtime's pooling allocator: slots are reserved up front and reused, which with
    /// copy-on-write memory images makes instantiation a few microseconds. The pool bounds
    /// how many instances exist at once (running commands plus in-flight HTTP requests),
    /// not how many pods a node holds.
    Pooling(PoolConfig),
    /// Allocate every instance with mmap on demand: no upper bound, slower instantiation.
    OnDemand,
}

/// Sizes of the pooling allocator. Every count is a number of slots that exist at once.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Core instances (a component uses several).
    pub total_core_instances: u32,
    /// Component instances.
    pub total_component_instances: u32,
    /// Linear memories; each reserves `max_memory_size` plus guard pages of address space
    /// (not RAM).
    pub total_memories: u32,
    /// Tables.
    pub total_tables: u32,
    /// Async fiber stacks: one per guest that is executing or suspended mid-call.
    pub total_stacks: u32,
    /// Largest linear memory an instance can grow to; container memory limits above it are
    /// capped here.
    pub max_memory_size: usize,
    /// Largest table, in elements.
    pub table_elements: usize,
    /// Largest core instance metadata (`VMContext`) in bytes.
    pub max_core_instance_size: usize,
    /// Core instances one component may create.
    pub max_core_instances_per_component: u32,
    /// Memories one component may define.
    pub max_memories_per_component: u32,
    /// Tables one component may define.
    pub max_tables_per_component: u32,
    /// Freed slots kept warm (their copy-on-write image still mapped) for reuse.
    pub max_unused_warm_slots: u32,
    /// Bytes of each freed linear memory kept resident and zeroed by memset rather than
    /// madvise, which is cheaper for small heaps.
    pub linear_memory_keep_resident: usize,
    /// Bytes of each freed async stack kept resident (guests touch only the top of it).
    pub async_stack_keep_resident: usize,
    /// Freed slots whose pages are returned to the kernel in one batch: fewer madvise calls
    /// (each a TLB shootdown across cores) per request.
    pub decommit_batch_size: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            total_core_instances: 1000,
            total_component_instances: 1000,
            total_memories: 1000,
            total_tables: 1000,
            total_stacks: 1000,
            max_memory_size: 4 << 30,
            table_elements: 20_000,
            max_core_instance_size: 1 << 20,
            max_core_instances_per_component: 50,
            max_memories_per_component: 10,
            max_tables_per_component: 10,
            max_unused_warm_slots: 100,
            linear_memory_keep_resident: 64 << 10,
            async_stack_keep_resident: 64 << 10,
            decommit_batch_size: 16,
        }
    }
}

impl PoolConfig {
    /// A small pool (for tests and tiny nodes): `n` of every kind of slot.
    pub fn small(n: u32) -> Self {
        PoolConfig {
            total_core_instances: n,
            total_component_instances: n,
            total_memories: n,
            total_tables: n,
            total_stacks: n,
            max_unused_warm_slots: n.min(100),
            ..PoolConfig::default()
        }
    }
}
