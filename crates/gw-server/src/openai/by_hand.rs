//! The chat request read by hand.
//!
//! serde's derived reader spends about 4,000 instructions on the bench's 150-byte request
//! (a model, one message, `max_tokens`), most of them in its visitors' dispatch on field names
//! and in the `Option`/`Vec` wrappers around every field. Here the request is read with a
//! [`Scan`], which checks every byte it passes as serde_json would and gives up (`None`) on
//! anything it is not sure of. A field whose type is a schema of its own (tools, tool calls,
//! response formats, tags, and the fields refused by name) is read by serde_json from where
//! the scan is ([`Scan::value`]), so a request with tools is read once. A request the reader
//! gives up on (an unknown or repeated field, a value of the wrong type, anything broken) is
//! read by serde whole, which decides and names what is wrong. A request read here is the one
//! serde reads, field for field (held to it by tests on such requests, on those the
//! `async-openai` SDK writes, and on every cut and edit of some), but for one thing: serde
//! refuses a text nested more than 128 levels deep, and for a field read through
//! [`Scan::value`] it counts from that field, so a schema within three levels of that limit
//! is taken here.

use llm_gateway::json::{Scan, Seen};

use super::{
    ChatCompletionRequest, ChatMessage, Content, ContentPart, ImageUrl, InputAudio, Stop,
    StreamOptions,
};

impl ChatCompletionRequest {
    /// The request `text` holds, or `None` when the reader gives up, for serde to read it
    /// whole.
    pub(crate) fn read_by_hand(text: &str) -> Option<Self> {
        let mut scan = Scan::new(text);
        let mut object = scan.object()?;
        // A field given twice is refused by serde; more fields than one `Seen` holds.
        let (mut seen, mut more) = (Seen::default(), Seen::default());
        let mut model = None;
        let mut messages = None;
        let mut r = ChatCompletionRequest::blank();
        while let Some(key) = scan.key(&mut object)? {
            let s = &mut scan;
            match key {
                "model" => {
                    seen.first(0)?;
                    model = Some(s.string()?);
                }
                "messages" => {
                    seen.first(1)?;
                    messages = Some(s.list(ChatMessage::read_by_hand)?);
                }
                // Numbers that need not be whole are read by serde_json, whose float parsing
                // is its own (not the standard library's): the same `f64` to the bit.
                "temperature" => {
                    seen.first(2)?;
                    r.temperature = s.or_null(Scan::value)?;
                }
                "top_p" => {
                    seen.first(3)?;
                    r.top_p = s.or_null(Scan::value)?;
                }
                "max_tokens" => {
                    seen.first(4)?;
                    r.max_tokens = s.or_null(Scan::u32)?;
                }
                "max_completion_tokens" => {
                    seen.first(5)?;
                    r.max_completion_tokens = s.or_null(Scan::u32)?;
                }
                "stop" => {
                    seen.first(6)?;
                    r.stop = s.or_null(stop)?;
                }
                "seed" => {
                    seen.first(7)?;
                    r.seed = s.or_null(Scan::value)?;
                }
                "presence_penalty" => {
                    seen.first(8)?;
                    r.presence_penalty = s.or_null(Scan::value)?;
                }
                "frequency_penalty" => {
                    seen.first(9)?;
                    r.frequency_penalty = s.or_null(Scan::value)?;
                }
                "stream" => {
                    seen.first(10)?;
                    r.stream = s.or_null(Scan::bool)?;
                }
                "stream_options" => {
                    seen.first(11)?;
                    r.stream_options = s.or_null(stream_options)?;
                }
                "n" => {
                    seen.first(12)?;
                    r.n = s.or_null(Scan::u32)?;
                }
                "parallel_tool_calls" => {
                    seen.first(13)?;
                    r.parallel_tool_calls = s.or_null(Scan::bool)?;
                }
                "logprobs" => {
                    seen.first(14)?;
                    r.logprobs = s.or_null(Scan::bool)?;
                }
                "top_logprobs" => {
                    seen.first(15)?;
                    r.top_logprobs = s.or_null(Scan::u32)?;
                }
                "reasoning_effort" => {
                    seen.first(16)?;
                    r.reasoning_effort = s.or_null(Scan::string)?;
                }
                "user" => {
                    seen.first(17)?;
                    r.user = s.or_null(Scan::string)?;
                }
                "safety_identifier" => {
                    seen.first(18)?;
                    r.safety_identifier = s.or_null(Scan::string)?;
                }
                "prompt_cache_key" => {
                    seen.first(19)?;
                    r.prompt_cache_key = s.or_null(Scan::string)?;
                }
                "service_tier" => {
                    seen.first(20)?;
                    r.service_tier = s.or_null(Scan::string)?;
                }
                "store" => {
                    seen.first(21)?;
                    r.store = s.or_null(Scan::bool)?;
                }
                "fallbacks" => {
                    seen.first(22)?;
                    r.fallbacks = s.list(Scan::string)?;
                }
                // Schemas of their own, and the fields refused by name (whose values are read
                // only to be named): serde_json's, from where the scan is.
                "response_format" => {
                    seen.first(23)?;
                    r.response_format = s.value()?;
                }
                "tools" => {
                    seen.first(24)?;
                    r.tools = s.value()?;
                }
                "tool_choice" => {
                    seen.first(25)?;
                    r.tool_choice = s.value()?;
                }
                "metadata" => {
                    seen.first(26)?;
                    r.metadata = s.value()?;
                }
                "prompt_cache_retention" => {
                    seen.first(27)?;
                    r.prompt_cache_retention = s.or_null(Scan::string)?;
                }
                "verbosity" => {
                    seen.first(28)?;
                    r.verbosity = s.or_null(Scan::string)?;
                }
                "functions" => {
                    more.first(0)?;
                    r.functions = s.value()?;
                }
                "function_call" => {
                    more.first(1)?;
                    r.function_call = s.value()?;
                }
                "logit_bias" => {
                    more.first(2)?;
                    r.logit_bias = s.value()?;
                }
                "modalities" => {
                    more.first(3)?;
                    r.modalities = s.value()?;
                }
                "audio" => {
                    more.first(4)?;
                    r.audio = s.value()?;
                }
                "prediction" => {
                    more.first(5)?;
                    r.prediction = s.value()?;
                }
                "web_search_options" => {
                    more.first(6)?;
                    r.web_search_options = s.value()?;
                }
                _ => return None,
            }
        }
        scan.end()?;
        r.model = model?;
        r.messages = messages?;
        Some(r)
    }

