//! The middleware shared by all three protocols, one small layer per file.
//! [`crate::stack`] assembles them in order.

pub mod access_log;
pub mod body_limit;
pub mod catch_panic;
pub mod classify_protocol;
pub mod cors;
pub mod deadline;
pub mod grpc_message_limit;
pub mod method_not_found;
