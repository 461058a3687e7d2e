//! Test engine servers (shared by the integration tests and the loopback benchmark).
pub mod model;
pub mod server;
