//! Tool calling, `n`, log probabilities and `reasoning_effort` through the public API, against a
//! mock router (`gw_mock::MockUpstream`) that plays recorded answers.

mod common;

use common::{TOKEN, mock, step};

use futures_util::StreamExt;
use gateway_core::{
    Choice, ErrorKind, FinishReason, Message, ReasoningEffort, TextChunk, TextModel, TextRequest,
    TokenLogprob, TokenUsage, Tool, ToolCall, ToolChoice,
};
use gw_hf::{HfClient, PROVIDER};
use gw_mock::fixture::Respond;
use serde_json::{Value, json};

const MODEL: &str = "meta-llama/Llama-4-Scout-17B-16E-Instruct:together";

fn recorded(name: &str) -> Respond {
    Respond::recorded(env!("CARGO_MANIFEST_DIR"), name)
}

fn weather_tool() -> Tool {
    Tool::function(
        "get_weather",
        json!({"properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"}),
    )
    .description("Get weather for a city")
}

fn weather_tool_json() -> Value {
    json!({"type": "function", "function": {
        "name": "get_weather",
        "description": "Get weather for a city",
        "parameters": {"properties": {"city": {"type": "string"}}, "required": ["city"], "type": "object"}
    }})
}

#[tokio::test]
async fn tool_round_trip() {
    let question = "What's the weather in Paris?";
    let final_answer = json!({
        "id": "chatcmpl-2",
        "object": "chat.completion",
        "model": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "It is sunny in Paris, 24 °C."}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 660, "completion_tokens": 12, "total_tokens": 672}
    });
    let (mock, client) = mock(vec![
        step(
            Some(json!({
                "model": MODEL,
                "messages": [{"role": "user", "content": question}],
                "tools": [weather_tool_json()],
                "tool_choice": "required"
            })),
            recorded("text/tool_call_together.json"),
        ),
        step(
            Some(json!({
                "model": MODEL,
                "messages": [
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": null, "tool_calls": [{
                        "id": "call_fd883226aed04dee83ca77e0",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}
                    }]},
                    {"role": "tool", "tool_call_id": "call_fd883226aed04dee83ca77e0", "content": "{\"temp_c\": 24, \"sky\": \"sunny\"}"}
                ],
                "tools": [weather_tool_json()]
            })),
            Respond::json(final_answer),
        ),
    ])
    .await;

    let mut first = TextRequest::new(MODEL).user(question).tool(weather_tool());
    first.tool_choice = Some(ToolChoice::Required);
    let answer = client.generate(first).await.unwrap();
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(answer.content, "");
    assert_eq!(
        answer.tool_calls,
        vec![ToolCall::new(
            "call_fd883226aed04dee83ca77e0",
            "get_weather",
            "{\"city\": \"Paris\"}"
        )]
    );
    assert_eq!(answer.usage.input_tokens, 608);

    // The caller runs the tool and sends the call and its result back, as OpenAI shapes them.
    let call = &answer.tool_calls[0];
    let second = TextRequest::new(MODEL)
        .user(question)
        .message(Message::assistant_calls(
            answer.content.clone(),
            answer.tool_calls.clone(),
        ))
        .message(Message::tool_result(
            call.id.clone(),
            "{\"temp_c\": 24, \"sky\": \"sunny\"}",
        ))
        .tool(weather_tool());
    let answer = client.generate(second).await.unwrap();
    assert_eq!(answer.content, "It is sunny in Paris, 24 °C.");
    assert_eq!(answer.finish_reason, FinishReason::Stop);
    assert!(answer.tool_calls.is_empty());

    assert_eq!(mock.verify(), Vec::<String>::new());
    let sent = mock.received()[1].json().unwrap();
    assert!(sent["messages"][1]["content"].is_null(), "{sent}");
    assert!(sent.get("tool_choice").is_none(), "{sent}");
}

#[tokio::test]
async fn a_streamed_tool_call_assembled_from_fragments() {
    let (mock, client) = mock(vec![step(
        Some(json!({
            "stream": true,
            "stream_options": {"include_usage": true},
            "tools": [{"type": "function", "function": {"name": "get_capital"}}],
            "tool_choice": {"type": "function", "function": {"name": "get_capital"}}
        })),
        recorded("text/tool_stream_openai.json"),
    )])
    .await;
    let mut req = TextRequest::new(MODEL)
        .user("What is the capital of the UK? Use the tool, then answer.")
        .tool(Tool::function(
            "get_capital",
            json!({"type": "object", "properties": {"country": {"type": "string"}}}),
        ));
    req.tool_choice = Some(ToolChoice::Function("get_capital".into()));
    let items: Vec<TextChunk> = client
        .stream(req)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;

    let mut id = None;
    let mut name = None;
    let mut arguments = String::new();
    for item in &items {
        if let TextChunk::ToolCall {
            index,
            id: call_id,
            name: call_name,
            arguments: piece,
        } = item
        {
            assert_eq!(*index, 0);
            if call_id.is_some() {
                assert!(id.is_none(), "the id comes once: {items:?}");
                id.clone_from(call_id);
                name.clone_from(call_name);
            }
            arguments.push_str(piece);
        }
    }
    assert_eq!(id.as_deref(), Some("call_ZR5UUuTt3pf61kjwAJIYdVMj"));
    assert_eq!(name.as_deref(), Some("get_capital"));
    assert_eq!(arguments, "{\"country\":\"UK\"}");
    assert_eq!(
        &items[items.len() - 2..],
        [
            TextChunk::Finish(FinishReason::ToolCalls),
            TextChunk::Usage(TokenUsage {
                input_tokens: 53,
                output_tokens: 15,
                ..TokenUsage::default()
            }),
        ]
    );
    assert_eq!(mock.verify(), Vec::<String>::new());
}

