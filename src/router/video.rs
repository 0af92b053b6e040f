//! Video through the attempt loop, as a job: the submission is admitted (plan check and
//! reservation of the expected seconds and cost, before any call), checked and sent once; the
//! job is then polled, possibly by another process after a restart, and settled when it ends.
//!
//! The submission's [`Served`](super::attempt::Served) cannot outlive the request, so settling
//! needs what [`VideoSubmission`] carries and a caller keeps (gw-store keeps it in its jobs
//! table): the route, the provider's job id and the reservation. [`Gateway::video_record`] turns
//! a job's end into the usage record that replaces the reservation, and the keeper settles it
//! exactly once (gw-store's `finish_video_job` does so in the transaction that ends the job).

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use gateway_core::{
    Amount, Attempt, AttemptOutcome, Billing, Cost, DynVideoModel, Error, ErrorKind, JobId,
    JobStatus, Modality, Outcome, PriceCatalog, Registry, RequestTags, Reservation, Result,
    RouteId, Service, UsageRecord, VideoOutput, VideoRequest,
};
use tracing::Instrument;

use super::Gateway;
use super::op::{Estimate, Operation, billed_cost, unpriced_by_usage};
use crate::metering::{CallContext, Pricer};

/// The operation name usage logs give a video job.
pub(crate) const OPERATION: &str = "videos.generate";

/// Video generation (`videos.generate`): the call is the submission.
struct Submit;

impl Operation for Submit {
    type Model = dyn DynVideoModel;
    type Request = VideoRequest;
    type Output = JobId;

    const SERVICE: Service = Service::Video;
    const PRICER: Pricer = unpriced_by_usage;

    fn name(&self) -> &'static str {
        OPERATION
    }

    fn model(&self, registry: &Registry, provider: &str) -> Option<Arc<dyn DynVideoModel>> {
        registry.video(provider).cloned()
    }

    fn check(&self, model: &dyn DynVideoModel, route: &RouteId, req: &VideoRequest) -> Result<()> {
        model.check_video_dyn(&request_for(req, route))
    }

    fn estimate(
        &self,
        model: &dyn DynVideoModel,
        req: &VideoRequest,
        route: &RouteId,
        pricing: &PriceCatalog,
    ) -> Estimate {
        let billing = model.video_billing_dyn(&request_for(req, route));
        Estimate {
            amount: Amount::new(0, billing.units, billed_cost(pricing, route, &billing)),
            open_output: None,
            prompt_tokens: 0,
        }
    }

    fn call(
        &self,
        model: Arc<dyn DynVideoModel>,
        route: &RouteId,
        req: &VideoRequest,
    ) -> BoxFuture<'static, Result<JobId>> {
        let req = request_for(req, route);
        // A submit that may have created the job comes back in doubt from the provider, and
        // the loop neither retries it nor falls back.
        Box::pin(async move { model.submit_video_dyn(req).await })
    }
}

/// `req` addressed to `route`'s model id.
fn request_for(req: &VideoRequest, route: &RouteId) -> VideoRequest {
    let mut req = req.clone();
    req.model = String::from(&*route.model);
    req
}

/// A video job the provider accepted, with what polling and settling it later need. Keep it
/// (gw-store keeps these fields in its jobs table): the reservation stays open until the job's
/// end is settled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VideoSubmission {
    /// The provider's id for the job.
    pub job: JobId,
    /// The route that took it (after any fallback).
    pub route: RouteId,
    /// What was reserved for it (`None` without accounting): settle it once, when the job ends.
    pub reservation: Option<Reservation>,
    /// What the job is expected to bill: its seconds (plan units) and their expected cost.
    pub estimate: Amount,
    /// Retries the submission took, across fallback routes.
    pub retries: u32,
}

/// A stored job (video or fine-tuning), as [`Gateway::video_record`] and
/// [`Gateway::training_record`] need it to write the job's usage record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef<'a> {
    /// The gateway's id of the request that submitted it.
    pub request_id: &'a str,
    /// The owner.
    pub user_id: &'a str,
    /// The route that took it.
    pub route: &'a RouteId,
    /// How long ago it was submitted.
    pub age: Duration,
    /// Retries the submission took.
    pub retries: u32,
}

