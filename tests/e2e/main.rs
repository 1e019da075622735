//! End-to-end tests: real `wasmkube` processes on loopback ports, driven by the real kubectl,
//! the official Python client and plain HTTP. One test binary (wasmtime's `tests/all` layout).

mod cli;
mod containers;
mod durability;
mod ha;
mod harness;
mod kubectl;
mod node;
mod python;
mod registry;
mod services;
mod snapshot;
mod storage;
mod streaming;
mod web;
mod workloads;
