//! The Confab binary's library: typed settings, the embedded server
//! ([`startup::build`]), observability endpoints and the CLI commands. `main.rs`
//! only parses arguments and calls in here, so that tests build the very same
//! server in-process.

pub mod cli;
pub mod console;
pub mod http_serve;
pub mod observability;
pub mod push;
pub mod settings;
pub mod startup;
pub mod support;
