//! One module per API area; each returns its `Router`.

pub(crate) mod chat;
pub(crate) mod models;
