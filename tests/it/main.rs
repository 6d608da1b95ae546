//! Integration tests: one binary, shared helpers in `common`.
mod common;
mod contracts;
mod db;
mod devnet;
mod failover;
mod pipeline;
mod random_kills;
mod sender;
mod txmanager;
mod watcher;
