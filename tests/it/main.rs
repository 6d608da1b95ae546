//! Integration tests: one binary, shared helpers in `common`.
mod common;
mod contracts;
mod db;
mod devnet;
mod failover;
mod pipeline;
mod sender;
mod txmanager;
mod watcher;
