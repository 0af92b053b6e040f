//! The router's answers and stream chunks read by hand, for the plain ones.
//!
//! serde_json reads a stream chunk of a chat answer (about 190 bytes) in some 4,400
//! instructions, most of them in the derived visitors of fields the gateway drops; [`Scan`]
//! reads it in a fraction of that, and a chunk that repeats the last one's [`TextShape`] in
//! less again. What is read here is what serde_json reads (the tests hold it to that); whatever
//! is not one of the plain shapes (tool calls, log probabilities, `x_groq`, an error, a field
//! given twice, anything [`Scan`] gives up on) gives `None`, and the caller reads the text with
//! serde_json, which decides.

use std::ops::Range;

use gateway_core::json::{Scan, Seen};
use serde::Deserialize;
use serde::de::value::{Error, StrDeserializer};

use super::{
    ChatCompletion, ChatCompletionChunk, Choice, ChunkChoice, CompletionTokensDetails, Delta,
    FinishReason, PromptTokensDetails, ResponseMessage, Usage,
};

impl ChatCompletion {
    /// A blocking answer read by hand when its messages are text, or `None` (see the module).
    pub(crate) fn scan(text: &str) -> Option<Self> {
        let mut scan = Scan::new(text);
        let mut object = scan.object()?;
        let mut answer = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "id" => {
                    seen.first(0)?;
                    answer.id = optional_string(&mut scan)?;
                }
                "model" => {
                    seen.first(1)?;
                    answer.model = optional_string(&mut scan)?;
                }
                "choices" => {
                    seen.first(2)?;
                    let mut array = scan.array()?;
                    while scan.item(&mut array)? {
                        answer.choices.push(Choice::scan(&mut scan)?);
                    }
                }
                "usage" => {
                    seen.first(3)?;
                    if !scan.null() {
                        answer.usage = Some(Usage::scan(&mut scan)?);
                    }
                }
                _ => scan.skip()?,
            }
        }
        scan.end()?;
        Some(answer)
    }
}

impl Choice {
    fn scan(scan: &mut Scan<'_>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut choice = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "index" => {
                    seen.first(0)?;
                    choice.index = optional_index(scan)?;
                }
                "message" => {
                    seen.first(1)?;
                    if !scan.null() {
                        choice.message = Some(ResponseMessage::scan(scan)?);
                    }
                }
                "finish_reason" => {
                    seen.first(2)?;
                    if !scan.null() {
                        choice.finish_reason = Some(finish_reason(scan)?);
                    }
                }
                "logprobs" => {
                    seen.first(3)?;
                    scan.null().then_some(())?;
                }
                _ => scan.skip()?,
            }
        }
        Some(choice)
    }
}

impl ResponseMessage {
    fn scan(scan: &mut Scan<'_>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut message = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "content" => {
                    seen.first(0)?;
                    message.content = optional_string(scan)?;
                }
                "tool_calls" => {
                    seen.first(1)?;
                    scan.null().then_some(())?;
                }
                _ => scan.skip()?,
            }
        }
        Some(message)
    }
}

impl Usage {
    fn scan(scan: &mut Scan<'_>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut usage = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "prompt_tokens" => {
                    seen.first(0)?;
                    usage.prompt_tokens = optional_count(scan)?;
                }
                "completion_tokens" => {
                    seen.first(1)?;
                    usage.completion_tokens = optional_count(scan)?;
                }
                "prompt_tokens_details" => {
                    seen.first(2)?;
                    if !scan.null() {
                        let cached_tokens = one_count(scan, "cached_tokens")?;
                        usage.prompt_tokens_details = Some(PromptTokensDetails { cached_tokens });
                    }
                }
                "completion_tokens_details" => {
                    seen.first(3)?;
                    if !scan.null() {
                        let reasoning_tokens = one_count(scan, "reasoning_tokens")?;
                        usage.completion_tokens_details =
                            Some(CompletionTokensDetails { reasoning_tokens });
                    }
                }
                _ => scan.skip()?,
            }
        }
        Some(usage)
    }
}

impl ChatCompletionChunk {
    /// The chunk read by hand when it is one of the plain shapes a stream is made of (text
    /// deltas, the role, the finish, the usage), or `None` (see the module). With the chunk
    /// comes its [`TextShape`] when it is a plain text chunk.
    pub(crate) fn scan(data: &str) -> Option<(Self, Option<TextShape>)> {
        let mut scan = Scan::new(data);
        let mut object = scan.object()?;
        let mut chunk = Self::default();
        let mut seen = Seen::default();
        let mut text_at = None;
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "choices" => {
                    seen.first(0)?;
                    let mut array = scan.array()?;
                    while scan.item(&mut array)? {
                        chunk
                            .choices
                            .push(ChunkChoice::scan(&mut scan, &mut text_at)?);
                    }
                }
                "usage" => {
                    seen.first(1)?;
                    if !scan.null() {
                        chunk.usage = Some(Usage::scan(&mut scan)?);
                    }
                }
                "x_groq" | "error" => {
                    seen.first(if key == "x_groq" { 2 } else { 3 })?;
                    scan.null().then_some(())?;
                }
                _ => scan.skip()?,
            }
        }
        scan.end()?;
        let shape = match (&chunk.choices[..], text_at) {
            ([only], Some(at)) if only.finish_reason.is_none() && chunk.usage.is_none() => {
                Some(TextShape {
                    head: data[..at.start].into(),
                    tail: data[at.end..].into(),
                    index: only.index,
                })
            }
            _ => None,
        };
        Some((chunk, shape))
    }
}

