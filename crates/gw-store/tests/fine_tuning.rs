//! Files and fine-tuning jobs in the store: owned by their user, listed with OpenAI's cursors,
//! polled by one replica at a time, settled exactly once even when the instance that submitted
//! them died, with their events. Every test runs on SQLite and, with
//! `GATEWAY_TEST_POSTGRES_URL`, on PostgreSQL (see `common`).

mod common;

use std::time::Duration;

use common::*;
use gateway_core::{Accounting, Admission, ErrorKind, Modality, Outcome, UsageRecord};
use gw_store::{
    Counter, EventLevel, FineTuningEnd, FineTuningEvent, FineTuningStatus, JobError, NewFile,
    NewFineTuningJob, RECOVERED, Store, StoredFile,
};
use serde_json::{Map, Value, json};

async fn user(store: &Store, plan: &str) -> String {
    store.create_user(&unique("user"), plan).await.unwrap().id
}

fn zip(user: &str) -> NewFile {
    NewFile {
        user_id: user.to_owned(),
        purpose: "fine-tune".into(),
        filename: "faces.zip".into(),
        bytes: 1_234_567,
        content_type: "application/zip".into(),
        storage_key: Some(format!("files/{}", unique("zip"))),
        url: None,
    }
}

async fn training_file(store: &Store, user: &str) -> StoredFile {
    store.create_file(zip(user)).await.unwrap()
}

