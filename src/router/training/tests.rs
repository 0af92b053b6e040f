use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use gateway_core::{
    Accounting, Admission, Billing, MediaInput, Outcome, TrainingModel, UsageRecord,
    per_step_billing,
};

use super::*;

/// A trainer: family `flux` only, `steps` 100..=2000; quotes `quote`; submits answer `submit`.
struct FakeTrainer {
    quote: Result<Option<Cost>>,
    submit: Result<JobId>,
    quoted: AtomicU32,
    submitted: AtomicU32,
}

fn copy<T: Clone>(r: &Result<T>) -> Result<T> {
    match r {
        Ok(v) => Ok(v.clone()),
        Err(e) if e.is_in_doubt() => Err(Error::new(e.kind().clone(), "lost").in_doubt()),
        Err(e) => Err(Error::new(e.kind().clone(), e.message().to_owned())),
    }
}

impl FakeTrainer {
    fn new(quote: Result<Option<Cost>>, submit: Result<JobId>) -> Arc<Self> {
        Arc::new(Self {
            quote,
            submit,
            quoted: AtomicU32::new(0),
            submitted: AtomicU32::new(0),
        })
    }
}

fn steps(req: &TrainingRequest) -> u64 {
    req.options
        .get("steps")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(1000)
}

impl TrainingModel for FakeTrainer {
    fn provider(&self) -> &'static str {
        "alpha"
    }

    fn check_training(&self, req: &TrainingRequest) -> Result<()> {
        if req.model != "flux" {
            return Err(Error::invalid_request("no such family").with_param("model"));
        }
        match steps(req) {
            100..=2000 => Ok(()),
            n => {
                Err(Error::invalid_request(format!("{n} steps"))
                    .with_param("provider_options.steps"))
            }
        }
    }

    fn training_billing(&self, req: &TrainingRequest) -> Billing {
        per_step_billing(steps(req))
    }

    async fn quote_training(&self, _req: &TrainingRequest) -> Result<Option<Cost>> {
        self.quoted.fetch_add(1, Ordering::SeqCst);
        copy(&self.quote)
    }

    async fn submit_training(&self, _req: TrainingRequest) -> Result<JobId> {
        self.submitted.fetch_add(1, Ordering::SeqCst);
        copy(&self.submit)
    }

    async fn poll_training(&self, _job: &JobId) -> Result<JobStatus<TrainingOutput>> {
        Ok(JobStatus::Queued)
    }

    fn lora_model(&self, family: &str) -> Option<LoraModel> {
        (family == "flux").then(|| LoraModel::new("flux-lora", 4))
    }
}

#[derive(Default)]
struct Ledger {
    admitted: Mutex<Vec<Admission>>,
    settled: Mutex<Vec<(Reservation, UsageRecord)>>,
    /// Refuses training (as a plan without it does), in `permits` and `admit`.
    no_training: bool,
}

impl Ledger {
    fn check(&self, admission: &Admission) -> Result<()> {
        if self.no_training && admission.modality == Modality::Training {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "the plan does not include training",
            ));
        }
        Ok(())
    }
}

impl Accounting for Ledger {
    fn admit(&self, admission: Admission) -> BoxFuture<'_, Result<Reservation>> {
        Box::pin(async move {
            self.check(&admission)?;
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

    fn permits(&self, admission: Admission) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.check(&admission) })
    }
}

fn prices() -> PriceCatalog {
    PriceCatalog::from_toml(
        "version = \"test\"\n[[unit]]\nprovider = \"alpha\"\nmodel = \"flux\"\n\
         unit = \"training_step\"\nprice = \"0.002\"\n",
        "test prices",
    )
    .unwrap()
}

fn gateway(trainer: &Arc<FakeTrainer>, ledger: &Arc<Ledger>) -> Gateway {
    let mut registry = Registry::new();
    registry.add_training(trainer.clone());
    Gateway::new(registry)
        .with_retry(crate::RetryPolicy {
            max_retries: 2,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..crate::RetryPolicy::default()
        })
        .with_price_overrides(prices())
        .with_accounting(ledger.clone())
}

fn request(steps: u64) -> TrainingRequest {
    let mut req = TrainingRequest::new("alpha/flux", MediaInput::Url("https://x/d.zip".into()));
    req.options.insert("steps".into(), steps.into());
    req
}

fn ctx() -> CallContext {
    CallContext::new("req-1", "alice")
}

