//! The log of the real process: each request leaves one line, formatted by the log's own
//! thread, naming its id, method, path, caller, status and time (a failed one at `warn`, with
//! its error); a warning made on a request's way names the request's id; neither the query
//! string nor a key is ever written.

mod support;

use std::time::{Duration, Instant};

use gw_mock::MockUpstream;
use support::process::{spawn_gateway_logging_to, write_config};
use support::{gemini_ok, gemini_unavailable, request_id, story_body};

const KEY: &str = "sk-request-log-0123456789abcdef";

/// The log once it holds a line containing each of `wanted` (at most 10 s).
fn log_with(path: &std::path::Path, wanted: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        if wanted.iter().all(|w| log.contains(w)) || Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn each_request_leaves_one_line_and_its_warnings_name_it() {
    let dir = support::tempfile_dir::TempDir::new("request-log");
    // The first call is retried once: the retry's warning must name the request.
    let upstream = MockUpstream::start(vec![gemini_unavailable(), gemini_ok("hello")])
        .await
        .unwrap();
    let config = dir.path().join("gateway.toml");
    let url = write_config(
        &config,
        &format!(
            "[store]\nenabled = false\n\
             [[auth.keys]]\nname = \"alice\"\nkey = \"{KEY}\"\n\
             [retry]\nmax_retries = 1\ninitial_backoff_ms = 1\nmax_backoff_ms = 2\n\
             [providers.gemini]\nbase_url = \"{}\"\napi_key = \"provider-key\"\n",
            upstream.url()
        ),
    );
    let log_path = dir.path().join("gateway.log");
    let _gateway = spawn_gateway_logging_to(&config, &url, &log_path).await;

    let client = reqwest::Client::new();
    let served = client
        .post(format!("{url}/v1/chat/completions?probe=query-text"))
        .bearer_auth(KEY)
        .json(&story_body("gemini/gemini-2.5-flash", false))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200);
    let served_id = request_id(&served);
    served.bytes().await.unwrap();
    let refused = client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth("sk-not-a-key")
        .json(&story_body("gemini/gemini-2.5-flash", false))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let refused_id = request_id(&refused);

    let done = format!(
        " INFO gw_server::app: request done id={served_id} method=POST \
         path=/v1/chat/completions caller=\"alice\" status=200 elapsed_ms="
    );
    let failed = format!(
        " WARN gw_server::app: request failed id={refused_id} method=POST \
         path=/v1/chat/completions status=401 elapsed_ms="
    );
    let log = log_with(&log_path, &[&done, &failed]);
    let lines = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(lines(&done), 1, "one line for the served request:\n{log}");
    assert_eq!(lines(&served_id), 2, "its line and its retry's:\n{log}");
    let retry = log
        .lines()
        .find(|l| l.contains("retrying provider call"))
        .unwrap_or_else(|| panic!("no retry warning:\n{log}"));
    assert!(
        retry.contains(&format!("request_id={served_id}")),
        "{retry}"
    );
    let failed_line = log
        .lines()
        .find(|l| l.contains(&failed))
        .unwrap_or_else(|| panic!("one line for the refused request:\n{log}"));
    assert!(
        failed_line.ends_with("error_type=authentication_error error=\"invalid gateway key\""),
        "{failed_line}"
    );
    for secret in ["query-text", KEY, "sk-not-a-key", "provider-key"] {
        assert!(!log.contains(secret), "`{secret}` in the log:\n{log}");
    }
}