/// A training admission of `steps` steps.
fn training(user: &str, steps: u64) -> Admission {
    Admission {
        operation: "fine_tuning.jobs.create",
        estimate: gateway_core::Amount::new(0, steps, Some(cost("2.00"))),
        ..media(user, "wavespeed", "flux-dev", Modality::Training, steps)
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn new_job(
    admission: &Admission,
    file: &StoredFile,
    reservation_id: Option<String>,
) -> NewFineTuningJob {
    NewFineTuningJob {
        user_id: admission.user_id.clone(),
        request_id: admission.request_id.clone(),
        route: admission.route.clone(),
        provider_job_id: unique("task"),
        training_file: file.id.clone(),
        suffix: Some("my-face".into()),
        trigger_word: Some("p3r5on".into()),
        hyperparameters: object(json!({"steps": admission.estimate.units, "lora_rank": 16})),
        metadata: Some(object(json!({"team": "x"}))),
        steps: Some(admission.estimate.units),
        reservation_id,
        estimate: admission.estimate.cost,
        retries: 0,
    }
}

/// The record of a finished run of `steps` steps costing `price`.
fn finished(admission: &Admission, steps: u64, price: &str) -> UsageRecord {
    UsageRecord {
        units: steps,
        cost: Some(cost(price)),
        ..record(admission, 0, 0, Some(price))
    }
}

fn succeeded(job_id: &str, result_file: &str) -> FineTuningEnd {
    FineTuningEnd {
        status: FineTuningStatus::Succeeded,
        weights_key: Some(format!("loras/{job_id}.safetensors")),
        result_file: Some(result_file.to_owned()),
        fine_tuned_model: Some(format!("ft:wavespeed/flux-dev:org:my-face:{job_id}")),
        error: None,
        cost: Some(cost("1.50")),
        steps: Some(900),
    }
}

/// The LoRA file a finished job stores.
async fn lora_file(store: &Store, user: &str) -> StoredFile {
    store
        .create_file(NewFile {
            purpose: "fine-tune-results".into(),
            filename: "lora.safetensors".into(),
            content_type: "application/octet-stream".into(),
            ..zip(user)
        })
        .await
        .unwrap()
}

fn messages(events: &[FineTuningEvent]) -> Vec<&str> {
    events.iter().map(|e| e.message.as_str()).collect()
}

#[tokio::test]
async fn files_are_their_owners_alone_and_deleted_ones_are_gone() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let alice = user(&store, "pro").await;
        let bob = user(&store, "pro").await;

        let stored = training_file(&store, &alice).await;
        assert!(stored.id.starts_with("file-"), "{}", stored.id);
        assert_eq!(stored.id.len(), "file-".len() + 24);
        assert_eq!(
            (
                stored.filename.as_str(),
                stored.bytes,
                stored.purpose.as_str()
            ),
            ("faces.zip", 1_234_567, "fine-tune")
        );
        assert_eq!(
            store.file(&stored.id, &alice).await.unwrap().as_ref(),
            Some(&stored)
        );
        assert_eq!(store.file(&stored.id, &bob).await.unwrap(), None);
        assert_eq!(store.file("file-nope", &alice).await.unwrap(), None);
        assert_eq!(
            store.file_by_id(&stored.id).await.unwrap().as_ref(),
            Some(&stored)
        );

        // A client-hosted file has a URL and no bytes of its own.
        tokio::time::sleep(Duration::from_millis(3)).await;
        let hosted = store
            .create_file(NewFile {
                storage_key: None,
                url: Some("https://example.com/faces.zip".into()),
                ..zip(&alice)
            })
            .await
            .unwrap();
        assert_eq!(hosted.storage_key, None);
        tokio::time::sleep(Duration::from_millis(3)).await;
        let lora = lora_file(&store, &alice).await;
        let _bobs = training_file(&store, &bob).await;

        // Exactly one of storage_key and url.
        for (storage_key, url) in [
            (None, None),
            (
                Some("k".to_owned()),
                Some("https://example.com/z".to_owned()),
            ),
        ] {
            let err = store
                .create_file(NewFile {
                    storage_key,
                    url,
                    ..zip(&alice)
                })
                .await
                .unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
            assert!(err.message().contains("storage_key, url"), "{err}");
        }

        let ids = |files: Vec<StoredFile>| files.into_iter().map(|f| f.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.files(&alice, None, 10).await.unwrap()),
            [lora.id.as_str(), hosted.id.as_str(), stored.id.as_str()],
            "newest first, alice's only"
        );
        assert_eq!(
            ids(store.files(&alice, Some("fine-tune"), 10).await.unwrap()),
            [hosted.id.as_str(), stored.id.as_str()]
        );
        assert_eq!(
            ids(store.files(&alice, None, 1).await.unwrap()),
            [lora.id.as_str()]
        );

        // Deleting: not by another user; once; the caller gets the storage key back.
        assert_eq!(store.delete_file(&stored.id, &bob).await.unwrap(), None);
        let deleted = store.delete_file(&stored.id, &alice).await.unwrap();
        assert_eq!(deleted.as_ref(), Some(&stored));
        assert_eq!(
            deleted.unwrap().storage_key,
            stored.storage_key,
            "the bytes to delete"
        );
        assert_eq!(store.delete_file(&stored.id, &alice).await.unwrap(), None);
        assert_eq!(store.file(&stored.id, &alice).await.unwrap(), None);
        assert_eq!(store.file_by_id(&stored.id).await.unwrap(), None);
        assert_eq!(
            ids(store.files(&alice, None, 10).await.unwrap()),
            [lora.id.as_str(), hosted.id.as_str()]
        );
    })
    .await;
}

#[tokio::test]
async fn a_job_is_its_owners_alone() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let alice = user(&store, "pro").await;
        let bob = user(&store, "pro").await;
        let file = training_file(&store, &alice).await;
        let a = training(&alice, 1000);
        let job = store
            .create_fine_tuning_job(new_job(&a, &file, None))
            .await
            .unwrap();
        assert!(job.id.starts_with("ftjob-"), "{}", job.id);
        assert_eq!(job.id.len(), "ftjob-".len() + 24);
        assert_eq!(job.status, FineTuningStatus::Queued);
        assert_eq!(job.route_name(), "wavespeed/flux-dev");
        assert_eq!(
            (
                job.training_file.as_str(),
                job.suffix.as_deref(),
                job.trigger_word.as_deref(),
                job.steps,
                job.settled
            ),
            (
                file.id.as_str(),
                Some("my-face"),
                Some("p3r5on"),
                Some(1000),
                false
            )
        );
        assert_eq!(
            Value::Object(job.hyperparameters.clone()),
            json!({"steps": 1000, "lora_rank": 16})
        );
        assert_eq!(job.metadata, Some(object(json!({"team": "x"}))));

        let seen = store
            .fine_tuning_job(&job.id, &alice)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen, job);
        assert_eq!(store.fine_tuning_job(&job.id, &bob).await.unwrap(), None);
        assert_eq!(
            store.fine_tuning_job("ftjob-nope", &alice).await.unwrap(),
            None
        );
        assert_eq!(
            store.fine_tuning_job_by_id(&job.id).await.unwrap(),
            Some(job.clone())
        );
        let (bobs, more) = store.fine_tuning_jobs(&bob, None, 10).await.unwrap();
        assert!(bobs.is_empty() && !more);

        // A job must train on a stored file.
        let err = store
            .create_fine_tuning_job(NewFineTuningJob {
                training_file: "file-nope".into(),
                ..new_job(&a, &file, None)
            })
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Unavailable);
        let (jobs, _) = store.fine_tuning_jobs(&alice, None, 10).await.unwrap();
        assert_eq!(jobs.len(), 1, "nothing of the refused job was kept");
    })
    .await;
}