#[tokio::test]
async fn a_run_is_reserved_at_the_providers_quote_and_settled_at_its_end() {
    let alpha = FakeTrainer::new(
        Ok(Some("1.25".parse().unwrap())),
        Ok(JobId("task-1".into())),
    );
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&alpha, &ledger);
    let sub = gw
        .submit_training_with(&ctx(), request(1000))
        .await
        .unwrap();
    assert_eq!(sub.job, JobId("task-1".into()));
    assert_eq!(sub.quote, Some("1.25".parse().unwrap()));
    assert_eq!(sub.estimate.units, 1000);
    assert_eq!(sub.estimate.cost, Some("1.25".parse().unwrap()));
    let admitted = ledger.admitted.lock().unwrap().clone();
    assert_eq!(admitted.len(), 1);
    assert_eq!(
        (admitted[0].modality, admitted[0].operation),
        (Modality::Training, OPERATION)
    );
    assert!(ledger.settled.lock().unwrap().is_empty());

    let job = JobRef {
        request_id: "req-1",
        user_id: "alice",
        route: &sub.route,
        age: Duration::from_secs(600),
        retries: 0,
    };
    // The provider reports no cost: the run is charged its quote.
    let done = JobStatus::Completed(TrainingOutput::new(
        "https://cdn.example/lora.safetensors",
        per_step_billing(1000),
    ));
    let charge = gw.training_record(&job, &done, sub.quote).unwrap();
    assert_eq!(charge.cost, Some("1.25".parse().unwrap()));
    // Without a quote, the catalog's price of its steps.
    let charge = gw.training_record(&job, &done, None).unwrap();
    assert_eq!(charge.cost, Some("2".parse().unwrap()));
    assert_eq!(
        (
            charge.record.units,
            charge.record.billable,
            charge.record.modality
        ),
        (1000, true, Modality::Training)
    );
    let failed = JobStatus::Failed(Error::new(ErrorKind::Upstream { status: 500 }, "oom"));
    let charge = gw.training_record(&job, &failed, sub.quote).unwrap();
    assert!(!charge.record.billable);
    assert_eq!(charge.cost, Some(Cost::ZERO));
    assert!(matches!(charge.record.outcome, Outcome::Failed { .. }));
    assert_eq!(gw.training_record(&job, &JobStatus::Queued, None), None);
}

#[tokio::test]
async fn a_plan_without_training_is_refused_before_the_quote() {
    let alpha = FakeTrainer::new(Ok(Some("1".parse().unwrap())), Ok(JobId("t".into())));
    let ledger = Arc::new(Ledger {
        no_training: true,
        ..Ledger::default()
    });
    let gw = gateway(&alpha, &ledger);
    let err = gw
        .submit_training_with(&ctx(), request(1000))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), &ErrorKind::PermissionDenied);
    assert_eq!(alpha.quoted.load(Ordering::SeqCst), 0);
    assert_eq!(alpha.submitted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn bad_options_are_refused_before_any_call() {
    let alpha = FakeTrainer::new(Ok(None), Ok(JobId("t".into())));
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&alpha, &ledger);
    let err = gw
        .submit_training_with(&ctx(), request(5))
        .await
        .unwrap_err();
    assert_eq!(err.param(), Some("provider_options.steps"));
    assert_eq!(alpha.quoted.load(Ordering::SeqCst), 0);
    assert!(ledger.admitted.lock().unwrap().is_empty());
}

#[tokio::test]
async fn without_a_quote_the_catalog_prices_the_steps() {
    let alpha = FakeTrainer::new(
        Err(Error::new(ErrorKind::NotFound, "no price endpoint")),
        Ok(JobId("t".into())),
    );
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&alpha, &ledger);
    let sub = gw.submit_training_with(&ctx(), request(500)).await.unwrap();
    assert_eq!(sub.quote, None);
    assert_eq!(sub.estimate.cost, Some("1".parse().unwrap()));
}

#[tokio::test]
async fn a_lost_submit_is_sent_once_and_charged_at_its_reservation() {
    let alpha = FakeTrainer::new(
        Ok(Some("2".parse().unwrap())),
        Err(Error::new(ErrorKind::Timeout, "lost").in_doubt()),
    );
    let ledger = Arc::new(Ledger::default());
    let gw = gateway(&alpha, &ledger);
    let err = gw
        .submit_training_with(&ctx(), request(1000))
        .await
        .unwrap_err();
    assert!(err.is_in_doubt(), "{err}");
    assert_eq!(alpha.submitted.load(Ordering::SeqCst), 1);
    let settled = ledger.settled.lock().unwrap().clone();
    assert_eq!(settled.len(), 1);
    let (_, record) = &settled[0];
    assert!(record.billable && record.estimated, "{record:?}");
    assert_eq!(record.cost, Some("2".parse().unwrap()));
}

#[tokio::test]
async fn providers_without_training_are_refused_by_name() {
    let mut registry = Registry::new();
    registry.add_training(FakeTrainer::new(Ok(None), Ok(JobId("t".into()))));
    let gw = Gateway::new(registry);
    let route = RouteId::new("alpha", "flux");
    assert_eq!(gw.lora_model(&route).unwrap().model, "flux-lora");
    let err = no_fine_tuning("gemini");
    assert_eq!(err.kind(), &ErrorKind::InvalidRequest);
    assert_eq!(err.param(), Some("model"));
    assert!(err.message().contains("May 2025"), "{err}");
}
