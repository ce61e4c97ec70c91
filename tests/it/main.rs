//! The one integration-test binary: real PostgreSQL (one scratch cluster for the binary, a
//! database per test), the real binary, and Procrastinate's real migrations from its wheels.

mod adopt;
mod build;
mod cli;
mod deploy;
mod dependent;
mod ecosystem;
mod failures;
mod faults;
mod fixtures;
mod lint;
mod own;
mod pgbouncer;
mod schema_diff;
mod sets;
mod settings;
mod support;
mod tidy;
mod tls;
mod upstream;
mod verdicts;