#[tokio::test]
async fn two_answers_with_their_usage() {
    let (mock, client) = mock(vec![step(
        Some(json!({"model": MODEL, "n": 2, "temperature": 1.0})),
        Respond::json(json!({
            "id": "chatcmpl-n2",
            "object": "chat.completion",
            "model": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Rust."}, "finish_reason": "stop"},
                {"index": 1, "message": {"role": "assistant", "content": "Ferris the crab"}, "finish_reason": "length"}
            ],
            "usage": {"prompt_tokens": 14, "completion_tokens": 7, "total_tokens": 21}
        })),
    )])
    .await;
    let mut req = TextRequest::new(MODEL)
        .user("Name a language mascot.")
        .temperature(1.0);
    req.n = Some(2);
    let answer = client.generate(req).await.unwrap();
    assert_eq!(answer.content, "Rust.");
    assert_eq!(answer.finish_reason, FinishReason::Stop);
    assert_eq!(
        answer.alternatives,
        vec![Choice::new("Ferris the crab", FinishReason::Length)]
    );
    assert_eq!(
        answer.usage,
        TokenUsage {
            input_tokens: 14,
            output_tokens: 7,
            ..TokenUsage::default()
        }
    );
    assert_eq!(mock.verify(), Vec::<String>::new());
}

#[tokio::test]
async fn log_probabilities() {
    let (mock, client) = mock(vec![step(
        Some(json!({"model": MODEL, "logprobs": true, "top_logprobs": 2})),
        Respond::json(json!({
            "id": "chatcmpl-lp",
            "object": "chat.completion",
            "model": "meta-llama/Llama-4-Scout-17B-16E-Instruct",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Yes."},
                "logprobs": {"content": [
                    {"token": "Yes", "logprob": -0.0001, "top_logprobs": [
                        {"token": "Yes", "logprob": -0.0001}, {"token": "No", "logprob": -9.2}
                    ]},
                    {"token": ".", "logprob": -0.3, "top_logprobs": [
                        {"token": ".", "logprob": -0.3}, {"token": "!", "logprob": -1.4}
                    ]}
                ]},
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}
        })),
    )])
    .await;
    let mut req = TextRequest::new(MODEL).user("Is water wet? One word.");
    req.logprobs = true;
    req.top_logprobs = Some(2);
    let answer = client.generate(req).await.unwrap();
    let mut yes = TokenLogprob::new("Yes", -0.0001);
    yes.top = vec![("Yes".into(), -0.0001), ("No".into(), -9.2)];
    let mut dot = TokenLogprob::new(".", -0.3);
    dot.top = vec![(".".into(), -0.3), ("!".into(), -1.4)];
    assert_eq!(answer.logprobs, Some(vec![yes, dot]));
    assert_eq!(answer.content, "Yes.");
    assert_eq!(mock.verify(), Vec::<String>::new());
}

#[tokio::test]
async fn reasoning_effort_reaches_the_router() {
    let (mock, client) = mock(vec![step(
        Some(json!({"model": "openai/gpt-oss-120b:cerebras", "reasoning_effort": "low"})),
        Respond::json(json!({
            "model": "openai/gpt-oss-120b",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello, world!", "reasoning": "Say hello."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 12, "total_tokens": 32, "completion_tokens_details": {"reasoning_tokens": 5}}
        })),
    )])
    .await;
    let mut req = TextRequest::new("openai/gpt-oss-120b:cerebras").user("Say hello to the world.");
    req.reasoning_effort = Some(ReasoningEffort::Low);
    let answer = client.generate(req).await.unwrap();
    assert_eq!(answer.content, "Hello, world!");
    assert_eq!(answer.usage.reasoning_tokens, 5);
    assert_eq!(mock.verify(), Vec::<String>::new());
}

#[tokio::test]
async fn what_a_stream_cannot_carry_is_refused_before_any_io() {
    let (mock, client) = mock(Vec::new()).await;
    let mut two = TextRequest::new(MODEL).user("hi");
    two.n = Some(2);
    let mut logprobs = TextRequest::new(MODEL).user("hi");
    logprobs.logprobs = true;
    for (req, param) in [(two, "n"), (logprobs, "logprobs")] {
        let Err(err) = client.stream(req).await else {
            panic!("a stream cannot carry `{param}`");
        };
        assert_eq!(err.kind(), &ErrorKind::Unsupported);
        assert_eq!(err.param(), Some(param));
        assert_eq!(err.provider(), PROVIDER);
    }
    assert!(mock.received().is_empty());
}

#[test]
fn capabilities_announce_tools_n_logprobs_and_reasoning_effort() {
    let client = HfClient::builder().api_key(TOKEN).build().unwrap();
    let caps = client.capabilities();
    assert!(caps.tools && caps.logprobs && caps.reasoning_effort && caps.image_input);
    assert_eq!(caps.max_n, 128);
    assert!(!caps.audio_input);
    let mut too_many = TextRequest::new(MODEL).user("hi");
    too_many.n = Some(129);
    let err = caps.check(PROVIDER, &too_many).unwrap_err();
    assert_eq!(err.param(), Some("n"));
    let mut fine = TextRequest::new(MODEL).user("hi").tool(weather_tool());
    fine.n = Some(128);
    fine.logprobs = true;
    fine.reasoning_effort = Some(ReasoningEffort::High);
    assert!(caps.check(PROVIDER, &fine).is_ok());
}
