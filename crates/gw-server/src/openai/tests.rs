use serde_json::json;

use super::*;

fn parse(v: Value) -> ChatCompletionRequest {
    serde_json::from_value(v).unwrap()
}

#[test]
fn maps_every_supported_field() {
    let mut req = parse(json!({
        "model": "gemini/gemini-2.5-flash",
        "messages": [
            {"role": "developer", "content": "terse"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "c", "refusal": null, "annotations": []}
        ],
        "temperature": 0.2, "top_p": 0.9, "max_completion_tokens": 10, "max_tokens": 99,
        "stop": "END", "seed": 7, "presence_penalty": 0.1, "frequency_penalty": 0.3,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}, "strict": true}},
        "n": 3, "logprobs": true, "top_logprobs": 2, "reasoning_effort": "low",
        "user": "end-user-1", "metadata": {"team": "search"},
        "service_tier": "auto", "store": false, "prompt_cache_key": "k",
        "prompt_cache_retention": "24h",
        "stream_options": null
    }));
    let core = req.take_core().unwrap();
    assert_eq!(core.messages[0], Message::new(Role::System, "terse"));
    assert_eq!(core.messages[1].text(), "ab");
    assert_eq!(core.messages[2], Message::new(Role::Assistant, "c"));
    assert_eq!(core.max_tokens, Some(10));
    assert_eq!(core.stop, vec!["END"]);
    assert_eq!(core.n, Some(3));
    assert_eq!((core.logprobs, core.top_logprobs), (true, Some(2)));
    assert_eq!(core.reasoning_effort, Some(ReasoningEffort::Low));
    assert_eq!(
        core.response_format,
        Some(ResponseFormat::JsonSchema {
            name: "x".into(),
            schema: json!({"type": "object"}),
            strict: Some(true)
        })
    );
    let tags = req.tags().unwrap();
    assert_eq!(tags.end_user.as_deref(), Some("end-user-1"));
    assert_eq!(
        tags.metadata.get("team").map(String::as_str),
        Some("search")
    );
}

#[test]
fn a_tool_round_trip_maps_both_turns() {
    let weather = json!({
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"]
    });
    let req = parse(json!({
        "model": "m",
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "refusal": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather now", "parameters": weather, "strict": true}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": true
    }))
    .take_core()
    .unwrap();
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.tools[0].name, "get_weather");
    assert_eq!(req.tools[0].description.as_deref(), Some("Weather now"));
    assert_eq!(req.tools[0].parameters, Some(weather));
    assert_eq!(req.tools[0].strict, Some(true));
    assert_eq!(
        req.tool_choice,
        Some(ToolChoice::Function("get_weather".into()))
    );
    assert_eq!(req.parallel_tool_calls, Some(true));
    assert_eq!(
        req.messages[1],
        Message::assistant_calls(
            "",
            vec![
                ToolCall::new("call_1", "get_weather", "{\"city\":\"Paris\"}"),
                ToolCall::new("call_2", "get_weather", "{\"city\":\"Rome\"}"),
            ]
        )
    );
    assert_eq!(req.messages[2], Message::tool_result("call_1", "18C"));
    assert_eq!(req.messages[3], Message::tool_result("call_2", "21C"));
}

#[test]
fn image_and_audio_parts_become_core_parts() {
    let req = parse(json!({
        "model": "m",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K", "detail": "low"}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
        ]}]
    }))
    .take_core()
    .unwrap();
    assert_eq!(
        req.messages[0].content,
        vec![
            Part::text("What is this?"),
            Part::Image {
                url: "data:image/png;base64,iVBORw0K".into(),
                detail: Some("low".into())
            },
            Part::Audio {
                data: "UklGRg==".into(),
                format: "wav".into()
            },
        ]
    );
}

fn user(extra: Value) -> Value {
    let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    body
}

