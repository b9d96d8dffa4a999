//! End-to-end tests: a real Confab server (built in-process on ephemeral
//! ports, or the real binary where a process must die) driven over real
//! sockets with the Rust client. Each test reads as one behaviour of
//! protocol.md.

mod bad_input;
mod bench_connections;
mod cli;
mod cluster;
mod control;
mod control_plane;
mod durability;
mod floods;
mod group_mentions_requests;
mod groups;
mod groups_rest;
mod helpers;
mod login;
mod messaging;
mod push;
mod read_diffusion;
mod rest;
mod rest_messages;
mod rooms;
mod session;
mod usage;
mod users_rest;
mod webhooks;
