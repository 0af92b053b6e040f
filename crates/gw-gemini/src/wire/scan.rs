//! [`GenerateContentResponse`] read by hand, for the answers and stream events made of text.
//!
//! serde_json reads a stream event of `streamGenerateContent` (about 250 bytes: a text part,
//! the usage so far, the model version) in some 7,000 instructions, the better part of a
//! streamed answer's cost through the gateway; [`Scan`] reads it in a fraction of that. What
//! is read here is what serde_json reads (the tests hold it to that); whatever is not one of
//! these plain shapes (a function call, inline or file data, a blocked prompt, an error, log
//! probabilities, a field given twice, anything [`Scan`] gives up on) gives `None`, and the
//! caller reads the text with serde_json, which decides.

use std::borrow::Cow;
use std::ops::Range;

use gateway_core::json::{Scan, Seen};

use super::{
    Candidate, Content, FinishReason, GenerateContentResponse, ModalityTokenCount, Part, Role,
    UsageMetadata,
};

/// Where an answer's text string (the last part's with a text) and its usage value are in the
/// answer's text, noted while reading it.
#[derive(Debug, Default)]
struct Marks {
    text: Option<Range<usize>>,
    usage: Option<Range<usize>>,
}

impl GenerateContentResponse {
    /// The answer read by hand when it is made of text parts, or `None` (see the module).
    pub(crate) fn scan(text: &str) -> Option<Self> {
        Self::scan_marked(text, &mut Marks::default())
    }

    /// A stream event read as [`GenerateContentResponse::scan`] reads it, with its
    /// [`TextShape`] when it is a plain text event.
    pub(crate) fn scan_event(data: &str) -> Option<(Self, Option<TextShape>)> {
        let mut marks = Marks::default();
        let event = Self::scan_marked(data, &mut marks)?;
        let shape = TextShape::of(&event, &marks, data);
        Some((event, shape))
    }

    fn scan_marked(text: &str, marks: &mut Marks) -> Option<Self> {
        let mut scan = Scan::new(text);
        let mut object = scan.object()?;
        let mut answer = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "candidates" => {
                    seen.first(0)?;
                    answer.candidates = scan.or_null(|s| s.list(|s| Candidate::scan(s, marks)))?;
                }
                "usageMetadata" => {
                    seen.first(1)?;
                    let start = text.len() - scan.rest().len();
                    answer.usage_metadata = scan.or_null(UsageMetadata::scan)?;
                    marks.usage = Some(start..text.len() - scan.rest().len());
                }
                "modelVersion" => {
                    seen.first(2)?;
                    answer.model_version = scan.or_null(Scan::string)?;
                }
                "responseId" => {
                    seen.first(3)?;
                    answer.response_id = scan.or_null(Scan::string)?;
                }
                "promptFeedback" | "error" => {
                    seen.first(if key == "error" { 4 } else { 5 })?;
                    scan.null().then_some(())?;
                }
                _ => scan.skip()?,
            }
        }
        scan.end()?;
        Some(answer)
    }
}

impl Candidate {
    fn scan(scan: &mut Scan<'_>, marks: &mut Marks) -> Option<Self> {
        let mut object = scan.object()?;
        let mut candidate = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "content" => {
                    seen.first(0)?;
                    candidate.content = scan.or_null(|s| Content::scan(s, marks))?;
                }
                "finishReason" => {
                    seen.first(1)?;
                    candidate.finish_reason = scan.or_null(Scan::named::<FinishReason>)?;
                }
                "index" => {
                    seen.first(2)?;
                    candidate.index = scan.or_null(Scan::u32)?;
                }
                "logprobsResult" => {
                    seen.first(3)?;
                    scan.null().then_some(())?;
                }
                _ => scan.skip()?,
            }
        }
        Some(candidate)
    }
}

impl Content {
    fn scan(scan: &mut Scan<'_>, marks: &mut Marks) -> Option<Self> {
        let mut object = scan.object()?;
        let mut content = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "role" => {
                    seen.first(0)?;
                    content.role = scan.or_null(Scan::named::<Role>)?;
                }
                "parts" => {
                    seen.first(1)?;
                    content.parts = scan.list(|s| Part::scan(s, marks))?;
                }
                _ => scan.skip()?,
            }
        }
        Some(content)
    }
}

