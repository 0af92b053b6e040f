//! The registry of configured providers, per modality.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::text::DynTextModel;

/// Configured providers by id, per modality. Providers add themselves with their `register` fn.
#[derive(Default, Clone)]
pub struct Registry {
    text: BTreeMap<&'static str, Arc<dyn DynTextModel>>,
    models: BTreeMap<&'static str, Vec<String>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the text provider `model.provider_dyn()`.
    pub fn add_text(&mut self, model: Arc<dyn DynTextModel>) {
        self.text.insert(model.provider_dyn(), model);
    }

    /// The text provider with id `provider`.
    pub fn text(&self, provider: &str) -> Option<&Arc<dyn DynTextModel>> {
        self.text.get(provider)
    }

    /// Announces `models` (provider-local ids) of `provider` for listing.
    pub fn announce_models(
        &mut self,
        provider: &'static str,
        models: impl IntoIterator<Item = String>,
    ) {
        self.models.entry(provider).or_default().extend(models);
    }

    /// Every announced model as `<provider>/<model id>`, sorted.
    pub fn model_names(&self) -> Vec<String> {
        self.models
            .iter()
            .flat_map(|(p, ms)| ms.iter().map(move |m| format!("{p}/{m}")))
            .collect()
    }

    /// The ids of all registered providers, sorted.
    pub fn providers(&self) -> Vec<&'static str> {
        self.text.keys().copied().collect()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("text", &self.text.keys().collect::<Vec<_>>())
            .finish()
    }
}