/// How a job's end is charged: its usage record and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCharge {
    /// The record that replaces the job's reservation.
    pub record: UsageRecord,
    /// What it costs (`None`: the model has no price).
    pub cost: Option<Cost>,
}

impl Gateway {
    /// Starts a video job for `ctx`'s caller through the same loop as chat: the request checked
    /// against each route's model (duration, resolution, input image) and the caller's plan
    /// (video requests and seconds, and their expected cost) before any call, then submitted
    /// once (a submit whose outcome is in doubt is neither retried nor sent elsewhere).
    ///
    /// The reservation is not settled here: it belongs to the job, and is settled when the job
    /// ends, with [`Gateway::video_record`]. Without accounting this needs no caller.
    pub async fn submit_video_with(
        &self,
        ctx: &CallContext,
        req: VideoRequest,
    ) -> Result<VideoSubmission> {
        let trace = self.trace("generate_content", &req.model, ctx, false);
        async {
            let served = match self.attempt(&Submit, ctx, &trace, &req.model, &req).await {
                Ok(served) => served,
                Err(failed) => return Err(failed.settle().await),
            };
            let meter = served.meter;
            let estimate = meter
                .reservation
                .as_ref()
                .map(|r| r.estimate)
                .unwrap_or_else(|| {
                    // Without accounting nothing was reserved; say what would have been.
                    self.registry
                        .video(meter.route.provider)
                        .map(|m| {
                            Submit
                                .estimate(m.as_ref(), &req, &meter.route, &self.pricing)
                                .amount
                        })
                        .unwrap_or_default()
                });
            Ok(VideoSubmission {
                job: served.value,
                route: meter.route.clone(),
                reservation: meter.reservation.clone(),
                estimate,
                retries: served.retries,
            })
        }
        .instrument(trace.span())
        .await
    }

