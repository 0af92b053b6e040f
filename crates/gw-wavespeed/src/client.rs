//! The WaveSpeedAI client: configuration, and the one HTTP client, downloader and poll policy.

use std::sync::Arc;
use std::time::Duration;

use gateway_core::http::reqwest;
use gateway_core::http::{
    Auth, DownloadPolicy, DownloadSettings, Downloader, Upstream, UpstreamBuilder,
};
use gateway_core::{PollPolicy, ProviderConfig, Result, SecretString};

use crate::{DEFAULT_BASE, DEFAULT_ENV, PROVIDER, WaveSpeedConfig};

/// The first wait before a poll: the official SDK polls every second
/// (<https://github.com/WaveSpeedAI/wavespeed-python/blob/a4207182c5f22beed7e5e797abd655f99110427f/src/wavespeed/api/client.py>,
/// `run(poll_interval=1.0)`).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The longest wait between two polls.
pub const DEFAULT_POLL_MAX_INTERVAL: Duration = Duration::from_secs(5);

/// The longest a task is awaited, from its submission: five minutes, far above an image's usual
/// seconds. A task still running then is reported as a timeout naming it; it goes on at
/// WaveSpeed.
pub const DEFAULT_JOB_TIMEOUT: Duration = Duration::from_secs(300);

#[doc = include_str!("docs.md")]
#[derive(Clone, Debug)]
pub struct WaveSpeedClient {
    pub(crate) upstream: Arc<Upstream>,
    /// Fetches output URLs when the caller asked for bytes.
    pub(crate) downloader: Downloader,
    pub(crate) poll: PollPolicy,
    pub(crate) sync_mode: bool,
}

impl WaveSpeedClient {
    /// A builder; only the API key is required.
    pub fn builder() -> WaveSpeedClientBuilder {
        WaveSpeedClientBuilder::default()
    }

    /// A client with the key from the `WAVESPEED_API_KEY` environment variable and default
    /// settings. Fails with [`ErrorKind::Unavailable`](gateway_core::ErrorKind::Unavailable)
    /// when the variable is unset or empty.
    pub fn from_env() -> Result<Self> {
        Self::from_config(&ProviderConfig::default())
    }

    /// A client from the `[providers.wavespeed]` configuration: the key from `api_key`, else
    /// from the variable `api_key_env` names (default `WAVESPEED_API_KEY`); `base_url` (default
    /// `https://api.wavespeed.ai`); timeouts; and [`WaveSpeedConfig`] (polling, sync mode,
    /// download limits). An unknown field is [`ErrorKind::Config`](gateway_core::ErrorKind::Config),
    /// naming it.
    pub fn from_config(cfg: &ProviderConfig) -> Result<Self> {
        let own: WaveSpeedConfig = cfg.extra(PROVIDER)?;
        WaveSpeedClientBuilder {
            settings: UpstreamBuilder::from_config(cfg, PROVIDER, DEFAULT_ENV)?,
            config: own,
        }
        .build()
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.upstream.base_url()
    }

    /// How tasks are awaited.
    pub fn poll_policy(&self) -> PollPolicy {
        self.poll
    }

    /// Whether submissions ask for `enable_sync_mode` on the models that document it.
    pub fn sync_mode(&self) -> bool {
        self.sync_mode
    }
}

/// Builds a [`WaveSpeedClient`]. See [`WaveSpeedClient::builder`].
#[derive(Debug, Default, Clone)]
pub struct WaveSpeedClientBuilder {
    settings: UpstreamBuilder,
    config: WaveSpeedConfig,
}

impl WaveSpeedClientBuilder {
    /// The WaveSpeedAI API key. Required. Sent only as `Authorization: Bearer <key>`.
    pub fn api_key(mut self, api_key: impl Into<SecretString>) -> Self {
        self.settings.api_key(api_key.into());
        self
    }