/// A plain text chunk (one choice, a text delta, nothing else) with its text cut out: the bytes
/// before the text's JSON string and after it. A stream repeats one such chunk with only the
/// text changing (the id, model and timestamps stay), so the next chunk is most often the same
/// bytes around another string: that chunk is the shape's chunk with that text, read by
/// comparing bytes. A chunk that does not fit is read in full (and gives the next shape).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TextShape {
    head: Box<str>,
    tail: Box<str>,
    index: Option<u32>,
}

impl TextShape {
    /// `data` as a chunk, when it is this shape's chunk with another text. Every byte but the
    /// string's is the same as in the chunk the shape was read from, and the string is read as
    /// [`Scan`] reads it, so the chunk is the one a full read gives.
    pub(crate) fn chunk(&self, data: &str) -> Option<ChatCompletionChunk> {
        let rest = data.strip_prefix(&*self.head)?;
        let mut scan = Scan::new(rest);
        let text = scan.str()?;
        if scan.rest() != &*self.tail {
            return None;
        }
        Some(ChatCompletionChunk {
            choices: vec![ChunkChoice {
                index: self.index,
                delta: Some(Delta {
                    content: Some(text.into_owned()),
                    tool_calls: None,
                }),
                finish_reason: None,
            }],
            ..ChatCompletionChunk::default()
        })
    }
}

impl ChunkChoice {
    /// A choice read by hand ([`ChatCompletionChunk::scan`]); `text_at` is where its text's
    /// string is, if it has one.
    fn scan(scan: &mut Scan<'_>, text_at: &mut Option<Range<usize>>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut choice = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "index" => {
                    seen.first(0)?;
                    choice.index = optional_index(scan)?;
                }
                "delta" => {
                    seen.first(1)?;
                    if !scan.null() {
                        choice.delta = Some(Delta::scan(scan, text_at)?);
                    }
                }
                "finish_reason" => {
                    seen.first(2)?;
                    if !scan.null() {
                        choice.finish_reason = Some(finish_reason(scan)?);
                    }
                }
                _ => scan.skip()?,
            }
        }
        Some(choice)
    }
}

impl Delta {
    /// A delta read by hand ([`ChatCompletionChunk::scan`]); tool calls are left to serde.
    fn scan(scan: &mut Scan<'_>, text_at: &mut Option<Range<usize>>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut delta = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "content" => {
                    seen.first(0)?;
                    if !scan.null() {
                        let (text, at) = scan.str_at()?;
                        delta.content = Some(text.into_owned());
                        *text_at = Some(at);
                    }
                }
                "tool_calls" => {
                    seen.first(1)?;
                    scan.null().then_some(())?;
                }
                _ => scan.skip()?,
            }
        }
        Some(delta)
    }
}

/// An object of which only the count `name` is read (a usage's details).
fn one_count(scan: &mut Scan<'_>, name: &str) -> Option<Option<u64>> {
    let mut object = scan.object()?;
    let mut count = None;
    let mut seen = Seen::default();
    while let Some(key) = scan.key(&mut object)? {
        if key == name {
            seen.first(0)?;
            count = optional_count(scan)?;
        } else {
            scan.skip()?;
        }
    }
    Some(count)
}

/// `null` or a string, as an `Option<String>` field reads it; `None` when it is neither.
fn optional_string(scan: &mut Scan<'_>) -> Option<Option<String>> {
    if scan.null() {
        return Some(None);
    }
    Some(Some(scan.str()?.into_owned()))
}

/// `null` or a whole number, as an `Option<u64>` field reads it.
fn optional_count(scan: &mut Scan<'_>) -> Option<Option<u64>> {
    if scan.null() {
        return Some(None);
    }
    Some(Some(scan.u64()?))
}

/// `null` or a whole number that fits a `u32`, as an `Option<u32>` field reads it.
fn optional_index(scan: &mut Scan<'_>) -> Option<Option<u32>> {
    if scan.null() {
        return Some(None);
    }
    Some(Some(u32::try_from(scan.u64()?).ok()?))
}

/// A finish reason, named through the derive of [`FinishReason`] so the two readings cannot
/// differ.
fn finish_reason(scan: &mut Scan<'_>) -> Option<FinishReason> {
    let name = scan.str()?;
    FinishReason::deserialize(StrDeserializer::<Error>::new(&name)).ok()
}