    /// A request with no field set, for [`ChatCompletionRequest::read_by_hand`] to fill in.
    fn blank() -> Self {
        ChatCompletionRequest {
            model: String::new(),
            messages: Vec::new(),
            temperature: None,
            top_p: None,
            max_tokens: None,
            max_completion_tokens: None,
            stop: None,
            seed: None,
            presence_penalty: None,
            frequency_penalty: None,
            response_format: None,
            stream: None,
            stream_options: None,
            n: None,
            tools: None,
            tool_choice: None,
            parallel_tool_calls: None,
            logprobs: None,
            top_logprobs: None,
            reasoning_effort: None,
            user: None,
            safety_identifier: None,
            metadata: None,
            prompt_cache_key: None,
            prompt_cache_retention: None,
            service_tier: None,
            store: None,
            functions: None,
            function_call: None,
            logit_bias: None,
            modalities: None,
            audio: None,
            prediction: None,
            verbosity: None,
            web_search_options: None,
            fallbacks: Vec::new(),
        }
    }
}

impl ChatMessage {
    /// A message: its role, its text or parts, and the fields around them.
    fn read_by_hand(scan: &mut Scan<'_>) -> Option<Self> {
        let mut object = scan.object()?;
        let mut seen = Seen::default();
        let mut role = None;
        let mut message = ChatMessage {
            role: String::new(),
            content: None,
            name: None,
            tool_calls: None,
            tool_call_id: None,
            refusal: None,
            annotations: None,
            audio: None,
            function_call: None,
        };
        while let Some(key) = scan.key(&mut object)? {
            match key {
                "role" => {
                    seen.first(0)?;
                    role = Some(scan.string()?);
                }
                "content" => {
                    seen.first(1)?;
                    message.content = scan.or_null(content)?;
                }
                "name" => {
                    seen.first(2)?;
                    message.name = scan.or_null(Scan::string)?;
                }
                "tool_call_id" => {
                    seen.first(3)?;
                    message.tool_call_id = scan.or_null(Scan::string)?;
                }
                "refusal" => {
                    seen.first(4)?;
                    message.refusal = scan.or_null(Scan::string)?;
                }
                "tool_calls" => {
                    seen.first(5)?;
                    message.tool_calls = scan.value()?;
                }
                "annotations" => {
                    seen.first(6)?;
                    message.annotations = scan.value()?;
                }
                "audio" => {
                    seen.first(7)?;
                    message.audio = scan.value()?;
                }
                "function_call" => {
                    seen.first(8)?;
                    message.function_call = scan.value()?;
                }
                _ => return None,
            }
        }
        message.role = role?;
        Some(message)
    }
}