    /// The base URL (default `https://api.wavespeed.ai`): a proxy, or a mock in tests. Every
    /// call, polls included, goes there, never to the host a task's `urls.get` names.
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.settings.base_url(base_url.into());
        self
    }

    /// The HTTP client to use, e.g. one shared by several providers. Its timeouts apply.
    pub fn http(mut self, http: reqwest::Client) -> Self {
        self.settings.http(http);
        self
    }

    /// How tasks are awaited: the first wait, the longest wait between polls, and the longest
    /// the whole wait may take (defaults [`DEFAULT_POLL_INTERVAL`],
    /// [`DEFAULT_POLL_MAX_INTERVAL`], [`DEFAULT_JOB_TIMEOUT`]).
    pub fn poll_policy(mut self, policy: PollPolicy) -> Self {
        self.config.poll_interval_ms = Some(policy.first_interval.as_millis() as u64);
        self.config.poll_max_interval_ms = Some(policy.max_interval.as_millis() as u64);
        self.config.job_timeout_ms = Some(policy.deadline.as_millis() as u64);
        self
    }

    /// Asks the models that document it to answer the submission with the finished task
    /// (`enable_sync_mode: true`); a task that outlasts WaveSpeed's sync wait is polled.
    pub fn sync_mode(mut self, on: bool) -> Self {
        self.config.enable_sync_mode = Some(on);
        self
    }

    /// Limits on the output images downloaded when a caller asks for bytes and WaveSpeed
    /// answers with URLs.
    pub fn downloads(mut self, downloads: DownloadSettings) -> Self {
        self.config.downloads = downloads;
        self
    }

    /// The client. Fails with [`ErrorKind::Config`](gateway_core::ErrorKind::Config) without a
    /// usable key, with a base URL that is not http(s), or with a poll interval above its
    /// maximum.
    pub fn build(self) -> Result<WaveSpeedClient> {
        let c = &self.config;
        let ms = |v: Option<u64>, default: Duration| v.map_or(default, Duration::from_millis);
        let poll = PollPolicy {
            first_interval: ms(c.poll_interval_ms, DEFAULT_POLL_INTERVAL),
            max_interval: ms(c.poll_max_interval_ms, DEFAULT_POLL_MAX_INTERVAL),
            deadline: ms(c.job_timeout_ms, DEFAULT_JOB_TIMEOUT),
        };
        let config_error = |m: &str| {
            gateway_core::Error::new(gateway_core::ErrorKind::Config, m).with_provider(PROVIDER)
        };
        if poll.first_interval > poll.max_interval {
            return Err(config_error(
                "providers.wavespeed.poll_interval_ms is above poll_max_interval_ms",
            ));
        }
        if poll.deadline.is_zero() {
            return Err(config_error(
                "providers.wavespeed.job_timeout_ms must be above 0",
            ));
        }
        let downloader = Downloader::new(c.downloads.apply(DownloadPolicy::default()))
            .map_err(|e| e.with_provider(PROVIDER))?;
        Ok(WaveSpeedClient {
            upstream: Arc::new(self.settings.build(PROVIDER, DEFAULT_BASE, Auth::Bearer)?),
            downloader,
            poll,
            sync_mode: c.enable_sync_mode.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_core::ErrorKind;

    #[test]
    fn settings_follow_the_shared_rules() {
        gateway_core::testing::client_settings(&gateway_core::testing::ClientSettings {
            provider: PROVIDER,
            default_base_url: "https://api.wavespeed.ai",
            builder: WaveSpeedClient::builder,
            api_key: |b, k| b.api_key(k),
            base_url: |b, u| b.base_url(u),
            build: WaveSpeedClientBuilder::build,
            from_config: WaveSpeedClient::from_config,
            client_base_url: WaveSpeedClient::base_url,
        });
    }

    fn config(extra: &str) -> ProviderConfig {
        let mut cfg = ProviderConfig {
            api_key: Some("k".into()),
            ..ProviderConfig::default()
        };
        cfg.extra = toml::from_str(extra).unwrap();
        cfg
    }

    #[test]
    fn polling_and_sync_mode_come_from_the_section() {
        let c = WaveSpeedClient::from_config(&config("")).unwrap();
        assert_eq!(
            c.poll_policy(),
            PollPolicy {
                first_interval: DEFAULT_POLL_INTERVAL,
                max_interval: DEFAULT_POLL_MAX_INTERVAL,
                deadline: DEFAULT_JOB_TIMEOUT,
            }
        );
        assert!(!c.sync_mode());
        let c = WaveSpeedClient::from_config(&config(
            "poll_interval_ms = 0\npoll_max_interval_ms = 50\njob_timeout_ms = 900\nenable_sync_mode = true\n[downloads]\nmax_bytes = 1000\n",
        ))
        .unwrap();
        assert_eq!(c.poll_policy().first_interval, Duration::ZERO);
        assert_eq!(c.poll_policy().max_interval, Duration::from_millis(50));
        assert_eq!(c.poll_policy().deadline, Duration::from_millis(900));
        assert!(c.sync_mode());
        assert_eq!(c.downloader.policy().max_bytes, 1000);

        for bad in [
            "poll_every = 1",
            "poll_interval_ms = \"fast\"",
            "poll_interval_ms = 9000\npoll_max_interval_ms = 10",
            "job_timeout_ms = 0",
        ] {
            let e = WaveSpeedClient::from_config(&config(bad)).unwrap_err();
            assert_eq!(e.kind(), &ErrorKind::Config, "{bad}: {e}");
            assert_eq!(e.provider(), PROVIDER);
        }
    }
}