#[test]
fn refuses_what_it_cannot_honour_by_name() {
    let tool = json!([{"type": "function", "function": {"name": "f"}}]);
    for (body, param) in [
        (
            json!({"model": "m", "messages": [{"role": "function", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "file"}]}]}),
            "messages[0].content[0]",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
            "messages[0].content[0].image_url",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user"}]}),
            "messages[0].content",
        ),
        (
            json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x", "tool_call_id": "c"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x",
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}]}]}),
            "messages[0].tool_calls",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant",
                "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}]}),
            "messages[0].tool_calls[0].id",
        ),
        (
            json!({"model": "m", "messages": [{"role": "assistant",
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": 3}}]}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (json!({"model": "m", "messages": []}), "messages"),
        (
            json!({"model": " ", "messages": [{"role": "user", "content": "x"}]}),
            "model",
        ),
        (
            user(json!({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}})),
            "response_format.json_schema.schema",
        ),
        (user(json!({"temperature": 2.5})), "temperature"),
        (user(json!({"temperature": -0.1})), "temperature"),
        (user(json!({"top_p": 1.01})), "top_p"),
        (user(json!({"presence_penalty": -2.5})), "presence_penalty"),
        (user(json!({"frequency_penalty": 3})), "frequency_penalty"),
        (user(json!({"n": 0})), "n"),
        (user(json!({"n": 129})), "n"),
        (user(json!({"n": 2, "stream": true})), "n"),
        (user(json!({"top_logprobs": 2})), "top_logprobs"),
        (
            user(json!({"logprobs": true, "top_logprobs": 21})),
            "top_logprobs",
        ),
        (user(json!({"logprobs": true, "stream": true})), "logprobs"),
        (
            user(json!({"reasoning_effort": "extreme"})),
            "reasoning_effort",
        ),
        (
            user(json!({"tools": [{"type": "custom", "custom": {"name": "f"}}]})),
            "tools[0].type",
        ),
        (
            user(json!({"tools": [{"type": "function"}]})),
            "tools[0].function",
        ),
        (
            user(json!({"tools": [{"type": "function", "function": {"name": "get weather"}}]})),
            "tools[0].function.name",
        ),
        (
            user(
                json!({"tools": [{"type": "function", "function": {"name": "f"}},
                {"type": "function", "function": {"name": "f"}}]}),
            ),
            "tools[1].function.name",
        ),
        (
            user(
                json!({"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]}),
            ),
            "tools[0].function.parameters",
        ),
        (
            user(json!({"tools": tool, "tool_choice": "any"})),
            "tool_choice",
        ),
        (
            user(
                json!({"tools": tool, "tool_choice": {"type": "function", "function": {"name": "g"}}}),
            ),
            "tool_choice.function.name",
        ),
        (
            user(json!({"tools": tool, "tool_choice": {"type": "allowed_tools"}})),
            "tool_choice.type",
        ),
        (user(json!({"tool_choice": "required"})), "tool_choice"),
        (user(json!({"functions": [{"name": "f"}]})), "functions"),
        (user(json!({"function_call": "auto"})), "function_call"),
        (user(json!({"logit_bias": {"50256": -100}})), "logit_bias"),
        (user(json!({"modalities": ["text", "audio"]})), "modalities"),
        (
            user(json!({"audio": {"voice": "alloy", "format": "wav"}})),
            "audio",
        ),
        (
            user(json!({"prediction": {"type": "content", "content": "x"}})),
            "prediction",
        ),
        (user(json!({"verbosity": "low"})), "verbosity"),
        (
            user(json!({"web_search_options": {}})),
            "web_search_options",
        ),
        (user(json!({"service_tier": "flex"})), "service_tier"),
        (user(json!({"store": true})), "store"),
    ] {
        let err = parse(body.clone()).take_core().unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{body}: {}", err.message);
        assert_eq!(err.status.as_u16(), 400);
    }
}

#[test]
fn unknown_fields_are_refused_not_dropped() {
    for (body, field) in [
        (user(json!({"top_k": 3})), "top_k"),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": "x", "weight": 1}]}),
            "weight",
        ),
    ] {
        let err = serde_json::from_value::<ChatCompletionRequest>(body).unwrap_err();
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[test]
fn tags_keep_openai_bounds() {
    let long = "x".repeat(513);
    let many: Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    for (body, param) in [
        (user(json!({"metadata": {"team": 7}})), "metadata.team"),
        (user(json!({"metadata": {"team": long}})), "metadata.team"),
        (user(json!({"metadata": many})), "metadata"),
        (user(json!({"user": "u".repeat(257)})), "user"),
    ] {
        let err = parse(body).tags().unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param));
    }
    let tags = parse(user(json!({"safety_identifier": "hash-1"})))
        .tags()
        .unwrap();
    assert_eq!(tags.end_user.as_deref(), Some("hash-1"));
}

#[test]
fn answers_are_shaped_as_openai_returns_them() {
    let mut answer =
        llm_gateway::TextResponse::new("m", "", FinishReason::ToolCalls, TokenUsage::default());
    answer.tool_calls = vec![ToolCall::new(
        "call_1",
        "get_weather",
        "{\"city\":\"Paris\"}",
    )];
    let mut said = llm_gateway::Choice::new("Hi", FinishReason::Stop);
    let mut token = TokenLogprob::new("Hi", -0.1);
    token.top = vec![("Hi".into(), -0.1), ("Hey".into(), -2.5)];
    said.logprobs = Some(vec![token]);
    answer.alternatives = vec![said];
    let body = serde_json::to_value(Choice::all(&answer)).unwrap();
    assert_eq!(
        body,
        json!([
            {
                "index": 0,
                "message": {"role": "assistant", "content": null, "refusal": null, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                "logprobs": null,
                "finish_reason": "tool_calls"
            },
            {
                "index": 1,
                "message": {"role": "assistant", "content": "Hi", "refusal": null},
                "logprobs": {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
                    "top_logprobs": [
                        {"token": "Hi", "logprob": -0.1, "bytes": [72, 105]},
                        {"token": "Hey", "logprob": -2.5, "bytes": [72, 101, 121]}
                    ]}]},
                "finish_reason": "stop"
            }
        ])
    );
}

#[test]
fn an_answer_written_by_hand_is_the_bytes_serde_writes() {
    let mut plain = llm_gateway::TextResponse::new(
        "m",
        "Hi \"there\"\n\u{1F600} </tag>",
        FinishReason::Stop,
        TokenUsage::default(),
    );
    plain.usage.input_tokens = 12;
    plain.usage.output_tokens = 345;
    plain.usage.cached_input_tokens = 6;
    plain.usage.reasoning_tokens = 7;
    let mut called =
        llm_gateway::TextResponse::new("m", "", FinishReason::ToolCalls, TokenUsage::default());
    called.tool_calls = vec![ToolCall::new("call_1", "f", "{\"a\":1}")];
    let mut said = llm_gateway::Choice::new("Hi", FinishReason::Length);
    let mut token = TokenLogprob::new("Hi", -0.1);
    token.top = vec![("Hi".into(), -0.1)];
    said.logprobs = Some(vec![token]);
    called.alternatives = vec![said, llm_gateway::Choice::new("", FinishReason::Stop)];
    for answer in [&plain, &called] {
        for cost in [None, Some("0.000123".to_owned())] {
            let completion = ChatCompletion {
                id: "chatcmpl-gw-\"1\"",
                object: "chat.completion",
                created: 1_760_000_000,
                model: "hf/org/model:provider",
                choices: Choice::all(answer),
                usage: Usage::new(&answer.usage, cost),
            };
            let mut ours = Vec::new();
            completion.write_json(&mut ours).unwrap();
            let serde = serde_json::to_vec(&completion).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                String::from_utf8(serde).unwrap()
            );
        }
    }
}

#[test]
fn sampling_bounds_are_inclusive() {
    for extra in [
        json!({"temperature": 0, "top_p": 0, "presence_penalty": -2, "frequency_penalty": -2}),
        json!({"temperature": 2, "top_p": 1, "presence_penalty": 2, "frequency_penalty": 2.0}),
    ] {
        let core = parse(user(extra.clone())).take_core().unwrap();
        assert_eq!(core.temperature, extra["temperature"].as_f64(), "{extra}");
        assert_eq!(core.top_p, extra["top_p"].as_f64(), "{extra}");
    }
}

#[test]
fn content_and_stop_take_a_string_or_an_array_and_name_what_is_wrong() {
    let request = parse(json!({"model": "m", "stop": "END", "messages": [
        {"role": "user", "content": "plain"},
        {"role": "user", "content": [{"type": "text", "text": "in parts"}]},
        {"role": "user", "content": []},
    ]}));
    assert!(matches!(&request.stop, Some(Stop::One(s)) if s == "END"));
    assert!(matches!(&request.messages[0].content, Some(Content::Text(t)) if t == "plain"));
    assert!(
        matches!(&request.messages[1].content, Some(Content::Parts(p)) if p.len() == 1 && p[0].text.as_deref() == Some("in parts"))
    );
    assert!(matches!(&request.messages[2].content, Some(Content::Parts(p)) if p.is_empty()));
    let request = parse(json!({"model": "m", "stop": ["a", "b"], "messages": [
        {"role": "user", "content": null},
    ]}));
    assert!(matches!(&request.stop, Some(Stop::Many(v)) if v == &["a", "b"]));
    assert!(request.messages[0].content.is_none());

    // The error names the field, or the part within it, as the client's SDK would show it.
    for (body, param, says) in [
        (
            json!({"model": "m", "messages": [{"role": "user", "content": 42}]}),
            "messages[0].content",
            "expected a string or an array of content parts",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": {"type": "text"}}]}),
            "messages[0].content",
            "expected a string or an array of content parts",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "a"},
                {"type": "image_url", "image_url": {"detail": "low"}},
            ]}]}),
            "messages[0].content[1].image_url.url",
            "missing field `url`",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": [7]}]}),
            "messages[0].content[0]",
            "invalid type",
        ),
        (
            json!({"model": "m", "stop": 3, "messages": [{"role": "user", "content": "x"}]}),
            "stop",
            "expected a string or an array of strings",
        ),
        (
            json!({"model": "m", "stop": ["a", 1], "messages": [{"role": "user", "content": "x"}]}),
            "stop[1]",
            "invalid type",
        ),
    ] {
        let bytes = serde_json::to_vec(&body).unwrap();
        let Err(rejection) = axum::Json::<ChatCompletionRequest>::from_bytes(&bytes) else {
            panic!("{body} was taken");
        };
        let err = ApiError::from_json(rejection);
        assert_eq!(err.param.as_deref(), Some(param), "{body}: {}", err.message);
        assert!(err.message.contains(says), "{body}: {}", err.message);
    }
}
