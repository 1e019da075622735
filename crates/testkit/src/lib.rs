//! Real outside components for tests, started on loopback ports with private data
//! directories and killed when dropped (also when the test panics).
//!
//! # Layout
//!
//! - `lib.rs` — this overview.
//! - [`etcd`] — [`etcd::EtcdCluster`]: one to three etcd members (Debian's `etcd-server`),
//!   with kill, restart and health checks for failure tests.

pub mod etcd;