#[tokio::test]
async fn jobs_are_listed_newest_first_with_openai_cursors() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let alice = user(&store, "pro").await;
        let bob = user(&store, "pro").await;
        let file = training_file(&store, &alice).await;
        let mut created = Vec::new();
        for _ in 0..5 {
            let job = store
                .create_fine_tuning_job(new_job(&training(&alice, 500), &file, None))
                .await
                .unwrap();
            created.push(job.id);
            // Distinct milliseconds, so newest first is the reverse of creation.
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let bob_file = training_file(&store, &bob).await;
        let bobs = store
            .create_fine_tuning_job(new_job(&training(&bob, 500), &bob_file, None))
            .await
            .unwrap();
        created.reverse();

        let mut listed = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = Vec::new();
        loop {
            let (page, more) = store
                .fine_tuning_jobs(&alice, after.as_deref(), 2)
                .await
                .unwrap();
            pages.push((page.len(), more));
            after = page.last().map(|j| j.id.clone());
            listed.extend(page.into_iter().map(|j| j.id));
            if !more {
                break;
            }
        }
        assert_eq!(pages, [(2, true), (2, true), (1, false)]);
        assert_eq!(listed, created);

        // A page that ends exactly at the last job says there is no more.
        let (page, more) = store
            .fine_tuning_jobs(&alice, Some(&created[1]), 3)
            .await
            .unwrap();
        assert_eq!(page.len(), 3);
        assert!(!more);
        let (page, more) = store
            .fine_tuning_jobs(&alice, Some(&created[4]), 3)
            .await
            .unwrap();
        assert!(page.is_empty() && !more);

        // Another user's job is no cursor.
        for cursor in [bobs.id.as_str(), "ftjob-nope"] {
            let err = store
                .fine_tuning_jobs(&alice, Some(cursor), 2)
                .await
                .unwrap_err();
            assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
            assert!(err.message().starts_with("after:"), "{err}");
        }
    })
    .await;
}