    /// Asks `route`'s provider once where job `job` is. Polling only reads, so a caller may ask
    /// again after any error; the job's end is charged with [`Gateway::video_record`].
    pub async fn poll_video_with(
        &self,
        route: &RouteId,
        job: &JobId,
    ) -> Result<JobStatus<VideoOutput>> {
        let Some(model) = self.registry.video(route.provider) else {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!(
                    "provider `{}` does not serve video here any more: job `{job}` cannot be polled",
                    route.provider
                ),
            ));
        };
        model.poll_video_dyn(job).await
    }

    /// The usage record (and cost) of a job that ended with `status`: a completed job is
    /// charged what its provider billed (its seconds as plan units, the cost of its charges);
    /// a failed one nothing, as the provider bills no failed task; `None` while it runs.
    pub fn video_record(
        &self,
        job: &JobRef<'_>,
        status: &JobStatus<VideoOutput>,
    ) -> Option<JobCharge> {
        let end = match status {
            JobStatus::Completed(output) => Ok(&output.billing),
            JobStatus::Failed(error) => Err(error),
            _ => return None,
        };
        Some(self.job_record(job, Modality::Video, OPERATION, end))
    }

    /// The record of a job of `modality` that ended: `Ok` with what it billed, or `Err` with
    /// why it failed (charged nothing, as the job providers here bill no failed task).
    pub(super) fn job_record(
        &self,
        job: &JobRef<'_>,
        modality: Modality,
        operation: &'static str,
        end: std::result::Result<&Billing, &Error>,
    ) -> JobCharge {
        let (outcome, units, cost, billable, attempt) = match end {
            Ok(billing) => (
                Outcome::Ok,
                billing.units,
                billed_cost(&self.pricing, job.route, billing),
                true,
                AttemptOutcome::Ok,
            ),
            Err(error) => (
                Outcome::Failed {
                    kind: error.kind().as_str().to_owned(),
                    message: error.to_string(),
                },
                0,
                Some(Cost::ZERO),
                false,
                AttemptOutcome::Failed(error.kind().clone()),
            ),
        };
        if billable && cost.is_none() {
            crate::metering::warn_unpriced(job.route);
        }
        let record = UsageRecord {
            request_id: job.request_id.to_owned(),
            user_id: job.user_id.to_owned(),
            route: job.route.clone(),
            modality,
            operation,
            outcome,
            tokens: Default::default(),
            units,
            cost,
            pricing_version: self.pricing.version_of(job.route.provider).to_owned(),
            estimated: false,
            billable,
            latency: job.age,
            time_to_first_token: None,
            retries: job.retries,
            cached: None,
            attempts: vec![Attempt {
                route: job.route.clone(),
                outcome: attempt,
                latency: job.age,
            }],
            tags: RequestTags::default(),
        };
        JobCharge { record, cost }
    }

    /// Tells the gateway's observer (metrics) that a video job ended and was settled with
    /// `record`: a job ends long after its request, often in another process, so its end is
    /// reported by whoever settles it, once. `request_model` is what the caller asked for.
    pub fn report_video_end(&self, request_model: &str, record: &UsageRecord) {
        self.report_job_end("generate_content", request_model, record);
    }

    /// Reports a job's end (`operation` as spans name it) to the observer.
    pub(super) fn report_job_end(
        &self,
        operation: &'static str,
        request_model: &str,
        record: &UsageRecord,
    ) {
        if let Some(observer) = &self.telemetry.observer {
            observer.request_ended(&gateway_core::telemetry::RequestEnd {
                operation,
                request_model,
                stream: false,
                record,
                reserved: None,
            });
        }
    }

    /// Settles a job's end through the gateway's accounting, for callers that keep jobs
    /// themselves: `reservation` is the one [`VideoSubmission`] carried. The caller makes sure
    /// this runs once per job. Returns what the job cost (`None` while it runs, or unpriced).
    pub async fn settle_video(
        &self,
        job: &JobRef<'_>,
        reservation: Option<Reservation>,
        status: &JobStatus<VideoOutput>,
    ) -> Result<Option<Cost>> {
        let Some(charge) = self.video_record(job, status) else {
            return Ok(None);
        };
        if let (Some(accounting), Some(reservation)) = (&self.accounting, reservation) {
            accounting.settle(reservation, charge.record).await?;
        }
        Ok(charge.cost)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use gateway_core::{
        Accounting, Admission, Charge, MediaOutput, PriceUnit, Usage, VideoModel,
        per_second_billing,
    };

    use super::*;
    use crate::RetryPolicy;

    /// A video provider: submits answer from `submits` in order (the last repeats), polls
    /// from `polls`.
    struct FakeVideo {
        provider: &'static str,
        submits: Mutex<VecDeque<Result<JobId>>>,
        polls: Mutex<VecDeque<JobStatus<VideoOutput>>>,
        submitted: AtomicU32,
    }

    fn copy(r: &Result<JobId>) -> Result<JobId> {
        match r {
            Ok(id) => Ok(id.clone()),
            Err(e) if e.is_in_doubt() => Err(Error::new(e.kind().clone(), "lost").in_doubt()),
            Err(e) => Err(Error::new(e.kind().clone(), e.message().to_owned())),
        }
    }

    impl FakeVideo {
        fn new(
            provider: &'static str,
            submits: Vec<Result<JobId>>,
            polls: Vec<JobStatus<VideoOutput>>,
        ) -> Arc<Self> {
            Arc::new(Self {
                provider,
                submits: Mutex::new(submits.into()),
                polls: Mutex::new(polls.into()),
                submitted: AtomicU32::new(0),
            })
        }
    }

    impl VideoModel for FakeVideo {
        fn provider(&self) -> &'static str {
            self.provider
        }

        /// Five or ten seconds only.
        fn check_video(&self, req: &VideoRequest) -> Result<()> {
            match req.duration_secs {
                Some(5 | 10) | None => Ok(()),
                Some(n) => {
                    Err(Error::invalid_request(format!("no {n} s videos")).with_param("seconds"))
                }
            }
        }

        fn video_billing(&self, req: &VideoRequest) -> Billing {
            per_second_billing(req.duration_secs.unwrap_or(5), None)
        }

        async fn submit_video(&self, _req: VideoRequest) -> Result<JobId> {
            self.submitted.fetch_add(1, Ordering::SeqCst);
            let mut submits = self.submits.lock().unwrap();
            if submits.len() > 1 {
                submits.pop_front().unwrap()
            } else {
                copy(submits.front().unwrap())
            }
        }

        async fn poll_video(&self, _job: &JobId) -> Result<JobStatus<VideoOutput>> {
            Ok(self
                .polls
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(JobStatus::Queued))
        }
    }

    #[derive(Default)]
    struct Ledger {
        admitted: Mutex<Vec<Admission>>,
        settled: Mutex<Vec<(Reservation, UsageRecord)>>,
        refuse: Option<ErrorKind>,
    }

    impl Accounting for Ledger {
        fn admit(&self, admission: Admission) -> BoxFuture<'_, Result<Reservation>> {
            Box::pin(async move {
                if let Some(kind) = &self.refuse {
                    return Err(Error::new(kind.clone(), "no video on this plan"));
                }
                let reservation = Reservation {
                    id: format!("res-{}", admission.request_id),
                    user_id: admission.user_id.clone(),
                    period: "2026-11".into(),
                    estimate: admission.estimate,
                    output_bound: None,
                };
                self.admitted.lock().unwrap().push(admission);
                Ok(reservation)
            })
        }

        fn settle(&self, r: Reservation, record: UsageRecord) -> BoxFuture<'_, Result<()>> {
            self.settled.lock().unwrap().push((r, record));
            Box::pin(async { Ok(()) })
        }

        fn permits(&self, _: Admission) -> BoxFuture<'_, Result<()>> {
            Box::pin(async { Ok(()) })
        }
    }

    fn prices() -> PriceCatalog {
        PriceCatalog::from_toml(
            "version = \"test\"\n[[unit]]\nprovider = \"alpha\"\nmodel = \"clip\"\n\
             unit = \"video_second\"\nprice = \"0.10\"\n",
            "test prices",
        )
        .unwrap()
    }

    fn gateway(providers: &[Arc<FakeVideo>], ledger: &Arc<Ledger>) -> Gateway {
        let mut registry = Registry::new();
        for p in providers {
            registry.add_video(p.clone());
        }
        Gateway::new(registry)
            .with_retry(RetryPolicy {
                max_retries: 2,
                initial_backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(2),
                ..RetryPolicy::default()
            })
            .with_price_overrides(prices())
            .with_accounting(ledger.clone())
    }

    fn ctx() -> CallContext {
        CallContext::new("req-1", "alice")
    }

    fn done(seconds: u64) -> JobStatus<VideoOutput> {
        let output = VideoOutput::new(
            MediaOutput::Url {
                url: "https://cdn.example/v.mp4".into(),
                mime: Some("video/mp4".into()),
            },
            Some(Duration::from_secs(seconds)),
            Usage::default(),
        )
        .billing(Billing::new(
            seconds,
            vec![Charge::new(PriceUnit::VideoSecond, seconds)],
        ));
        JobStatus::Completed(output)
    }

    #[tokio::test]
    async fn a_job_is_admitted_before_its_submit_and_settled_at_its_end() {
        let alpha = FakeVideo::new(
            "alpha",
            vec![Ok(JobId("task-1".into()))],
            vec![JobStatus::InProgress { progress: Some(40) }, done(10)],
        );
        let ledger = Arc::new(Ledger::default());
        let gw = gateway(std::slice::from_ref(&alpha), &ledger);
        let mut req = VideoRequest::new("alpha/clip", "a lighthouse");
        req.duration_secs = Some(10);
        let sub = gw.submit_video_with(&ctx(), req).await.unwrap();
        assert_eq!(sub.job, JobId("task-1".into()));
        assert_eq!(sub.route, RouteId::new("alpha", "clip"));
        assert_eq!(sub.estimate.units, 10);
        assert_eq!(sub.estimate.cost, Some("1.00".parse().unwrap()));
        let admitted = ledger.admitted.lock().unwrap().clone();
        assert_eq!(admitted.len(), 1);
        assert_eq!(
            (admitted[0].modality, admitted[0].operation),
            (Modality::Video, OPERATION)
        );
        assert!(
            ledger.settled.lock().unwrap().is_empty(),
            "the reservation is the job's until it ends"
        );

        let job = JobRef {
            request_id: "req-1",
            user_id: "alice",
            route: &sub.route,
            age: Duration::from_secs(30),
            retries: sub.retries,
        };
        let running = gw.poll_video_with(&sub.route, &sub.job).await.unwrap();
        assert_eq!(running.as_str(), "in_progress");
        assert_eq!(gw.video_record(&job, &running), None);
        let end = gw.poll_video_with(&sub.route, &sub.job).await.unwrap();
        let cost = gw
            .settle_video(&job, sub.reservation.clone(), &end)
            .await
            .unwrap();
        assert_eq!(cost, Some("1.00".parse().unwrap()));
        let settled = ledger.settled.lock().unwrap().clone();
        assert_eq!(settled.len(), 1);
        let (reservation, record) = &settled[0];
        assert_eq!(Some(reservation), sub.reservation.as_ref());
        assert_eq!((record.units, record.billable), (10, true));
        assert_eq!(record.modality, Modality::Video);
        assert_eq!(record.outcome, Outcome::Ok);
    }

    #[tokio::test]
    async fn a_failed_job_is_charged_nothing() {
        let gw = gateway(&[], &Arc::new(Ledger::default()));
        let route = RouteId::new("alpha", "clip");
        let job = JobRef {
            request_id: "r",
            user_id: "u",
            route: &route,
            age: Duration::ZERO,
            retries: 0,
        };
        let failed = JobStatus::Failed(Error::new(ErrorKind::ContentFiltered, "nsfw"));
        let charge = gw.video_record(&job, &failed).unwrap();
        assert!(!charge.record.billable);
        assert_eq!(charge.cost, Some(Cost::ZERO));
        assert!(matches!(
            &charge.record.outcome,
            Outcome::Failed { kind, .. } if kind == "content_filtered"
        ));
    }

    #[tokio::test]
    async fn a_plan_without_video_refuses_before_the_submit() {
        let alpha = FakeVideo::new("alpha", vec![Ok(JobId("t".into()))], vec![]);
        let ledger = Arc::new(Ledger {
            refuse: Some(ErrorKind::PermissionDenied),
            ..Ledger::default()
        });
        let gw = gateway(std::slice::from_ref(&alpha), &ledger);
        let err = gw
            .submit_video_with(&ctx(), VideoRequest::new("alpha/clip", "p"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::PermissionDenied);
        assert_eq!(alpha.submitted.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_bad_request_is_refused_by_the_model_before_admission() {
        let alpha = FakeVideo::new("alpha", vec![Ok(JobId("t".into()))], vec![]);
        let ledger = Arc::new(Ledger::default());
        let gw = gateway(std::slice::from_ref(&alpha), &ledger);
        let mut req = VideoRequest::new("alpha/clip", "p");
        req.duration_secs = Some(7);
        let err = gw.submit_video_with(&ctx(), req).await.unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
        assert_eq!(err.param(), Some("seconds"));
        assert!(ledger.admitted.lock().unwrap().is_empty());
        assert_eq!(alpha.submitted.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_submit_in_doubt_is_sent_once_and_charged_at_its_reservation() {
        let alpha = FakeVideo::new(
            "alpha",
            vec![Err(Error::new(ErrorKind::Timeout, "lost").in_doubt())],
            vec![],
        );
        let beta = FakeVideo::new("beta", vec![Ok(JobId("t".into()))], vec![]);
        let ledger = Arc::new(Ledger::default());
        let gw = gateway(&[alpha.clone(), beta.clone()], &ledger);
        let mut c = ctx();
        c.fallbacks = vec!["beta/clip".into()];
        let err = gw
            .submit_video_with(&c, VideoRequest::new("alpha/clip", "p"))
            .await
            .unwrap_err();
        assert!(err.is_in_doubt(), "{err}");
        assert_eq!(alpha.submitted.load(Ordering::SeqCst), 1);
        assert_eq!(beta.submitted.load(Ordering::SeqCst), 0);
        let settled = ledger.settled.lock().unwrap().clone();
        assert_eq!(settled.len(), 1);
        // The task may be running and billed: charged at what was reserved, marked estimated.
        let (reservation, record) = &settled[0];
        assert!(record.billable && record.estimated, "{record:?}");
        assert_eq!(record.units, reservation.estimate.units);
        assert!(record.units > 0, "{record:?}");

        // A plain 503 is retried, then served by the fallback.
        let alpha = FakeVideo::new(
            "alpha",
            vec![Err(Error::new(ErrorKind::Upstream { status: 503 }, "down"))],
            vec![],
        );
        let gw = gateway(&[alpha.clone(), beta.clone()], &ledger);
        let sub = gw
            .submit_video_with(&c, VideoRequest::new("alpha/clip", "p"))
            .await
            .unwrap();
        assert_eq!(sub.route, RouteId::new("beta", "clip"));
        assert_eq!(alpha.submitted.load(Ordering::SeqCst), 3);
        assert_eq!(sub.retries, 3);
    }
}
