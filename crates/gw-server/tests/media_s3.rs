//! The media storage on an S3-compatible bucket (`[media] bucket`): a training upload stored in
//! the bucket and read back, a trained LoRA copied into it, the provider handed a pre-signed URL
//! that fetches it, and a deleted file gone from the bucket. The bucket is moto's S3 server
//! (`pip install "moto[server]"`), which answers S3's REST API and checks pre-signed URLs' form.
//!
//! Without `moto_server` the test says so and skips, unless `GATEWAY_REQUIRE_S3_MOCK=1` (set by
//! `.ci/run` after installing it), which makes its absence a failure.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gw_mock::MockUpstream;
use gw_mock::fixture::Respond;
use serde_json::{Value, json};
use support::process::{free_port, spawn_gateway_with_env, write_config};
use support::wavespeed::{step, training_then_image};
use support::{open_store, training_zip, user};

const LORA: &[u8] = b"safetensors: p3r5on in a bucket";

/// moto's S3 server, killed when dropped.
struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The keys of the bucket's objects, from S3's ListObjectsV2 XML.
async fn keys(s3: &str) -> Vec<String> {
    let xml = reqwest::get(format!("{s3}/loras?list-type=2"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    xml.split("<Key>")
        .skip(1)
        .filter_map(|s| s.split("</Key>").next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_files_and_loras_live_in_the_bucket_and_the_provider_gets_a_presigned_url() {
    let s3_port = free_port();
    let moto = Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &s3_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(moto) = moto else {
        assert!(
            std::env::var("GATEWAY_REQUIRE_S3_MOCK").as_deref() != Ok("1"),
            "GATEWAY_REQUIRE_S3_MOCK=1 but moto_server does not run"
        );
        eprintln!("skipped: moto_server is not installed (pip install \"moto[server]\")");
        return;
    };
    let _moto = Moto(moto);
    let s3 = format!("http://127.0.0.1:{s3_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let http = reqwest::Client::new();
    // The bucket, made as an operator makes it (moto takes unsigned requests).
    loop {
        match http.put(format!("{s3}/loras")).send().await {
            Ok(r) if r.status().is_success() => break,
            _ => {
                assert!(Instant::now() < deadline, "moto_server did not start");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    let dir = support::tempfile_dir::TempDir::new("media-s3");
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let store = open_store(&db).await;
    let (_alice, key) = user(&store, "pro").await;
    let cdn = MockUpstream::start(vec![step(
        "GET",
        "/outputs/p3r5on.safetensors",
        Respond {
            base64: Some(llm_gateway::encode_base64(LORA)),
            ..Respond::default()
        },
    )])
    .await
    .unwrap();
    let weights = format!("{}/outputs/p3r5on.safetensors", cdn.url());
    let api = MockUpstream::start(training_then_image(
        &weights,
        0,
        "https://cdn.example/p3r5on.jpeg",
    ))
    .await
    .unwrap();

    let config = dir.path().join("gateway.toml");
    let url = write_config(
        &config,
        &format!(
            "[store]\nurl = \"{db}\"\n\
             [jobs]\npoll_interval_ms = 0\n\
             [media]\nbucket = \"loras\"\nendpoint = \"{s3}\"\nallow_http = true\nregion = \"us-east-1\"\n\
             [providers.wavespeed]\nbase_url = \"{}\"\napi_key = \"provider-key\"\n\
             downloads = {{ allow_private = true }}\n",
            api.url()
        ),
    );
    let _gateway = spawn_gateway_with_env(
        &config,
        &url,
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    )
    .await;

    let zip = training_zip();
    let form = reqwest::multipart::Form::new()
        .text("purpose", "fine-tune")
        .part(
            "file",
            reqwest::multipart::Part::bytes(zip.clone()).file_name("photos.zip"),
        );
    let file: Value = http
        .post(format!("{url}/v1/files"))
        .bearer_auth(&key)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let file_id = file["id"].as_str().unwrap().to_owned();
    let stored = keys(&s3).await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].starts_with("files/upload-"), "{stored:?}");
    let content = http
        .get(format!("{url}/v1/files/{file_id}/content"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(&content.bytes().await.unwrap()[..], &zip[..]);

    let job: Value = http
        .post(format!("{url}/v1/fine_tuning/jobs"))
        .bearer_auth(&key)
        .json(&json!({"model": "wavespeed/flux-dev", "training_file": file_id}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    let done: Value = http
        .get(format!("{url}/v1/fine_tuning/jobs/{id}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(keys(&s3).await.contains(&format!("loras/{id}.safetensors")));

    let image = http
        .post(format!("{url}/v1/images/generations"))
        .bearer_auth(&key)
        .json(&json!({"model": done["fine_tuned_model"], "prompt": "p3r5on at the sea"}))
        .send()
        .await
        .unwrap();
    assert_eq!(image.status(), 200);
    let submit = api
        .received()
        .into_iter()
        .find(|r| r.path == "/api/v3/wavespeed-ai/flux-dev-lora")
        .unwrap()
        .json()
        .unwrap();
    let link = submit["loras"][0]["path"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with(&format!("{s3}/loras/loras/{id}.safetensors?")),
        "{link}"
    );
    assert!(link.contains("X-Amz-Signature="), "{link}");
    // What the provider does with it: a plain GET, no credentials.
    let fetched = reqwest::get(&link).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(&fetched.bytes().await.unwrap()[..], LORA);

    // Deleting the training file deletes its bytes; the LoRA stays for its model.
    let deleted = http
        .delete(format!("{url}/v1/files/{file_id}"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(keys(&s3).await, [format!("loras/{id}.safetensors")]);
    assert!(api.verify().is_empty(), "{:?}", api.verify());
    assert!(cdn.verify().is_empty(), "{:?}", cdn.verify());
}
