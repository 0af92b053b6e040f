//! Video jobs in the store: owned by their user, polled by one replica at a time, and settled
//! exactly once, even when the instance that submitted them died. Every test runs on SQLite
//! and, with `GATEWAY_TEST_POSTGRES_URL`, on PostgreSQL (see `common`).

mod common;

use std::time::Duration;

use common::*;
use gateway_core::{Accounting, Admission, Modality, Outcome, UsageRecord};
use gw_store::{Counter, JobEnd, JobError, JobState, NewVideoJob, RECOVERED, Store};

async fn user(store: &Store, plan: &str) -> String {
    store.create_user(&unique("user"), plan).await.unwrap().id
}

fn video(user: &str, seconds: u64) -> Admission {
    Admission {
        operation: "videos.generate",
        estimate: gateway_core::Amount::new(0, seconds, Some(cost("0.50"))),
        ..media(
            user,
            "wavespeed",
            "wavespeed-ai/hunyuan-video-1.5/t2v",
            Modality::Video,
            seconds,
        )
    }
}

fn new_job(admission: &Admission, reservation_id: Option<String>) -> NewVideoJob {
    NewVideoJob {
        user_id: admission.user_id.clone(),
        request_id: admission.request_id.clone(),
        route: admission.route.clone(),
        provider_job_id: unique("task"),
        seconds: Some(admission.estimate.units),
        size: Some("1280x720".into()),
        resolution: None,
        prompt: "a lighthouse at dusk".into(),
        reservation_id,
        estimate: admission.estimate.cost,
        retries: 0,
    }
}

/// The record of a finished job that made `seconds` of video costing `price`.
fn finished(admission: &Admission, seconds: u64, price: &str) -> UsageRecord {
    UsageRecord {
        units: seconds,
        cost: Some(cost(price)),
        ..record(admission, 0, 0, Some(price))
    }
}

fn completed(url: &str) -> JobEnd {
    JobEnd {
        status: JobState::Completed,
        output_url: Some(url.into()),
        seconds: Some(5),
        error: None,
        cost: Some(cost("0.40")),
    }
}

#[tokio::test]
async fn a_job_is_its_owners_alone() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let alice = user(&store, "pro").await;
        let bob = user(&store, "pro").await;
        let a = video(&alice, 5);
        let job = store.create_video_job(new_job(&a, None)).await.unwrap();
        assert!(job.id.starts_with("video_"), "{}", job.id);
        assert_eq!(job.status, JobState::Queued);
        assert_eq!(
            (job.seconds, job.size.as_deref(), job.settled),
            (Some(5), Some("1280x720"), false)
        );
        assert_eq!(
            job.route_name(),
            "wavespeed/wavespeed-ai/hunyuan-video-1.5/t2v"
        );

        let seen = store.video_job(&job.id, &alice).await.unwrap().unwrap();
        assert_eq!(seen, job);
        assert_eq!(store.video_job(&job.id, &bob).await.unwrap(), None);
        assert_eq!(store.video_job("video_nope", &alice).await.unwrap(), None);

        assert!(
            store
                .update_video_job(&job.id, JobState::InProgress, Some(40))
                .await
                .unwrap()
        );
        let seen = store.video_job(&job.id, &alice).await.unwrap().unwrap();
        assert_eq!(
            (seen.status, seen.progress),
            (JobState::InProgress, Some(40))
        );
        assert!(
            store
                .update_video_job(&job.id, JobState::Completed, None)
                .await
                .is_err(),
            "an end goes through finish_video_job"
        );
    })
    .await;
}

