//! Test engine servers (shared by the integration tests and the loopback benchmark).
pub mod model;
pub mod mock_judge;
pub mod server;
