//! [`GenerateContentResponse`] read by hand, for the answers and stream events made of text.
//!
//! serde_json reads a stream event of `streamGenerateContent` (about 250 bytes: a text part,
//! the usage so far, the model version) in some 7,000 instructions, the better part of a
//! streamed answer's cost through the gateway; [`Scan`] reads it in a fraction of that. What
//! is read here is what serde_json reads (the tests hold it to that); whatever is not one of
//! these plain shapes (a function call, inline or file data, a blocked prompt, an error, log
//! probabilities, a field given twice, anything [`Scan`] gives up on) gives `None`, and the
//! caller reads the text with serde_json, which decides.

use gateway_core::json::{Scan, Seen};

use super::{
    Candidate, Content, FinishReason, GenerateContentResponse, ModalityTokenCount, Part, Role,
    UsageMetadata,
};

impl GenerateContentResponse {
    /// The answer read by hand when it is made of text parts, or `None` (see the module).
    pub(crate) fn scan(text: &str) -> Option<Self> {
        let mut scan = Scan::new(text);
        let mut object = scan.object()?;
        let mut answer = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "candidates" => {
                    seen.first(0)?;
                    answer.candidates = scan.or_null(|s| s.list(Candidate::scan))?;
                }
                "usageMetadata" => {
                    seen.first(1)?;
                    answer.usage_metadata = scan.or_null(UsageMetadata::scan)?;
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
    fn scan(scan: &mut Scan<'_>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut candidate = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "content" => {
                    seen.first(0)?;
                    candidate.content = scan.or_null(Content::scan)?;
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
    fn scan(scan: &mut Scan<'_>) -> Option<Self> {
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
                    content.parts = scan.list(Part::scan)?;
                }
                _ => scan.skip()?,
            }
        }
        Some(content)
    }
}

impl Part {
    fn scan(scan: &mut Scan<'_>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut part = Self::default();
        let mut seen = Seen::default();
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "text" => {
                    seen.first(0)?;
                    part.text = scan.or_null(Scan::string)?;
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
        let mut answers = Vec::new();
        for file in gw_mock::fixture::recorded_files(dirs) {
            answers.extend(gw_mock::fixture::sse_events(&file));
            for answer in gw_mock::fixture::objects_where(&file, &is_answer) {
                answers.push(answer.to_string());
                answers.push(serde_json::to_string_pretty(answer).unwrap());
            }
        }
        answers
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
}
