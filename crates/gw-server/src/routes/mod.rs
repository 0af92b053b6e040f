//! One module per API area; each returns its `Router`.

pub(crate) mod admin;
pub(crate) mod chat;
pub(crate) mod models;
pub(crate) mod usage;
