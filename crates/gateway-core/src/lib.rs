//! Core types of `llm-gateway`: one small trait per modality, the requests and responses they
//! take, the one [`Error`] type whose [`ErrorKind`] says whether a failure is worth retrying, and
//! exact usage and [`Cost`] types.
//!
//! Provider crates implement the traits ([`TextModel`] for chat and structured JSON); the router
//! in `llm-gateway` stores them as their object-safe twins ([`DynTextModel`]) in a [`Registry`].
//!
//! # Features
//! - `http`: HTTP plumbing shared by provider crates ([`http`]).
//!
//! # Example
//! ```
//! use gateway_core::{ResponseFormat, TextRequest};
//!
//! let req = TextRequest::new("gemini-2.5-flash")
//!     .system("Answer in JSON.")
//!     .user("Name three primary colours.")
//!     .max_tokens(64)
//!     .response_format(ResponseFormat::JsonObject);
//! assert!(req.wants_json());
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]

pub mod accounting;
mod config;
mod error;
mod pricing;
mod registry;
pub mod sse;
mod text;
mod usage;

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;

pub use accounting::{
    Accounting, Admission, Amount, Attempt, Modality, Outcome, Reservation, UsageRecord,
};
pub use config::{ProviderConfig, ProvidersConfig, SecretString};
pub use error::{Error, ErrorKind, Result};
pub use pricing::{
    BUILTIN_CATALOG, ModalityTokens, PriceCatalog, PriceQualifiers, PriceUnit, TextPrice,
};
pub use registry::Registry;
pub use text::{
    DynTextModel, FinishReason, Message, ResponseFormat, Role, TextCaps, TextChunk, TextModel,
    TextRequest, TextResponse, TextStream,
};
pub use usage::{Cost, ParseCostError, TokenPrice, TokenUsage};
