//! Test engine servers (shared by the integration tests and the loopback benchmark).
pub mod mock_judge;
pub mod model;
pub mod server;
