//! The node's wasmtime `Engine` and the thread that advances its epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig};

use crate::config::{Allocation, WasmRuntimeConfig};

/// Builds the one engine a node uses: async (guests are suspended instead of blocking tokio
/// threads), epoch interruption (how we yield, throttle and stop guests without fuel's
/// per-instruction cost), copy-on-write memory images and, by default, the pooling allocator.
pub(crate) fn build_engine(config: &WasmRuntimeConfig) -> wasmtime::Result<Engine> {
    let mut c = Config::new();
    c.wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .parallel_compilation(true)
        .cranelift_opt_level(OptLevel::Speed);
    if let Allocation::Pooling(pool) = &config.allocation {
        let mut p = PoolingAllocationConfig::new();
        p.total_core_instances(pool.total_core_instances)
            .total_component_instances(pool.total_component_instances)
            .total_memories(pool.total_memories)
            .total_tables(pool.total_tables)
            .total_stacks(pool.total_stacks)
            .max_memory_size(pool.max_memory_size)
            .table_elements(pool.table_elements)
            .max_core_instance_size(pool.max_core_instance_size)
            .max_core_instances_per_component(pool.max_core_instances_per_component)
            .max_memories_per_component(pool.max_memories_per_component)
            .max_tables_per_component(pool.max_tables_per_component)
            .max_unused_warm_slots(pool.max_unused_warm_slots)
            .linear_memory_keep_resident(pool.linear_memory_keep_resident)
            .async_stack_keep_resident(pool.async_stack_keep_resident)
            .decommit_batch_size(pool.decommit_batch_size);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(p));
    }
    Engine::new(&c)
}

/// Advances the engine's epoch every `tick` on a plain thread (not a tokio task, so a busy
/// runtime can't delay it and stop/throttle stay precise). Stops when dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine, tick: Duration) -> std::io::Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        // A weak handle: the ticker must not keep the engine (and its pool) alive.
        let weak = engine.weak();
        let thread_stop = stop.clone();
        let tick = tick.max(Duration::from_micros(100));
        let thread = std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