#[tokio::test]
async fn one_poller_holds_a_job_at_a_time() {
    on_each_backend(|db| async move {
        let one = db.store().await;
        let two = db.store().await;
        let alice = user(&one, "pro").await;
        let job = one
            .create_video_job(new_job(&video(&alice, 5), None))
            .await
            .unwrap();
        async fn due(store: &Store, id: &str) -> bool {
            store
                .video_jobs_due(100)
                .await
                .unwrap()
                .into_iter()
                .any(|j| j.id == id)
        }
        assert!(due(&two, &job.id).await);

        let lease = Duration::from_secs(60);
        assert!(one.claim_video_job(&job.id, lease).await.unwrap());
        assert!(!two.claim_video_job(&job.id, lease).await.unwrap());
        assert!(!due(&two, &job.id).await, "a leased job is not due");
        // The holder extends its own lease.
        assert!(one.claim_video_job(&job.id, lease).await.unwrap());
        one.release_video_job(&job.id).await.unwrap();
        assert!(two.claim_video_job(&job.id, lease).await.unwrap());

        // A lease that ran out (its holder died) is taken over.
        let short = job.id.clone();
        two.release_video_job(&short).await.unwrap();
        assert!(
            two.claim_video_job(&short, Duration::from_millis(1))
                .await
                .unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(one.claim_video_job(&short, lease).await.unwrap());
    })
    .await;
}

#[tokio::test]
async fn a_job_is_settled_once_whichever_replica_sees_its_end() {
    on_each_backend(|db| async move {
        let one = db.store().await;
        let two = db.store().await;
        let alice = user(&one, "pro").await;
        let a = video(&alice, 5);
        let reservation = one.admit(a.clone()).await.unwrap();
        let period = period_of(&reservation);
        let job = one
            .create_video_job(new_job(&a, Some(reservation.id.clone())))
            .await
            .unwrap();
        let reserved = one.counters(&alice, &period).await.unwrap();
        assert_eq!(reserved.get(Counter::Volume(Modality::Video)), 5);
        assert_eq!(reserved.get(Counter::Requests(Modality::Video)), 1);

        let end = completed("https://cdn.example/v.mp4");
        let (first, second) = tokio::join!(
            one.finish_video_job(&job.id, &end, Some(finished(&a, 4, "0.40"))),
            two.finish_video_job(&job.id, &end, Some(finished(&a, 4, "0.40"))),
        );
        let (first, second) = (first.unwrap(), second.unwrap());
        assert!(first ^ second, "exactly one settles: {first} {second}");
        assert!(
            !one.finish_video_job(&job.id, &end, Some(finished(&a, 4, "0.40")))
                .await
                .unwrap()
        );

        let used = one.counters(&alice, &period).await.unwrap();
        assert_eq!(used.get(Counter::Volume(Modality::Video)), 4);
        assert_eq!(used.get(Counter::Requests(Modality::Video)), 1);
        assert_eq!(used.cost(), cost("0.40"));
        let log = one.usage_log(Some(&alice), 10).await.unwrap();
        assert_eq!(log.len(), 1, "{log:?}");
        assert_eq!((log[0].status.as_str(), log[0].units), ("ok", 4));
        assert_eq!(one.open_reservations().await.unwrap(), 0);

        let done = one.video_job(&job.id, &alice).await.unwrap().unwrap();
        assert_eq!(done.status, JobState::Completed);
        assert_eq!(done.progress, Some(100));
        assert_eq!(
            done.output_url.as_deref(),
            Some("https://cdn.example/v.mp4")
        );
        assert_eq!(done.cost, Some(cost("0.40")));
        assert!(done.settled && done.completed_at.is_some());
        assert!(
            !one.claim_video_job(&job.id, Duration::from_secs(1))
                .await
                .unwrap()
        );
        assert!(
            !one.update_video_job(&job.id, JobState::InProgress, None)
                .await
                .unwrap()
        );
    })
    .await;
}

#[tokio::test]
async fn a_failed_job_releases_what_it_reserved() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let alice = user(&store, "pro").await;
        let a = video(&alice, 8);
        let reservation = store.admit(a.clone()).await.unwrap();
        let period = period_of(&reservation);
        let job = store
            .create_video_job(new_job(&a, Some(reservation.id)))
            .await
            .unwrap();
        let end = JobEnd {
            status: JobState::Failed,
            output_url: None,
            seconds: None,
            error: Some(JobError {
                code: "content_filtered".into(),
                message: "the prompt was refused".into(),
            }),
            cost: None,
        };
        let failed_record = UsageRecord {
            outcome: Outcome::Failed {
                kind: "content_filtered".into(),
                message: "the prompt was refused".into(),
            },
            ..failed(&a)
        };
        assert!(
            store
                .finish_video_job(&job.id, &end, Some(failed_record))
                .await
                .unwrap()
        );
        let used = store.counters(&alice, &period).await.unwrap();
        assert_eq!(used.get(Counter::Volume(Modality::Video)), 0);
        let done = store.video_job(&job.id, &alice).await.unwrap().unwrap();
        assert_eq!(done.status, JobState::Failed);
        assert_eq!(done.error, end.error);
        assert_eq!(done.seconds, Some(8), "the asked length stays");
    })
    .await;
}

