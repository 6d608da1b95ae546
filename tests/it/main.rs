mod common;
mod contracts;