/// A message's content: a string, or parts.
fn content(scan: &mut Scan<'_>) -> Option<Content> {
    if scan.rest().trim_start().starts_with('[') {
        return scan.list(part).map(Content::Parts);
    }
    scan.string().map(Content::Text)
}

/// One part of a message's content. Its type and its fields take unknown keys, which serde
/// passes over (checked as JSON); a field given twice is refused, as serde refuses it.
fn part(scan: &mut Scan<'_>) -> Option<ContentPart> {
    let mut object = scan.object()?;
    let mut seen = Seen::default();
    let mut kind = None;
    let mut part = ContentPart {
        kind: String::new(),
        text: None,
        refusal: None,
        image_url: None,
        input_audio: None,
    };
    while let Some(key) = scan.key(&mut object)? {
        match key {
            "type" => {
                seen.first(0)?;
                kind = Some(scan.string()?);
            }
            "text" => {
                seen.first(1)?;
                part.text = scan.or_null(Scan::string)?;
            }
            "refusal" => {
                seen.first(2)?;
                part.refusal = scan.or_null(Scan::string)?;
            }
            "image_url" => {
                seen.first(3)?;
                part.image_url = scan.or_null(image_url)?;
            }
            "input_audio" => {
                seen.first(4)?;
                part.input_audio = scan.or_null(input_audio)?;
            }
            _ => scan.skip()?,
        }
    }
    part.kind = kind?;
    Some(part)
}

/// `image_url`: `{"url": "...", "detail": "..."}`, read by hand (a `data:` URL can be
/// megabytes, read once).
fn image_url(scan: &mut Scan<'_>) -> Option<ImageUrl> {
    let mut object = scan.object()?;
    let mut seen = Seen::default();
    let (mut url, mut detail) = (None, None);
    while let Some(key) = scan.key(&mut object)? {
        match key {
            "url" => {
                seen.first(0)?;
                url = Some(scan.string()?);
            }
            "detail" => {
                seen.first(1)?;
                detail = scan.or_null(Scan::string)?;
            }
            _ => scan.skip()?,
        }
    }
    Some(ImageUrl { url: url?, detail })
}

/// `input_audio`: `{"data": "<base64>", "format": "wav"}`.
fn input_audio(scan: &mut Scan<'_>) -> Option<InputAudio> {
    let mut object = scan.object()?;
    let mut seen = Seen::default();
    let (mut data, mut format) = (None, None);
    while let Some(key) = scan.key(&mut object)? {
        match key {
            "data" => {
                seen.first(0)?;
                data = Some(scan.string()?);
            }
            "format" => {
                seen.first(1)?;
                format = Some(scan.string()?);
            }
            _ => scan.skip()?,
        }
    }
    Some(InputAudio {
        data: data?,
        format: format?,
    })
}

/// `stop`: a string or an array of strings.
fn stop(scan: &mut Scan<'_>) -> Option<Stop> {
    if scan.rest().trim_start().starts_with('[') {
        return scan.list(Scan::string).map(Stop::Many);
    }
    scan.string().map(Stop::One)
}

