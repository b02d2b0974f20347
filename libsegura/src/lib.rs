//! libsegura: the core of segura, shared by the PAM module, the command-line tools and the C ABI.
//!
//! One module per responsibility: [`config`] (the TOML file), [`identity`] (users, primary groups,
//! host name), [`policy`] (rules and matching), [`record`] (the pty and pipe recorder), [`chunk`]
//! (the sealed, hash-chained chunk format), [`spool`] (the local SQLite store) and [`export`]
//! (asciicast v2, transcript and command list).
//!
//! `unsafe` code is confined to `record::sys`, the thin layer of terminal and process syscalls.
#![deny(unsafe_code)]

pub mod chunk;
pub mod config;
pub mod enroll;
pub mod export;
pub mod identity;
pub mod login;
pub mod policy;
pub mod policy_cache;
pub mod record;
pub mod spool;
pub mod table;
pub mod time;
pub mod wire;
pub mod wrap;

/// The version of this library (and of the segura tools built with it).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