#[tokio::test]
async fn one_poller_holds_a_job_at_a_time() {
    on_each_backend(|db| async move {
        let one = db.store().await;
        let two = db.store().await;
        let alice = user(&one, "pro").await;
        let file = training_file(&one, &alice).await;
        let job = one
            .create_fine_tuning_job(new_job(&training(&alice, 500), &file, None))
            .await
            .unwrap();
        async fn due(store: &Store, id: &str) -> bool {
            store
                .fine_tuning_jobs_due(100)
                .await
                .unwrap()
                .into_iter()
                .any(|j| j.id == id)
        }
        assert!(due(&two, &job.id).await);

        let lease = Duration::from_secs(60);
        assert!(one.claim_fine_tuning_job(&job.id, lease).await.unwrap());
        assert!(!two.claim_fine_tuning_job(&job.id, lease).await.unwrap());
        assert!(!due(&two, &job.id).await, "a leased job is not due");
        // The holder extends its own lease.
        assert!(one.claim_fine_tuning_job(&job.id, lease).await.unwrap());
        // Only the holder can release it.
        two.release_fine_tuning_job(&job.id).await.unwrap();
        assert!(!two.claim_fine_tuning_job(&job.id, lease).await.unwrap());
        one.release_fine_tuning_job(&job.id).await.unwrap();
        assert!(two.claim_fine_tuning_job(&job.id, lease).await.unwrap());

        // A lease that ran out (its holder died) is taken over.
        two.release_fine_tuning_job(&job.id).await.unwrap();
        assert!(
            two.claim_fine_tuning_job(&job.id, Duration::from_millis(1))
                .await
                .unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(due(&one, &job.id).await);
        assert!(one.claim_fine_tuning_job(&job.id, lease).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn a_job_is_settled_once_whichever_replica_sees_its_end() {
    on_each_backend(|db| async move {
        let one = db.store().await;
        let two = db.store().await;
        let alice = user(&one, "pro").await;
        let file = training_file(&one, &alice).await;
        let a = training(&alice, 1000);
        let reservation = one.admit(a.clone()).await.unwrap();
        let period = period_of(&reservation);
        let job = one
            .create_fine_tuning_job(new_job(&a, &file, Some(reservation.id.clone())))
            .await
            .unwrap();
        let reserved = one.counters(&alice, &period).await.unwrap();
        assert_eq!(reserved.get(Counter::TrainingUnits), 1000);
        assert_eq!(reserved.get(Counter::TrainingRequests), 1);
        assert_eq!(reserved.cost(), cost("2.00"));

        // The run succeeded; its weights are recorded before they are copied.
        let weights = "https://d1q70pf5vjeyhc.cloudfront.net/predictions/x/lora.safetensors";
        assert!(one.set_fine_tuning_weights(&job.id, weights).await.unwrap());
        let lora = lora_file(&one, &alice).await;
        let end = succeeded(&job.id, &lora.id);
        let (first, second) = tokio::join!(
            one.finish_fine_tuning_job(&job.id, &end, Some(finished(&a, 900, "1.50"))),
            two.finish_fine_tuning_job(&job.id, &end, Some(finished(&a, 900, "1.50"))),
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert!(first ^ second, "exactly one settles: {first} {second}");
        assert!(
            !one.finish_fine_tuning_job(&job.id, &end, Some(finished(&a, 900, "1.50")))
                .await
                .unwrap()
        );

        // The counters moved from reserved to used, once.
        let used = one.counters(&alice, &period).await.unwrap();
        assert_eq!(used.get(Counter::TrainingUnits), 900);
        assert_eq!(used.get(Counter::TrainingRequests), 1);
        assert_eq!(used.cost(), cost("1.50"));
        let log = one.usage_log(Some(&alice), 10).await.unwrap();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!(
            (log[0].status.as_str(), log[0].units, log[0].modality),
            ("ok", 900, Modality::Training)
        );
        assert_eq!(one.open_reservations().await.unwrap(), 0);

        let done = one.fine_tuning_job(&job.id, &alice).await.unwrap().unwrap();
        assert_eq!(done.status, FineTuningStatus::Succeeded);
        assert_eq!(done.weights_url.as_deref(), Some(weights));
        assert_eq!(done.weights_key, end.weights_key);
        assert_eq!(done.result_file.as_deref(), Some(lora.id.as_str()));
        assert_eq!(done.fine_tuned_model, end.fine_tuned_model);
        assert_eq!(
            (done.cost, done.steps, done.error.as_ref()),
            (Some(cost("1.50")), Some(900), None)
        );
        assert!(done.settled && done.finished_at.is_some());

        // The end is written once, with its events.
        let (events, more) = one
            .fine_tuning_events(&job.id, &alice, None, 10)
            .await
            .unwrap()
            .unwrap();
        assert!(!more);
        assert_eq!(
            messages(&events),
            [
                "The job has successfully completed",
                &*format!(
                    "New fine-tuned model created: {}",
                    end.fine_tuned_model.as_deref().unwrap()
                ),
                "Fine-tuning job created",
            ]
        );

        // An ended job takes no more changes.
        assert!(
            !one.claim_fine_tuning_job(&job.id, Duration::from_secs(1))
                .await
                .unwrap()
        );
        assert!(
            !one.update_fine_tuning_job(&job.id, FineTuningStatus::Running, Some("late"))
                .await
                .unwrap()
        );
        assert!(
            !one.set_fine_tuning_weights(&job.id, "https://late")
                .await
                .unwrap()
        );
        assert!(
            !one.fine_tuning_jobs_due(100)
                .await
                .unwrap()
                .iter()
                .any(|j| j.id == job.id)
        );
        let (events, _) = one
            .fine_tuning_events(&job.id, &alice, None, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(events.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn a_failed_job_releases_what_it_reserved() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let alice = user(&store, "basic").await;
        let file = training_file(&store, &alice).await;
        let a = training(&alice, 1000);
        let reservation = store.admit(a.clone()).await.unwrap();
        let period = period_of(&reservation);
        let job = store
            .create_fine_tuning_job(new_job(&a, &file, Some(reservation.id)))
            .await
            .unwrap();
        let end = FineTuningEnd {
            status: FineTuningStatus::Failed,
            weights_key: None,
            result_file: None,
            fine_tuned_model: None,
            error: Some(JobError {
                code: "invalid_request".into(),
                message: "the zip holds no images".into(),
            }),
            cost: None,
            steps: None,
        };
        let failed_record = UsageRecord {
            outcome: Outcome::Failed {
                kind: "invalid_request".into(),
                message: "the zip holds no images".into(),
            },
            ..failed(&a)
        };
        assert!(
            store
                .finish_fine_tuning_job(&job.id, &end, Some(failed_record))
                .await
                .unwrap()
        );
        let used = store.counters(&alice, &period).await.unwrap();
        assert_eq!(used.get(Counter::TrainingUnits), 0);
        assert_eq!(store.open_reservations().await.unwrap(), 0);
        let done = store
            .fine_tuning_job(&job.id, &alice)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.status, FineTuningStatus::Failed);
        assert_eq!(done.error, end.error);
        assert_eq!(done.steps, Some(1000), "the steps asked for stay");
        assert_eq!(done.fine_tuned_model, None);

        let (events, _) = store
            .fine_tuning_events(&job.id, &alice, None, 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (events[0].level, events[0].message.as_str()),
            (EventLevel::Error, "The job failed: the zip holds no images")
        );
    })
    .await;
}

#[tokio::test]
async fn events_are_listed_newest_first_to_the_owner_only() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let alice = user(&store, "pro").await;
        let bob = user(&store, "pro").await;
        let file = training_file(&store, &alice).await;
        let job = store
            .create_fine_tuning_job(new_job(&training(&alice, 1000), &file, None))
            .await
            .unwrap();
        let other = store
            .create_fine_tuning_job(new_job(&training(&alice, 1000), &file, None))
            .await
            .unwrap();

        let running = FineTuningStatus::Running;
        assert!(
            store
                .update_fine_tuning_job(&job.id, running, None)
                .await
                .unwrap()
        );
        // The same status again, without a message: no event.
        assert!(
            store
                .update_fine_tuning_job(&job.id, running, None)
                .await
                .unwrap()
        );
        // A progress message, once however often the poller repeats it.
        for _ in 0..2 {
            assert!(
                store
                    .update_fine_tuning_job(&job.id, running, Some("Step 500/1000"))
                    .await
                    .unwrap()
            );
        }
        assert!(
            store
                .update_fine_tuning_job(&job.id, running, Some("Step 1000/1000"))
                .await
                .unwrap()
        );
        let err = store
            .update_fine_tuning_job(&job.id, FineTuningStatus::Succeeded, None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
        assert!(
            !store
                .update_fine_tuning_job("ftjob-nope", running, None)
                .await
                .unwrap()
        );
        let seen = store
            .fine_tuning_job(&job.id, &alice)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seen.status, running);

        let cancelled = FineTuningEnd {
            status: FineTuningStatus::Cancelled,
            weights_key: None,
            result_file: None,
            fine_tuned_model: None,
            error: None,
            cost: None,
            steps: None,
        };
        assert!(
            store
                .finish_fine_tuning_job(&job.id, &cancelled, None)
                .await
                .unwrap()
        );

        let (all, more) = store
            .fine_tuning_events(&job.id, &alice, None, 100)
            .await
            .unwrap()
            .unwrap();
        assert!(!more);
        assert_eq!(
            messages(&all),
            [
                "The job was cancelled",
                "Step 1000/1000",
                "Step 500/1000",
                "Job started running",
                "Fine-tuning job created",
            ]
        );
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [5, 4, 3, 2, 1]
        );
        assert!(all.iter().all(|e| e.job_id == job.id));
        assert!(all.iter().all(|e| e.id.starts_with("ftevent-")));
        assert!(all.iter().all(|e| e.level == EventLevel::Info));
        assert!(all.windows(2).all(|w| w[0].created_at >= w[1].created_at));

        // Pages of two, following `after`.
        let mut listed = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let (page, more) = store
                .fine_tuning_events(&job.id, &alice, after.as_deref(), 2)
                .await
                .unwrap()
                .unwrap();
            after = page.last().map(|e| e.id.clone());
            listed.extend(page);
            if !more {
                break;
            }
        }
        assert_eq!(listed, all);

        // Another user's job (or none) has no events to show; another job's event is no cursor.
        assert_eq!(
            store
                .fine_tuning_events(&job.id, &bob, None, 10)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .fine_tuning_events("ftjob-nope", &alice, None, 10)
                .await
                .unwrap(),
            None
        );
        let (others, _) = store
            .fine_tuning_events(&other.id, &alice, None, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(messages(&others), ["Fine-tuning job created"]);
        let err = store
            .fine_tuning_events(&job.id, &alice, Some(&others[0].id), 10)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
        assert!(err.message().starts_with("after:"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn a_status_change_seen_by_two_replicas_is_one_event() {
    on_each_backend(|db| async move {
        let one = db.store().await;
        let two = db.store().await;
        let alice = user(&one, "pro").await;
        let file = training_file(&one, &alice).await;
        let job = one
            .create_fine_tuning_job(new_job(&training(&alice, 500), &file, None))
            .await
            .unwrap();
        let running = FineTuningStatus::Running;
        let (a, b) = tokio::join!(
            one.update_fine_tuning_job(&job.id, running, None),
            two.update_fine_tuning_job(&job.id, running, None),
        );
        assert!(a.unwrap() && b.unwrap(), "both see a job not ended");
        let (events, _) = one
            .fine_tuning_events(&job.id, &alice, None, 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            messages(&events),
            ["Job started running", "Fine-tuning job created"]
        );
    })
    .await;
}

#[tokio::test]
async fn recovery_leaves_a_live_jobs_reservation_to_the_job() {
    on_each_backend(|db| async move {
        let survivor = db.store().await;
        let alice = user(&survivor, "pro").await;
        let file = training_file(&survivor, &alice).await;

        // A process admits two training requests, keeps one as a job, and dies.
        let dead = db.store().await;
        let owned = training(&alice, 1000);
        let r = dead.admit(owned.clone()).await.unwrap();
        let job = dead
            .create_fine_tuning_job(new_job(&owned, &file, Some(r.id.clone())))
            .await
            .unwrap();
        let loose = training(&alice, 500);
        dead.admit(loose.clone()).await.unwrap();
        dead.close().await;
        drop(dead);

        tokio::time::sleep(Duration::from_millis(400)).await;
        let recovered = survivor
            .recover_stale(Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(recovered, 1, "only the reservation no job owns");
        assert_eq!(survivor.open_reservations().await.unwrap(), 1);
        let log = survivor.usage_log(Some(&alice), 10).await.unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(
            (log[0].request_id.as_str(), log[0].status.as_str()),
            (loose.request_id.as_str(), RECOVERED)
        );

        // The survivor polls the job to its end and settles it at what it ran.
        assert!(
            survivor
                .claim_fine_tuning_job(&job.id, Duration::from_secs(30))
                .await
                .unwrap()
        );
        let lora = lora_file(&survivor, &alice).await;
        assert!(
            survivor
                .finish_fine_tuning_job(
                    &job.id,
                    &succeeded(&job.id, &lora.id),
                    Some(finished(&owned, 900, "1.50"))
                )
                .await
                .unwrap()
        );
        assert_eq!(survivor.open_reservations().await.unwrap(), 0);
        let log = survivor.usage_log(Some(&alice), 10).await.unwrap();
        assert_eq!(log.len(), 2);
        let row = log
            .iter()
            .find(|r| r.request_id == owned.request_id)
            .unwrap();
        assert_eq!((row.status.as_str(), row.units), ("ok", 900));
        assert_eq!(
            survivor
                .recover_stale(Duration::from_millis(300))
                .await
                .unwrap(),
            0
        );
    })
    .await;
}
