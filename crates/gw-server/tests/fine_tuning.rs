//! Fine-tuning through the server: a zip uploaded, a LoRA trained on WaveSpeed, the gateway
//! killed while the run goes on, and the next process still ends the job with the LoRA in its
//! own storage and one charge; the fine-tuned model then serves its owner alone, through a link
//! the provider can fetch and no one else can forge.

mod support;

use std::time::{Duration, Instant};

use gw_mock::MockUpstream;
use gw_mock::fixture::Respond;
use gw_store::{Counter, FineTuningStatus};
use llm_gateway::Modality;
use serde_json::{Value, json};
use support::process::{free_port, spawn_gateway};
use support::wavespeed::{step, training_then_image};
use support::{open_store, training_zip as dataset, user};

/// Not real weights, but the bytes the gateway must keep unchanged.
const LORA: &[u8] = b"safetensors: p3r5on rank 16";

fn config(port: u16, db: &str, media: &str, wavespeed: &str, poll_ms: u64) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\
         [store]\nurl = \"{db}\"\nheartbeat_ms = 100\nstale_after_ms = 500\n\
         [jobs]\npoll_interval_ms = {poll_ms}\n\
         [media]\ndir = \"{media}\"\npublic_url = \"http://127.0.0.1:{port}\"\n\
         [providers.wavespeed]\nbase_url = \"{wavespeed}\"\napi_key = \"provider-key\"\n\
         downloads = {{ allow_private = true }}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_training_job_outlives_a_killed_gateway_and_ends_with_its_lora_and_one_charge() {
    let dir = support::tempfile_dir::TempDir::new("fine-tuning-killed");
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let media = dir.path().join("media");
    let store = open_store(&db).await;
    let (alice, key) = user(&store, "pro").await;
    let (_bob, bob_key) = user(&store, "pro").await;

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
        1,
        "https://cdn.example/p3r5on-bike.jpeg",
    ))
    .await
    .unwrap();

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let config_path = dir.path().join("gateway.toml");
    let media_dir = media.display().to_string();
    // The first process never polls on its own: the job is where its one GET left it.
    std::fs::write(&config_path, config(port, &db, &media_dir, api.url(), 0)).unwrap();
    let first = spawn_gateway(&config_path, &url).await;
    let http = reqwest::Client::new();
    let zip = dataset();
    let form = reqwest::multipart::Form::new()
        .text("purpose", "fine-tune")
        .part(
            "file",
            reqwest::multipart::Part::bytes(zip.clone())
                .file_name("photos.zip")
                .mime_str("application/zip")
                .unwrap(),
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
    assert_eq!(file["bytes"], zip.len(), "{file}");
    let file_id = file["id"].as_str().unwrap().to_owned();
    let created = http
        .post(format!("{url}/v1/fine_tuning/jobs"))
        .bearer_auth(&key)
        .json(
            &json!({"model": "wavespeed/flux-dev", "training_file": file_id, "suffix": "bike",
                      "provider_options": {"trigger_word": "p3r5on"}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["status"], "queued", "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ftjob-"), "{id}");

    let get = |key: &str, path: String| http.get(format!("{url}{path}")).bearer_auth(key).send();
    let seen: Value = get(&key, format!("/v1/fine_tuning/jobs/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["status"], "running");
    for path in [
        format!("/v1/fine_tuning/jobs/{id}"),
        format!("/v1/fine_tuning/jobs/{id}/events"),
        format!("/v1/files/{file_id}"),
    ] {
        let other = get(&bob_key, path.clone()).await.unwrap();
        assert_eq!(other.status(), 404, "another user's {path}");
    }

    drop(first); // SIGKILL while the run goes on at the provider
    assert_eq!(store.open_reservations().await.unwrap(), 1);

    // The next process polls on its own: it copies the LoRA and settles the job, and its
    // maintenance does not charge the job's reservation although its instance is dead.
    std::fs::write(&config_path, config(port, &db, &media_dir, api.url(), 100)).unwrap();
    let _second = spawn_gateway(&config_path, &url).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let job = loop {
        let job = store.fine_tuning_job_by_id(&id).await.unwrap().unwrap();
        if job.settled {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "the job was never resumed: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job.status, FineTuningStatus::Succeeded);
    let model = job.fine_tuned_model.clone().unwrap();
    assert_eq!(model, format!("ft:wavespeed/flux-dev:bike:{id}"));
    // Several heartbeats and recoveries pass: nothing more is charged.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    // The LoRA is in the gateway's own storage, listed as the job's result file.
    let stored = std::fs::read(media.join(format!("loras/{id}.safetensors"))).unwrap();
    assert_eq!(stored, LORA);
    let done: Value = get(&key, format!("/v1/fine_tuning/jobs/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["fine_tuned_model"], model);
    let result_file = done["result_files"][0].as_str().unwrap().to_owned();
    let content = get(&key, format!("/v1/files/{result_file}/content"))
        .await
        .unwrap();
    assert_eq!(content.status(), 200);
    assert_eq!(&content.bytes().await.unwrap()[..], LORA);

    let log = store.usage_log(Some(&alice.id), 10).await.unwrap();
    assert_eq!(log.len(), 1, "charged once: {log:?}");
    assert_eq!(
        (log[0].status.as_str(), log[0].modality, log[0].units),
        ("ok", Modality::Training, 1000)
    );
    assert!(!log[0].estimated);
    assert_eq!(log[0].cost, Some("1.25".parse().unwrap()), "the quote");
    let period = store.plans().require("pro").unwrap().current_period();
    let used = store.counters(&alice.id, &period).await.unwrap();
    assert_eq!(used.get(Counter::Requests(Modality::Training)), 1);
    assert_eq!(used.get(Counter::Volume(Modality::Training)), 1000);
    assert_eq!(store.open_reservations().await.unwrap(), 0);

    // The fine-tuned model is listed for its owner alone, and usable by its owner alone.
    let listed = |key: String| {
        let get = get(&key, "/v1/models".to_owned());
        let model = model.clone();
        async move {
            let models: Value = get.await.unwrap().json().await.unwrap();
            models["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["id"] == model.as_str())
        }
    };
    assert!(listed(key.clone()).await);
    assert!(!listed(bob_key.clone()).await);
    let generate = |key: &str| {
        http.post(format!("{url}/v1/images/generations"))
            .bearer_auth(key)
            .json(&json!({"model": model, "prompt": "p3r5on riding a bike"}))
            .send()
    };
    let stolen = generate(&bob_key).await.unwrap();
    assert_eq!(stolen.status(), 404);
    let image = generate(&key).await.unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["x-gateway-cost-usd"], "0.015");
    let image: Value = image.json().await.unwrap();
    assert_eq!(
        image["data"][0]["url"],
        "https://cdn.example/p3r5on-bike.jpeg"
    );

    // The provider was handed a signed link to the stored LoRA, on the gateway's public address.
    let submit = api
        .received()
        .into_iter()
        .find(|r| r.path == "/api/v3/wavespeed-ai/flux-dev-lora")
        .unwrap()
        .json()
        .unwrap();
    let path = submit["loras"][0]["path"].as_str().unwrap().to_owned();
    assert_eq!(submit["loras"][0]["scale"], 1.0);
    assert!(
        path.starts_with(&format!("{url}/media/loras/{id}.safetensors?")),
        "{path}"
    );
    // Fetched without a gateway key, as the provider does; a forged one is refused.
    let fetched = http.get(&path).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(&fetched.bytes().await.unwrap()[..], LORA);
    let forged = path.replace("signature=", "signature=0");
    assert_eq!(http.get(&forged).send().await.unwrap().status(), 404);
    let other = path.replace(&id, "ftjob-other");
    assert_eq!(http.get(&other).send().await.unwrap().status(), 404);

    assert!(api.verify().is_empty(), "{:?}", api.verify());
    assert!(cdn.verify().is_empty(), "{:?}", cdn.verify());
}

/// Uploads are held to `[media] max_file_bytes`, not to the body limit of chat requests, and a
/// file that is not a zip of images is refused by name before anything is stored.
#[tokio::test]
async fn uploads_are_checked_and_held_to_the_media_limit() {
    let dir = support::tempfile_dir::TempDir::new("fine-tuning-uploads");
    let db = format!("sqlite://{}", dir.path().join("gateway.db").display());
    let media = dir.path().join("media");
    let store = open_store(&db).await;
    let (_alice, key) = user(&store, "pro").await;
    let zip = dataset();
    let config = gw_server::Config::from_toml(
        &format!(
            "[server]\nmax_body_bytes = 256\n[media]\ndir = \"{}\"\nmax_file_bytes = {}\n",
            media.display(),
            zip.len() + 10
        ),
        "test config",
        std::iter::empty(),
    )
    .unwrap();
    let server = support::start(&config, Some(store)).await;
    let upload = |name: &str, data: Vec<u8>| {
        let form = reqwest::multipart::Form::new()
            .text("purpose", "fine-tune")
            .part(
                "file",
                reqwest::multipart::Part::bytes(data).file_name(name.to_owned()),
            );
        reqwest::Client::new()
            .post(format!("{}/v1/files", server.url))
            .bearer_auth(&key)
            .multipart(form)
            .send()
    };
    // Larger than the body limit, within the media limit.
    let ok = upload("photos.zip", zip.clone()).await.unwrap();
    assert_eq!(ok.status(), 200);
    let ok: Value = ok.json().await.unwrap();
    assert_eq!(ok["bytes"], zip.len());

    let mut big = zip.clone();
    big.extend_from_slice(&[0; 64]);
    let too_big = upload("photos.zip", big).await.unwrap();
    assert_eq!(too_big.status(), 413);
    let pdf = upload("photos.pdf", b"%PDF-1.7 not a zip".to_vec())
        .await
        .unwrap();
    assert_eq!(pdf.status(), 400);
    let pdf: Value = pdf.json().await.unwrap();
    assert_eq!(pdf["error"]["param"], "file");
    assert!(
        pdf["error"]["message"]
            .as_str()
            .unwrap()
            .contains("photos.pdf"),
        "{pdf}"
    );
    // Only the accepted upload is stored.
    let stored = std::fs::read_dir(media.join("files")).unwrap().count();
    assert_eq!(stored, 1);
}
