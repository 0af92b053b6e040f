//! The JSON of the text-to-image calls, per backend, field for field. No logic lives here.
//!
//! Each backend speaks its own format behind the router
//! (<https://huggingface.co/docs/inference-providers/tasks/text-to-image>); the shapes are the
//! ones the official client sends and reads, `huggingface_hub`
//! `src/huggingface_hub/inference/_providers/{hf_inference,fal_ai,together}.py`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `POST /hf-inference/models/{model}`: the classic Inference API body. The answer is the image's
/// raw bytes.
///
/// Source: `hf_inference.py` `HFInferenceTask._prepare_payload_as_dict`
/// (`{"inputs": ..., "parameters": {...}}`); parameters of
/// <https://huggingface.co/docs/inference-providers/tasks/text-to-image#api-specification>.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct HfInferenceRequest {
    /// The prompt.
    pub(crate) inputs: String,
    /// `width`, `height`, `negative_prompt`, `seed`, `num_inference_steps`, `guidance_scale`;
    /// left out when empty.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub(crate) parameters: Map<String, Value>,
}

/// `POST /fal-ai/{fal model id}`: fal's own body.
///
/// Source: `fal_ai.py` `FalAITextToImageTask._prepare_payload_as_dict` (`prompt`, the other
/// parameters as they are, `width`/`height` as `image_size: {width, height}`); the FLUX.1 [dev]
/// schema of <https://fal.ai/models/fal-ai/flux/dev/api> (`num_images`, `seed`,
/// `output_format`, `num_inference_steps`, `guidance_scale`, `enable_safety_checker`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct FalRequest {
    /// The prompt.
    pub(crate) prompt: String,
    /// The size; left out for the model's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) image_size: Option<FalImageSize>,
    /// Images to draw; left out for one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) num_images: Option<u32>,
    /// Sampling seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<i64>,
    /// `jpeg` or `png`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) output_format: Option<String>,
    /// The options passed on (`num_inference_steps`, `guidance_scale`, `enable_safety_checker`).
    #[serde(flatten)]
    pub(crate) options: Map<String, Value>,
}

/// `image_size` as a size (fal also takes names such as `square_hd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct FalImageSize {
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// fal's answer: `images[].url` (the official clients read `images[0].url` and download it).
///
/// Source: `fal_ai.py` `FalAITextToImageTask.get_response`; the output schema of
/// <https://fal.ai/models/fal-ai/flux/dev/api> (`images[] {url, width, height, content_type}`,
/// `seed`, `has_nsfw_concepts`, `prompt`, `timings`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(crate) struct FalResponse {
    #[serde(default)]
    pub(crate) images: Vec<FalImage>,
    /// The seed used.
    #[serde(default)]
    pub(crate) seed: Option<Value>,
    /// Per image: whether fal's safety checker flagged it (and blacked it out).
    #[serde(default)]
    pub(crate) has_nsfw_concepts: Vec<bool>,
}

/// One image of [`FalResponse`].
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(crate) struct FalImage {
    /// A fal CDN URL (or a `data:` URL in fal's sync mode).
    #[serde(default)]
    pub(crate) url: String,
    /// `image/jpeg`, `image/png`.
    #[serde(default)]
    pub(crate) content_type: Option<String>,
}

/// `POST /together/v1/images/generations`: Together's body.
///
/// Source: `together.py` `TogetherTextToImageTask._prepare_payload_as_dict`
/// (`{"prompt", "response_format": "base64", **parameters, "model": provider id}`, with
/// `num_inference_steps` renamed `steps`); <https://docs.together.ai/reference/post-images-generations>.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TogetherRequest {
    /// Together's model id, from the Hub's mapping.
    pub(crate) model: String,
    pub(crate) prompt: String,
    /// Always `base64`, as the official client asks.
    pub(crate) response_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) n: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) negative_prompt: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) steps: Option<Value>,
}

/// Together's answer: `data[].b64_json`.
///
/// Source: `together.py` `TogetherTextToImageTask.get_response` (`data[0]["b64_json"]`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(crate) struct TogetherResponse {
    #[serde(default)]
    pub(crate) data: Vec<TogetherImage>,
}

/// One image of [`TogetherResponse`].
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(crate) struct TogetherImage {
    #[serde(default)]
    pub(crate) b64_json: Option<String>,
}

/// `GET {hub}/api/models/{model}?expand[]=inferenceProviderMapping`: which backends serve a
/// model, under which id, for which task.
///
/// Source: `hf_api.py` `ModelInfo.__init__` (the mapping is an object keyed by provider, or,
/// newer, a list whose entries name their `provider`), `InferenceProviderMapping`
/// (`providerId`, `status` `live|staging|error`, `task`); huggingface.js
/// `packages/inference/src/lib/getInferenceProviderMapping.ts` (the same URL, both forms).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModelInfo {
    #[serde(default)]
    pub(crate) inference_provider_mapping: Option<ProviderMappings>,
}

/// `inferenceProviderMapping` in either form, as a list in the Hub's order (the order the
/// official clients pick the first of when no backend is named).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct ProviderMappings(pub(crate) Vec<ProviderMapping>);

impl<'de> Deserialize<'de> for ProviderMappings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Mappings;
        impl<'de> serde::de::Visitor<'de> for Mappings {
            type Value = ProviderMappings;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list or an object of provider mappings")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(m) = seq.next_element::<ProviderMapping>()? {
                    out.push(m);
                }
                Ok(ProviderMappings(out))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((provider, mut m)) = map.next_entry::<String, ProviderMapping>()? {
                    m.provider = provider;
                    out.push(m);
                }
                Ok(ProviderMappings(out))
            }
        }
        d.deserialize_any(Mappings)
    }
}

/// One backend's entry.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProviderMapping {
    /// The backend (`fal-ai`, `together`, `hf-inference`); the key in the object form.
    #[serde(default)]
    pub(crate) provider: String,
    /// The model's id at the backend (`fal-ai/flux/dev`).
    #[serde(default)]
    pub(crate) provider_id: String,
    /// `live`, `staging` or `error`.
    #[serde(default)]
    pub(crate) status: String,
    /// `text-to-image`, `conversational`, ...
    #[serde(default)]
    pub(crate) task: String,
}
