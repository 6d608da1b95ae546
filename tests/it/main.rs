mod common;
mod contracts;
mod watcher;