impl Part {
    fn scan(scan: &mut Scan<'_>, marks: &mut Marks) -> Option<Self> {
        let mut object = scan.object()?;
        let mut part = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "text" => {
                    seen.first(0)?;
                    part.text = scan.or_null(|s| {
                        let (text, at) = s.str_at()?;
                        marks.text = Some(at);
                        Some(text.into_owned())
                    })?;
                }
                "thought" => {
                    seen.first(1)?;
                    part.thought = scan.or_null(Scan::bool)?;
                }
                "thoughtSignature" => {
                    seen.first(2)?;
                    part.thought_signature = scan.or_null(Scan::string)?;
                }
                // `inline_data` is an alias of `inlineData`: one field to serde.
                "inlineData" | "inline_data" | "fileData" | "functionCall" | "functionResponse" => {
                    seen.first(match key {
                        "inlineData" | "inline_data" => 3,
                        "fileData" => 4,
                        "functionCall" => 5,
                        _ => 6,
                    })?;
                    scan.null().then_some(())?;
                }
                _ => scan.skip()?,
            }
        }
        Some(part)
    }
}

/// A plain text event (one answer, of one text part, not finished) with its text and its usage
/// cut out: the bytes before the text's JSON string, those between it and the usage's value,
/// and those after that value. A stream repeats one such event with only the text and the
/// usage so far changing (the roles, the index, the model version and the response id stay),
/// so the next event is most often the same bytes around another string and another usage:
/// its text and usage are then read without reading the rest. An event that does not fit is
/// read in full (and gives the next shape).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TextShape {
    head: Box<str>,
    /// Up to the usage's value, or to the end when the event has no usage.
    mid: Box<str>,
    /// After the usage's value, when the event has one.
    tail: Option<Box<str>>,
}

impl TextShape {
    /// The shape of `event`, read from `data` with `marks`, when it is a plain text event with
    /// its usage (if any) after its text.
    fn of(event: &GenerateContentResponse, marks: &Marks, data: &str) -> Option<Self> {
        let [candidate] = event.candidates.as_deref()? else {
            return None;
        };
        let [part] = candidate.content.as_ref()?.parts.as_slice() else {
            return None;
        };
        let plain = candidate.index.unwrap_or(0) == 0
            && candidate.finish_reason.is_none()
            && part.text.is_some()
            && part.thought.is_none()
            && part.thought_signature.is_none()
            && event.prompt_feedback.is_none()
            && event.error.is_none();
        let text = marks.text.clone().filter(|_| plain)?;
        let (mid, tail) = match marks.usage.clone() {
            Some(usage) if usage.start >= text.end => {
                (&data[text.end..usage.start], Some(data[usage.end..].into()))
            }
            Some(_) => return None,
            None => (&data[text.end..], None),
        };
        Some(Self {
            head: data[..text.start].into(),
            mid: mid.into(),
            tail,
        })
    }

    /// The text and usage of `data` when it is this shape's event with another text and
    /// usage. Every other byte is the same as in the event the shape was read from, and the
    /// string and the usage are read as [`Scan`] reads them there: what a full read of `data`
    /// gives (the tests hold it to serde_json's).
    pub(crate) fn read<'d>(&self, data: &'d str) -> Option<(Cow<'d, str>, Option<UsageMetadata>)> {
        let rest = data.strip_prefix(&*self.head)?;
        let mut scan = Scan::new(rest);
        let text = scan.str()?;
        let rest = scan.rest().strip_prefix(&*self.mid)?;
        let Some(tail) = &self.tail else {
            return rest.is_empty().then_some((text, None));
        };
        let mut scan = Scan::new(rest);
        let usage = scan.or_null(UsageMetadata::scan)?;
        (scan.rest() == &**tail).then_some((text, usage))
    }
}

impl UsageMetadata {
    fn scan(scan: &mut Scan<'_>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut usage = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            let (field, count) = match key {
                "promptTokenCount" => (0, &mut usage.prompt_token_count),
                "cachedContentTokenCount" => (1, &mut usage.cached_content_token_count),
                "candidatesTokenCount" => (2, &mut usage.candidates_token_count),
                "thoughtsTokenCount" => (3, &mut usage.thoughts_token_count),
                "toolUsePromptTokenCount" => (4, &mut usage.tool_use_prompt_token_count),
                "candidatesTokensDetails" | "promptTokensDetails" => {
                    let (field, details) = match key {
                        "candidatesTokensDetails" => (5, &mut usage.candidates_tokens_details),
                        _ => (6, &mut usage.prompt_tokens_details),
                    };
                    seen.first(field)?;
                    *details = scan.or_null(|s| s.list(ModalityTokenCount::scan))?;
                    continue;
                }
                _ => {
                    scan.skip()?;
                    continue;
                }
            };
            seen.first(field)?;
            *count = scan.or_null(Scan::u64)?;
        }
        Some(usage)
    }
}

