//! The registry of configured providers: one map per modality, the models they announce, and
//! the prices their crates ship.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::embedding::DynEmbeddingModel;
use crate::image::DynImageModel;
use crate::search::DynSearchProvider;
use crate::speech::DynSpeechModel;
use crate::text::DynTextModel;
use crate::training::DynTrainingModel;
use crate::transcription::DynTranscriptionModel;
use crate::video::DynVideoModel;
use crate::{Error, ErrorKind, Modality, ModelEntry, PriceCatalog, Result, RouteId};

/// What a model serves: one per modality trait, as `/v1/models` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Service {
    /// Chat and structured JSON ([`TextModel`](crate::TextModel)).
    Chat,
    /// Embeddings ([`EmbeddingModel`](crate::EmbeddingModel)).
    Embeddings,
    /// Image generation and editing ([`ImageModel`](crate::ImageModel)).
    Images,
    /// Text to speech ([`SpeechModel`](crate::SpeechModel)).
    Speech,
    /// Speech to text ([`TranscriptionModel`](crate::TranscriptionModel)).
    Transcription,
    /// Video ([`VideoModel`](crate::VideoModel)).
    Video,
    /// Web search ([`SearchProvider`](crate::SearchProvider)).
    Search,
    /// Fine-tuning ([`TrainingModel`](crate::TrainingModel)).
    Training,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 8] = [
        Self::Chat,
        Self::Embeddings,
        Self::Images,
        Self::Speech,
        Self::Transcription,
        Self::Video,
        Self::Search,
        Self::Training,
    ];

    /// The name configuration and `/v1/models` use (`chat`, `embeddings`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Embeddings => "embeddings",
            Self::Images => "images",
            Self::Speech => "speech",
            Self::Transcription => "transcription",
            Self::Video => "video",
            Self::Search => "search",
            Self::Training => "training",
        }
    }

    /// The modality plans count this service's usage in: embeddings are planned as text.
    pub fn modality(self) -> Modality {
        match self {
            Self::Chat | Self::Embeddings => Modality::Text,
            Self::Images => Modality::Image,
            Self::Speech | Self::Transcription => Modality::Audio,
            Self::Video => Modality::Video,
            Self::Search => Modality::Search,
            Self::Training => Modality::Training,
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares the registry's per-service maps and their `add_*` / getter methods, so the seven
/// modalities are written once.
macro_rules! services {
    ($( $field:ident : $service:ident => $dyn:ident, $add:ident, $doc:literal; )*) => {
        /// Configured providers by id, one map per service, plus the models they announce and the
        /// prices their crates ship. Providers add themselves with their crate's `register`.
        #[derive(Default, Clone)]
        pub struct Registry {
            $( $field: BTreeMap<&'static str, Arc<dyn $dyn>>, )*
            models: BTreeMap<&'static str, BTreeMap<String, BTreeSet<Service>>>,
            prices: PriceCatalog,
            /// Each provider's host and port, for telemetry.
            addresses: BTreeMap<&'static str, (String, u16)>,
        }

        impl Registry {
            $(
                #[doc = concat!("Adds (or replaces) `model.provider_dyn()` as a provider of ", $doc, ".")]
                pub fn $add(&mut self, model: Arc<dyn $dyn>) {
                    self.$field.insert(model.provider_dyn(), model);
                }

                #[doc = concat!("The provider of ", $doc, " with id `provider`.")]
                pub fn $field(&self, provider: &str) -> Option<&Arc<dyn $dyn>> {
                    self.$field.get(provider)
                }
            )*

            /// The services `provider` is registered for.
            pub fn services_of(&self, provider: &str) -> Vec<Service> {
                let mut out = Vec::new();
                $( if self.$field.contains_key(provider) { out.push(Service::$service); } )*
                out
            }

            /// The ids of every registered provider, sorted.
            pub fn providers(&self) -> Vec<&'static str> {
                let mut ids = BTreeSet::new();
                $( ids.extend(self.$field.keys().copied()); )*
                ids.into_iter().collect()
            }
        }
    };
}

services! {
    text: Chat => DynTextModel, add_text, "chat";
    embedding: Embeddings => DynEmbeddingModel, add_embedding, "embeddings";
    image: Images => DynImageModel, add_image, "images";
    speech: Speech => DynSpeechModel, add_speech, "speech";
    transcription: Transcription => DynTranscriptionModel, add_transcription, "transcription";
    video: Video => DynVideoModel, add_video, "video";
    search: Search => DynSearchProvider, add_search, "search";
    training: Training => DynTrainingModel, add_training, "fine-tuning";
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records where `provider` is reached (`base_url`'s host and port, the scheme's default
    /// when none is written), reported as `server.address` and `server.port` on its spans.
    pub fn set_address(&mut self, provider: &'static str, base_url: &str) {
        let (scheme, rest) = base_url.split_once("://").unwrap_or(("https", base_url));
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        let default_port = if scheme.eq_ignore_ascii_case("http") {
            80
        } else {
            443
        };
        // `[::1]:8080`: the port follows the bracket; `host:8080`: the last colon.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => {
                (host, port.parse().unwrap_or(default_port))
            }
            _ => (authority, default_port),
        };
        self.addresses.insert(provider, (host.to_owned(), port));
    }

    /// Where `provider` is reached: host and port, if recorded.
    pub fn address(&self, provider: &str) -> Option<(&str, u16)> {
        self.addresses
            .get(provider)
            .map(|(host, port)| (host.as_str(), *port))
    }

    /// The static id of the registered provider named `name`.
    pub fn provider_id(&self, name: &str) -> Option<&'static str> {
        self.providers().into_iter().find(|p| *p == name)
    }

    /// Announces `model` (a provider-local id) of `provider` as serving `services`, for listing.
    pub fn announce(
        &mut self,
        provider: &'static str,
        model: impl Into<String>,
        services: &[Service],
    ) {
        self.models
            .entry(provider)
            .or_default()
            .entry(model.into())
            .or_default()
            .extend(services.iter().copied());
    }

    /// Announces the models of `provider`'s configuration (`[providers.<id>] models`): a plain id
    /// serves `default`, a table names its services. Fails, naming the entry, on a service the
    /// provider is not registered for.
    pub fn announce_configured(
        &mut self,
        provider: &'static str,
        default: Service,
        entries: &[ModelEntry],
    ) -> Result<()> {
        let offered = self.services_of(provider);
        for (i, entry) in entries.iter().enumerate() {
            let services = entry.services(default);
            if let Some(missing) = services.iter().find(|s| !offered.contains(s)) {
                return Err(Error::new(
                    ErrorKind::Config,
                    format!(
                        "providers.{provider}.models[{i}]: `{}` is announced for {missing}, which \
                         provider `{provider}` does not serve (it serves: {})",
                        entry.id(),
                        offered
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            self.announce(provider, entry.id(), &services);
        }
        Ok(())
    }

    /// Every announced model with the services it serves, sorted by route.
    pub fn models(&self) -> impl Iterator<Item = (RouteId, &BTreeSet<Service>)> + '_ {
        self.models.iter().flat_map(|(provider, models)| {
            models
                .iter()
                .map(move |(model, services)| (RouteId::new(provider, model.as_str()), services))
        })
    }

    /// Every announced model as `<provider>/<model id>`, sorted.
    pub fn model_names(&self) -> Vec<String> {
        self.models().map(|(route, _)| route.to_string()).collect()
    }

    /// Adds a provider crate's price list (or an operator's overrides) to the prices this
    /// registry's gateway starts from.
    pub fn add_prices(&mut self, prices: PriceCatalog) {
        self.prices.merge(prices);
    }

    /// The prices the registered providers ship, merged.
    pub fn prices(&self) -> &PriceCatalog {
        &self.prices
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Registry");
        for provider in self.providers() {
            d.field(provider, &self.services_of(provider));
        }
        d.finish()
    }
}

#[cfg(test)]
mod address_tests {
    use super::Registry;

    #[test]
    fn addresses_split_host_and_port() {
        let mut reg = Registry::new();
        reg.set_address("a", "https://generativelanguage.googleapis.com/v1beta");
        reg.set_address("b", "http://127.0.0.1:9100/");
        reg.set_address("c", "http://user:secret@[::1]:8080/x?key=1");
        reg.set_address("d", "http://[::1]/");
        assert_eq!(
            reg.address("a"),
            Some(("generativelanguage.googleapis.com", 443))
        );
        assert_eq!(reg.address("b"), Some(("127.0.0.1", 9100)));
        assert_eq!(reg.address("c"), Some(("[::1]", 8080)));
        assert_eq!(reg.address("d"), Some(("[::1]", 80)));
        assert_eq!(reg.address("e"), None);
    }
}