/// `stream_options`.
fn stream_options(scan: &mut Scan<'_>) -> Option<StreamOptions> {
    let mut object = scan.object()?;
    let mut seen = Seen::default();
    let mut options = StreamOptions::default();
    while let Some(key) = scan.key(&mut object)? {
        match key {
            "include_usage" => {
                seen.first(0)?;
                options.include_usage = scan.or_null(Scan::bool)?;
            }
            "include_obfuscation" => {
                seen.first(1)?;
                options.include_obfuscation = scan.or_null(Scan::bool)?;
            }
            _ => return None,
        }
    }
    Some(options)
}

#[cfg(test)]
mod tests {
    use llm_gateway::json::scan::{broken_variants, reads_as_serde_reads};

    use super::*;

    /// What each reader makes of `text`, compared by its `Debug` (every field, and every `f64`
    /// to the bit: `Debug` writes the shortest text that reads back as the same value).
    fn by_hand(text: &str) -> Option<String> {
        ChatCompletionRequest::read_by_hand(text).map(|r| format!("{r:?}"))
    }

    fn by_serde(text: &str) -> Option<String> {
        serde_json::from_str::<ChatCompletionRequest>(text)
            .ok()
            .map(|r| format!("{r:?}"))
    }

    /// Requests the hand reader reads (every field of the request is one it reads).
    const PLAIN: &[&str] = &[
        // The bench's, and its stream.
        r#"{"model":"hf/bench/chat","messages":[{"role":"user","content":"Summarise in one sentence why a gateway should add little latency."}],"max_tokens":64}"#,
        r#"{"model":"gemini/bench-chat","messages":[{"role":"user","content":"hi"}],"max_tokens":64,"stream":true,"stream_options":{"include_usage":true}}"#,
        // As the OpenAI SDKs and curl users write them: spaces, newlines, every plain field.
        "{\n  \"model\": \"gemini/gemini-2.5-flash\",\n  \"messages\": [\n    {\"role\": \"system\", \"content\": \"Be terse.\"},\n    {\"role\": \"user\", \"content\": \"Hello\", \"name\": \"ann\"}\n  ],\n  \"temperature\": 0.7,\n  \"top_p\": 1,\n  \"n\": 1\n}",
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b\n\"c\" \u00e9 \ud83d\ude00"}]}],"stop":["END","\n\n"],"seed":-7,"presence_penalty":-0.5,"frequency_penalty":1.25e-1}"#,
        r#"{"model":"m","messages":[{"role":"assistant","content":null,"refusal":"no"},{"role":"tool","content":"42","tool_call_id":"call_1"}],"stop":"END","max_completion_tokens":10,"max_tokens":null}"#,
        r#"{"messages":[{"content":"x","role":"user"}],"model":"m","user":"u-1","safety_identifier":null,"prompt_cache_key":"k","service_tier":"auto","store":false,"reasoning_effort":"low","logprobs":true,"top_logprobs":2,"parallel_tool_calls":false,"fallbacks":["hf/x","gemini/y"]}"#,
        r#"{"model":"m","messages":[],"temperature":0,"top_p":0.1000000000000000055511151231257827,"stream":false,"stream_options":{"include_obfuscation":false,"include_usage":null}}"#,
        r#"  {"model":"é","messages":[{"role":"user","content":""}],"temperature":1e0,"seed":9223372036854775807}  "#,
        // Tools, a tool round trip, a schema, tags: the fields with schemas of their own.
        r#"{"model":"m","messages":[{"role":"user","content":"weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"sunny"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"strict":true}}],"tool_choice":"auto","parallel_tool_calls":true}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x","annotations":[],"audio":null,"function_call":null}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"},"strict":true}},"metadata":{"team":"a","run":"7"},"tool_choice":{"type":"function","function":{"name":"f"}}}"#,
        // Image and audio parts (a key a part does not know is passed over, as serde does).
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this?","cache_control":{"type":"ephemeral"}},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo=","detail":"low"}},{"type":"input_audio","input_audio":{"data":"UklGRg==","format":"wav"}}]}]}"#,
        // Fields refused later by name are read, to be named.
        r#"{"model":"m","messages":[],"logit_bias":{"50256":-100},"functions":[{"name":"f"}],"function_call":"auto","modalities":["text"],"audio":null,"prediction":{"type":"content","content":"x"},"web_search_options":{},"verbosity":"low","prompt_cache_retention":"24h"}"#,
    ];

    /// Requests the hand reader leaves to serde whole: broken, or with a field given twice,
    /// unknown, or not of its type. None may be read otherwise than serde reads it.
    const OTHERS: &[&str] = &[
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"tools":{}}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"response_format":{"type":"nope"}}"#,
        r#"{"model":"m","messages":[{"role":"assistant","tool_calls":5}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","type":"text","text":"a"}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"text":"a"}]}]}"#,
        r#"{"model":"m","messages":[],"tools":[],"tools":[]}"#,
        r#"{"model":"m","messages":[],"logit_bias":{},"logit_bias":{}}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"unknown":1}"#,
        r#"{"model":"m","model":"n","messages":[{"role":"user","content":"x"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","role":"user","content":"x"}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":null,"max_tokens":1}"#,
        r#"{"model":"m","messages":[{"content":"x"}]}"#,
        r#"{"messages":[{"role":"user","content":"x"}]}"#,
        r#"{"model":null,"messages":[]}"#,
        r#"{"model":"m","messages":null}"#,
        r#"{"model":"m","messages":[],"fallbacks":null}"#,
        r#"{"model":"m","messages":[],"max_tokens":64.0}"#,
        r#"{"model":"m","messages":[],"max_tokens":-1}"#,
        r#"{"model":"m","messages":[],"max_tokens":4294967296}"#,
        r#"{"model":"m","messages":[],"seed":1.5}"#,
        r#"{"model":"m","messages":[],"seed":9223372036854775808}"#,
        r#"{"model":"m","messages":[],"temperature":"1"}"#,
        r#"{"model":"m","messages":[],"temperature":1e400}"#,
        r#"{"model":"m","messages":[],"temperature":01}"#,
        r#"{"model":"m","messages":[],"stop":[1]}"#,
        r#"{"model":"m","messages":[],"stream_options":{"include_usage":true,"x":1}}"#,
        r#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
        r#"{"mod\u0065l":"m","messages":[]}"#,
        r#"{"model":"m","messages":[]} {}"#,
        r#"{"model":"m","messages":[],}"#,
        "{\"model\":\"m\u{a0}\",\"messages\":[],\"temperature\":\u{a0}1}",
        "[]",
        "",
    ];

    #[test]
    fn a_request_read_by_hand_is_what_serde_reads() {
        let plain = reads_as_serde_reads(
            PLAIN.iter().copied().chain(OTHERS.iter().copied()),
            by_hand,
            by_serde,
            |text| PLAIN.contains(&text),
        );
        assert_eq!(plain, PLAIN.len());
        // What the hand reader leaves to serde, it leaves: none of these is read by hand.
        for text in OTHERS {
            assert_eq!(by_hand(text), None, "read by hand: {text}");
        }
    }

    /// Requests as a real client writes them: the `async-openai` SDK's own serialisation.
    #[test]
    fn the_sdks_requests_are_read_as_serde_reads_them() {
        use async_openai::types::chat::{
            ChatCompletionRequestAssistantMessageArgs, ChatCompletionRequestMessage,
            ChatCompletionRequestMessageContentPartImage,
            ChatCompletionRequestMessageContentPartText, ChatCompletionRequestSystemMessageArgs,
            ChatCompletionRequestUserMessageArgs, ChatCompletionRequestUserMessageContent,
            ChatCompletionRequestUserMessageContentPart, ChatCompletionStreamOptions,
            ChatCompletionTool, ChatCompletionToolChoiceOption, ChatCompletionTools,
            CreateChatCompletionRequestArgs, FunctionObject, ImageUrl, StopConfiguration,
            ToolChoiceOptions,
        };
        let system: ChatCompletionRequestMessage =
            ChatCompletionRequestSystemMessageArgs::default()
                .content("Be terse.")
                .build()
                .unwrap()
                .into();
        let user = |content: ChatCompletionRequestUserMessageContent| {
            ChatCompletionRequestMessage::from(
                ChatCompletionRequestUserMessageArgs::default()
                    .content(content)
                    .name("ann")
                    .build()
                    .unwrap(),
            )
        };
        let text = |t: &str| {
            ChatCompletionRequestUserMessageContentPart::Text(
                ChatCompletionRequestMessageContentPartText { text: t.into() },
            )
        };
        let assistant: ChatCompletionRequestMessage =
            ChatCompletionRequestAssistantMessageArgs::default()
                .content("Hello \"there\"\n")
                .build()
                .unwrap()
                .into();
        let plain = [
            CreateChatCompletionRequestArgs::default()
                .model("hf/meta-llama/Llama-3.1-8B-Instruct")
                .messages(vec![user("Hi".into())])
                .max_completion_tokens(64u32)
                .temperature(0.7)
                .build()
                .unwrap(),
            CreateChatCompletionRequestArgs::default()
                .model("gemini/gemini-2.5-flash")
                .messages(vec![system.clone(), user("Hi".into()), assistant.clone()])
                .stream(true)
                .stream_options(ChatCompletionStreamOptions {
                    include_usage: Some(true),
                    include_obfuscation: None,
                })
                .top_p(0.9)
                .seed(42)
                .stop(StopConfiguration::StringArray(vec!["END".into()]))
                .user("u-1")
                .build()
                .unwrap(),
            CreateChatCompletionRequestArgs::default()
                .model("gemini/gemini-2.5-flash")
                .messages(vec![user(vec![text("a"), text("é 😀")].into())])
                .n(1u8)
                .presence_penalty(0.5)
                .frequency_penalty(-0.25)
                .build()
                .unwrap(),
        ];
        let image = ChatCompletionRequestUserMessageContentPart::ImageUrl(
            ChatCompletionRequestMessageContentPartImage {
                image_url: ImageUrl {
                    url: "https://example.com/cat.png".into(),
                    detail: None,
                },
            },
        );
        let tool = ChatCompletionTools::Function(ChatCompletionTool {
            function: FunctionObject {
                name: "get_weather".into(),
                description: Some("The weather now in a city".into()),
                parameters: Some(serde_json::json!({
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"]
                })),
                strict: Some(true),
            },
        });
        let more = [
            CreateChatCompletionRequestArgs::default()
                .model("gemini/gemini-2.5-flash")
                .messages(vec![
                    system,
                    user(vec![text("what is this?"), image].into()),
                ])
                .build()
                .unwrap(),
            CreateChatCompletionRequestArgs::default()
                .model("hf/Qwen/Qwen3-8B")
                .messages(vec![user("Weather in Paris?".into()), assistant])
                .tools(vec![tool])
                .tool_choice(ChatCompletionToolChoiceOption::Mode(
                    ToolChoiceOptions::Auto,
                ))
                .parallel_tool_calls(false)
                .build()
                .unwrap(),
        ];
        let bodies: Vec<String> = plain
            .iter()
            .chain(&more)
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        let read =
            reads_as_serde_reads(bodies.iter().map(String::as_str), by_hand, by_serde, |_| {
                true
            });
        assert_eq!(read, bodies.len());
    }

    #[test]
    fn a_broken_request_is_left_to_serde_or_read_as_serde_reads_it() {
        for text in PLAIN[..5].iter().chain(&PLAIN[8..11]) {
            let variants = broken_variants(text);
            let read = reads_as_serde_reads(
                variants.iter().map(String::as_str),
                by_hand,
                by_serde,
                |_| false,
            );
            assert_eq!(read, 0);
            // Some edits leave a request serde reads (a digit for a digit, a space): those
            // the hand reader reads too, so the check above has met both kinds.
            let both = variants
                .iter()
                .filter(|v| by_hand(v).is_some() && by_serde(v).is_some())
                .count();
            assert!(both > 0, "no edit of {text} was read by both");
        }
    }
}