impl ModalityTokenCount {
    fn scan(scan: &mut Scan<'_>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut count = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "modality" => {
                    seen.first(0)?;
                    count.modality = scan.or_null(Scan::string)?;
                }
                "tokenCount" => {
                    seen.first(1)?;
                    count.token_count = scan.or_null(Scan::u64)?;
                }
                _ => scan.skip()?,
            }
        }
        Some(count)
    }
}

#[cfg(test)]
mod tests {
    use gateway_core::json::scan::{broken_variants, reads_as_serde_reads};
    use serde_json::Value;

    use super::*;

    /// Every answer of the Gemini contract fixtures and of this crate's recorded ones: each
    /// stream event, and each JSON body with `candidates` or `usageMetadata`, as text (and
    /// pretty-printed, as Google sends it).
    fn recorded_answers() -> Vec<String> {
        let is_answer = |map: &serde_json::Map<String, Value>| {
            map.contains_key("candidates") || map.contains_key("usageMetadata")
        };
        let mut answers = Vec::new();
        for file in recorded_files() {
            answers.extend(gw_mock::fixture::sse_events(&file));
            for answer in gw_mock::fixture::objects_where(&file, &is_answer) {
                answers.push(answer.to_string());
                answers.push(serde_json::to_string_pretty(answer).unwrap());
            }
        }
        answers
    }

