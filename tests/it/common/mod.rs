pub mod anvil;
