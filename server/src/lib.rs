//! The segura platform as a library: the store, the ingest API and the web UI, which the
//! `segura-server` binary serves and the benchmarks drive directly.
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod auth;
pub mod catalog;
#[doc(hidden)]
pub mod fixtures;
pub mod ingest;
pub mod limits;
pub mod serve;
pub mod sqlite;
pub mod store;
pub mod web;