    /// The Gemini contract fixtures and this crate's recorded ones.
    fn recorded_files() -> Vec<Value> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let contract = root.join("../../tests/contract");
        let mut dirs = vec![root.join("tests/fixtures")];
        for entry in std::fs::read_dir(&contract).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .contains("gemini")
            {
                dirs.push(path);
            }
        }
        gw_mock::fixture::recorded_files(dirs)
    }

    /// Answers of the shapes the hand reader is for, and the edges of those shapes.
    const PLAIN: &[&str] = &[
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Zq1 "}]},"index":0}],"usageMetadata":{"promptTokenCount":12,"candidatesTokenCount":2,"totalTokenCount":14},"modelVersion":"bench-chat","responseId":"bench"}"#,
        r#"{"candidates": [{"content": {"parts": [{"text": "caf\u00e9 \ud83d\ude00 \"q\"\n"}],"role": "model"},"finishReason": "STOP","index": 0,"safetyRatings": [{"category": "HARM_CATEGORY_HATE_SPEECH","probability": "NEGLIGIBLE"}]}],"usageMetadata": {"promptTokenCount": 8,"candidatesTokenCount": 3,"totalTokenCount": 11,"thoughtsTokenCount": 40,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 8}],"candidatesTokensDetails": [{"modality": "TEXT","tokenCount": 3}]},"modelVersion": "gemini-2.5-flash","responseId": "abc"}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":"thinking...","thought":true},{"text":"answer","thoughtSignature":"c2ln"}],"role":"model"},"finishReason":"MAX_TOKENS"}]}"#,
        r#"{"candidates":[{"content":{"role":"model"},"finishReason":"SOMETHING_NEW","index":null,"logprobsResult":null}],"promptFeedback":null,"error":null}"#,
        r#"{"candidates":[{"content":{"parts":[{"text":null,"inlineData":null,"functionCall":null}],"role":"other"}},{"index":1,"content":null}]}"#,
        r#"{"usageMetadata":{"promptTokenCount":null,"cachedContentTokenCount":4,"toolUsePromptTokenCount":1,"candidatesTokensDetails":null,"promptTokensDetails":[{"modality":null}]},"candidates":null,"modelVersion":null}"#,
        r#"{}"#,
    ];

    fn by_hand(text: &str) -> Option<GenerateContentResponse> {
        GenerateContentResponse::scan(text)
    }

    fn by_serde(text: &str) -> Option<GenerateContentResponse> {
        serde_json::from_str(text).ok()
    }

    #[test]
    fn an_answer_read_by_hand_is_what_serde_reads() {
        let recorded = recorded_answers();
        assert!(
            recorded.len() > 100,
            "only {} recorded answers",
            recorded.len()
        );
        let texts = recorded
            .iter()
            .map(String::as_str)
            .chain(PLAIN.iter().copied());
        // An answer made of text parts is one the hand reader takes.
        let plain = reads_as_serde_reads(texts, by_hand, by_serde, |text| {
            let Some(answer) = by_serde(text) else {
                return false;
            };
            let only_text = answer.candidates.iter().flatten().all(|c| {
                c.logprobs_result.is_none()
                    && c.content.iter().flat_map(|c| &c.parts).all(|p| {
                        p.inline_data.is_none()
                            && p.file_data.is_none()
                            && p.function_call.is_none()
                            && p.function_response.is_none()
                    })
            });
            let error = serde_json::from_str::<Value>(text).unwrap()["error"] != Value::Null;
            only_text && answer.prompt_feedback.is_none() && !error
        });
        assert!(plain > 40, "only {plain} plain answers");
    }

    #[test]
    fn what_the_hand_reader_leaves_to_serde() {
        for text in [
            r#"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{}}}]}}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":"iVBO"}}]}}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"inlineData":null,"inline_data":null}]}}]}"#,
            r#"{"candidates":[{"logprobsResult":{"chosenCandidates":[]}}]}"#,
            r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#,
            r#"{"error":{"code":500,"message":"Internal error","status":"INTERNAL"}}"#,
            r#"{"candidates":[],"candidates":[]}"#,
            r#"{"candidates":[{"content":{"parts":null}}]}"#,
            r#"{"candidates":[{"finishReason":1}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"thought":"yes"}]}}]}"#,
            r#"{"usageMetadata":{"promptTokenCount":1.5}}"#,
            r#"{"usageMetadata":{"promptTokenCount":-1}}"#,
            r#"{"usageMetadata":{"promptTokenCount":1,"promptTokenCount":1}}"#,
            r#"{"candidates":[{"index":4294967296}]}"#,
            r#"{"modelVersion":"\ud800"}"#,
            "[DONE]",
        ] {
            assert_eq!(by_hand(text), None, "{text}");
        }
    }

    /// Every cut, deletion and replacement of a byte of the plain answers and of the recorded
    /// ones that are short enough: read by hand only what serde reads, and the same way.
    #[test]
    fn a_broken_answer_is_left_to_serde_or_read_as_serde_reads_it() {
        let recorded = recorded_answers();
        let short = recorded
            .iter()
            .map(String::as_str)
            .filter(|t| t.len() < 600);
        for text in PLAIN.iter().copied().chain(short) {
            for variant in broken_variants(text) {
                if let Some(ours) = by_hand(&variant) {
                    assert_eq!(Some(ours), by_serde(&variant), "{variant}");
                }
            }
        }
    }

    /// What a full read (serde_json's) of a plain text event gives: its text and usage; `None`
    /// for any other event.
    fn plain_by_serde(text: &str) -> Option<(String, Option<UsageMetadata>)> {
        let answer = by_serde(text)?;
        let error = serde_json::from_str::<Value>(text).ok()?["error"] != Value::Null;
        let [candidate] = answer.candidates.as_deref()? else {
            return None;
        };
        let [part] = candidate.content.as_ref()?.parts.as_slice() else {
            return None;
        };
        let plain = candidate.index.unwrap_or(0) == 0
            && candidate.finish_reason.is_none()
            && candidate.logprobs_result.is_none()
            && part.thought.is_none()
            && part.thought_signature.is_none()
            && part.inline_data.is_none()
            && part.file_data.is_none()
            && part.function_call.is_none()
            && part.function_response.is_none()
            && answer.prompt_feedback.is_none()
            && !error;
        let text = part.text.clone().filter(|_| plain)?;
        Some((text, answer.usage_metadata.clone()))
    }

    fn shape_of(text: &str) -> Option<TextShape> {
        GenerateContentResponse::scan_event(text)?.1
    }

    fn by_shape(shape: &TextShape, text: &str) -> Option<(String, Option<UsageMetadata>)> {
        shape.read(text).map(|(t, u)| (t.into_owned(), u))
    }

    /// Text events as a stream sends them, the usage so far changing with the text.
    const STREAM: &[&str] = &[
        r#"{"candidates": [{"content": {"parts": [{"text": "Of course"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 11,"candidatesTokenCount": 2,"totalTokenCount": 13},"modelVersion": "gemini-2.5-pro","responseId": "r1"}"#,
        r#"{"candidates": [{"content": {"parts": [{"text": "! \"Oi\"\n\u00e9"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 11,"candidatesTokenCount": 9,"totalTokenCount": 20,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 11}],"thoughtsTokenCount": 3},"modelVersion": "gemini-2.5-pro","responseId": "r1"}"#,
        r#"{"candidates": [{"content": {"parts": [{"text": ""}],"role": "model"},"index": 0}],"usageMetadata": null,"modelVersion": "gemini-2.5-pro","responseId": "r1"}"#,
        r#"{"candidates": [{"content": {"parts": [{"text": "end"}],"role": "model"},"finishReason": "STOP","index": 0}],"usageMetadata": {"promptTokenCount": 11,"candidatesTokenCount": 12,"totalTokenCount": 23},"modelVersion": "gemini-2.5-pro","responseId": "r1"}"#,
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Zq1 "}]},"index":0}],"modelVersion":"bench-chat"}"#,
        r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Zq2 "}]},"index":0}],"modelVersion":"bench-chat"}"#,
    ];

    /// Whatever event a shape reads, it reads as a full read does; and the recorded streams'
    /// text events are most often read by the shape of the event before them.
    #[test]
    fn an_event_read_by_its_shape_is_what_a_full_read_gives() {
        let mut streams: Vec<Vec<String>> = vec![STREAM.iter().map(|e| e.to_string()).collect()];
        streams.extend(recorded_files().iter().map(gw_mock::fixture::sse_events));
        let (mut read, mut next_read) = (0, 0);
        for events in &streams {
            for (i, a) in events.iter().enumerate() {
                let Some(shape) = shape_of(a) else {
                    continue;
                };
                // The event the shape was read from is its own first reading.
                assert_eq!(by_shape(&shape, a), plain_by_serde(a), "{a}");
                for (j, b) in events.iter().enumerate() {
                    if let Some(ours) = by_shape(&shape, b) {
                        assert_eq!(Some(ours), plain_by_serde(b), "{a}\n{b}");
                        read += 1;
                        next_read += usize::from(j == i + 1);
                    }
                }
            }
        }
        assert!(read > 25 && next_read > 5, "{read} read, {next_read} next");
        // The recorded stream whose events each carry the usage so far is read by shapes.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let recorded = std::fs::read_to_string(
            root.join("../../tests/contract/gemini/stream-usage-cumulative-recorded.json"),
        )
        .unwrap();
        let events = gw_mock::fixture::sse_events(&serde_json::from_str(&recorded).unwrap());
        let shape = shape_of(&events[0]).unwrap();
        let (_, usage) = by_shape(&shape, &events[1]).unwrap();
        assert_ne!(usage, by_serde(&events[0]).unwrap().usage_metadata);
    }

    #[test]
    fn what_a_shape_leaves_to_the_full_read() {
        let shape = shape_of(STREAM[0]).unwrap();
        assert!(by_shape(&shape, STREAM[1]).is_some());
        assert!(by_shape(&shape, STREAM[2]).is_some());
        let changed = |from: &str, to: &str| STREAM[1].replace(from, to);
        for other in [
            // The finish.
            STREAM[3].to_owned(),
            // Another model, another answer, another part, a thought, no usage.
            changed("gemini-2.5-pro", "gemini-2.5-flash"),
            changed(r#""index": 0"#, r#""index": 1"#),
            changed(r#"}],"role""#, r#"},{"text": "x"}],"role""#),
            changed(
                r#""parts": [{"text""#,
                r#""parts": [{"thought": true,"text""#,
            ),
            changed(r#""usageMetadata": {"#, r#""usageMetadata": 1,"x": {"#),
            changed(r#""usageMetadata""#, r#""usageMetadataX""#),
            // Not text, or more after the end.
            changed(r#""text": "! \"Oi\"\n\u00e9""#, r#""text": null"#),
            format!("{} ", STREAM[1]),
            format!("{}{{}}", STREAM[1]),
        ] {
            assert_eq!(by_shape(&shape, &other), None, "{other}");
        }
        // Events that give no shape: the finish, a thought, a usage before the text.
        for event in [
            STREAM[3],
            r#"{"candidates":[{"content":{"parts":[{"text":"hm","thought":true}]}}]}"#,
            r#"{"usageMetadata":{"promptTokenCount":1},"candidates":[{"content":{"parts":[{"text":"a"}]}}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"a"},{"text":"b"}]}}]}"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"a"}]}},{"index":1}]}"#,
        ] {
            assert_eq!(shape_of(event), None, "{event}");
        }
        // Events without usage have a shape of their own.
        let bare = shape_of(STREAM[4]).unwrap();
        assert_eq!(by_shape(&bare, STREAM[5]), Some(("Zq2 ".to_owned(), None)));
        assert_eq!(by_shape(&bare, STREAM[1]), None);
    }

    /// Every cut, deletion and replacement of a byte of an event a shape reads: read by the
    /// shape only what a full read reads, and the same way.
    #[test]
    fn a_broken_event_is_left_to_the_full_read_or_read_as_it_reads_it() {
        for (a, b) in [(STREAM[0], STREAM[1]), (STREAM[4], STREAM[5])] {
            let shape = shape_of(a).unwrap();
            for variant in broken_variants(b) {
                if let Some(ours) = by_shape(&shape, &variant) {
                    assert_eq!(Some(ours), plain_by_serde(&variant), "{variant}");
                }
            }
        }
    }
}
