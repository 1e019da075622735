//! Integration tests of the wasmtime runtime: one binary, guests written as WAT in the tests.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod commands;
mod components;
mod exec;
mod harness;
mod http;
mod images;
mod limits;
mod mounts;
mod registry;
