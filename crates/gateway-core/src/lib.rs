//! Core types of `llm-gateway`: one small trait per modality, the requests and responses they
//! take, the one [`Error`] type whose [`ErrorKind`] says whether a failure is worth retrying, and
//! exact usage and [`Cost`] types.
//!
//! One trait per modality, each with an object-safe twin the [`Registry`] stores:
//! [`TextModel`] (chat and structured JSON), [`EmbeddingModel`], [`ImageModel`] (generation and
//! editing), [`SpeechModel`], [`TranscriptionModel`], [`VideoModel`] and [`SearchProvider`].
//! Long jobs share one contract ([`job`]: submit, poll, an optional cancel, and [`job::poll_job`],
//! which waits to a deadline with backoff). Provider crates implement the traits; the router in
//! `llm-gateway` runs every modality through one attempt loop.
//!
//! # Features
//! - `http`: HTTP plumbing shared by provider crates, and bounded downloads of URLs from callers
//!   or providers ([`http`]).
//! - `testing`: the behaviour suite every provider crate runs against its mock ([`testing`]).
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
pub mod embedding;
mod error;
pub mod image;
pub mod job;
pub mod json;
mod media;
mod pricing;
mod registry;
mod route;
pub mod search;
pub mod speech;
pub mod sse;
pub mod telemetry;
mod text;
mod training;
pub mod transcription;
mod usage;
pub mod video;

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use accounting::{
    Accounting, Admission, Amount, Attempt, AttemptOutcome, CacheHit, Modality, OpenOutput,
    Outcome, RequestTags, Reservation, Skip, UsageRecord,
};
pub use config::{ModelEntry, ProviderConfig, ProvidersConfig, SecretString, ServingModel};
pub use embedding::{
    DynEmbeddingModel, EmbeddingCaps, EmbeddingModel, EmbeddingRequest, EmbeddingResponse,
};
pub use error::{Error, ErrorKind, Result};
pub use image::{
    DynImageModel, EditKind, ImageCaps, ImageEditRequest, ImageFormat, ImageModel, ImageNote,
    ImageRequest, ImageResponse, per_image_billing,
};
pub use job::{JobId, JobStatus, PollPolicy};
pub use json::from_json_bytes;
pub use media::{DataUrl, MediaInput, MediaOutput, decode_base64, encode_base64, sniff_image};
pub use pricing::{ModalityTokens, PriceCatalog, PriceQualifiers, PriceUnit, TextPrice};
pub use registry::{Registry, Service};
pub use route::RouteId;
pub use search::{
    DynSearchProvider, SearchProvider, SearchRequest, SearchResponse, SearchResult, TimeRange,
};
pub use speech::{
    DynSpeechModel, SpeechModel, SpeechRequest, SpeechResponse, per_character_billing,
};
pub use text::{
    Choice, DynTextModel, FinishReason, Message, Part, ReasoningEffort, ResponseFormat, Role,
    TextCaps, TextChunk, TextModel, TextRequest, TextResponse, TextStream, TokenLogprob, Tool,
    ToolCall, ToolChoice,
};
pub use training::{
    DynTrainingModel, LoraModel, TrainingModel, TrainingOutput, TrainingRequest, per_step_billing,
};
pub use transcription::{
    DynTranscriptionModel, Segment, TranscriptionModel, TranscriptionRequest, TranscriptionResponse,
};
pub use usage::{Billing, Charge, Cost, ParseCostError, TokenPrice, TokenUsage, Usage};
pub use video::{DynVideoModel, VideoModel, VideoOutput, VideoRequest, per_second_billing};