#[tokio::test]
async fn recovery_leaves_a_live_jobs_reservation_to_the_job() {
    on_each_backend(|db| async move {
        let survivor = db.store().await;
        let alice = user(&survivor, "pro").await;

        // A process admits two video requests, keeps one as a job, and dies.
        let dead = db.store().await;
        let owned = video(&alice, 5);
        let r = dead.admit(owned.clone()).await.unwrap();
        let job = dead
            .create_video_job(new_job(&owned, Some(r.id.clone())))
            .await
            .unwrap();
        let loose = video(&alice, 3);
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

        // The survivor polls the job to its end and settles it at what it made.
        assert!(
            survivor
                .claim_video_job(&job.id, Duration::from_secs(30))
                .await
                .unwrap()
        );
        assert!(
            survivor
                .finish_video_job(
                    &job.id,
                    &completed("https://cdn/v.mp4"),
                    Some(finished(&owned, 5, "0.40"))
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
        assert_eq!((row.status.as_str(), row.units), ("ok", 5));
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

/// A job still open after `abandon_after` is charged at its estimate; when it ends after all,
/// its settlement replaces that charge with what it made, and it keeps one usage row.
#[tokio::test]
async fn a_job_that_ends_after_its_recovery_replaces_the_estimate() {
    on_each_backend(|db| async move {
        let store = db.store().await;
        let alice = user(&store, "pro").await;
        let admission = video(&alice, 8);
        let r = store.admit(admission.clone()).await.unwrap();
        let period = r.period.clone();
        let job = store
            .create_video_job(new_job(&admission, Some(r.id.clone())))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            store
                .recover_abandoned(Duration::from_millis(10))
                .await
                .unwrap(),
            1
        );
        let charged = store.counters(&alice, &period).await.unwrap();
        assert_eq!(charged.get(Counter::VideoUnits), 8);
        assert_eq!(charged.cost(), cost("0.50"));

        assert!(
            store
                .claim_video_job(&job.id, Duration::from_secs(30))
                .await
                .unwrap()
        );
        assert!(
            store
                .finish_video_job(
                    &job.id,
                    &completed("https://cdn/v.mp4"),
                    Some(finished(&admission, 5, "0.40"))
                )
                .await
                .unwrap()
        );
        let log = store.usage_log(Some(&alice), 10).await.unwrap();
        assert_eq!(log.len(), 1, "one row for the job");
        assert_eq!((log[0].status.as_str(), log[0].units), ("ok", 5));
        let used = store.counters(&alice, &period).await.unwrap();
        assert_eq!(used.get(Counter::VideoUnits), 5);
        assert_eq!(used.get(Counter::VideoRequests), 1);
        assert_eq!(used.cost(), cost("0.40"));
        let summary = store.usage_summary(&alice, &period).await.unwrap();
        assert_eq!(
            (summary[0].requests, summary[0].units, summary[0].estimated),
            (1, 5, 0)
        );
    })
    .await;
}
