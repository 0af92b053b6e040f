//! The models this crate knows: what each does and the input fields it documents.
//!
//! Each entry is read from the model's own documentation (its `llms.txt`, API page or the
//! official agent skill), cited on the entry. A model missing here is still served, with the
//! generic mapping of [`GENERIC`]: the gateway cannot check it before the call, and its price is
//! unknown unless the operator adds one.

use gateway_core::EditKind;

/// How a model takes its size: `size` as `"WIDTH*HEIGHT"`, each side in `min..=max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub min: u32,
    pub max: u32,
}

/// Whether an edit model takes a prompt, and must have one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prompt {
    /// The model has no prompt field: a prompt the caller sends is not passed on (OpenAI's edits
    /// form requires one, so clients send one anyway).
    None,
    Optional,
    Required,
}

/// What an edit model does and how it takes its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EditSpec {
    pub kind: EditKind,
    /// The field of the (first) image: `image`.
    pub image_field: &'static str,
    /// Takes an array of images in `images` instead, up to this many.
    pub images_array: Option<u32>,
    pub prompt: Prompt,
    /// The mask field (`mask_image`) and whether the model needs it.
    pub mask: Option<(&'static str, bool)>,
    /// For face swap: the field of the second image, the face put onto the first.
    pub face_field: Option<&'static str>,
    /// The image-eraser takes a mask or a prompt saying what to erase; one of them is needed.
    pub mask_or_prompt: bool,
}

/// One model of WaveSpeed's catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ModelSpec {
    pub id: &'static str,
    /// Generates from a prompt alone.
    pub generation: bool,
    /// Edits given images.
    pub edit: Option<EditSpec>,
    /// `size` (`W*H`), when the model takes one.
    pub sizes: Option<Sizes>,
    /// The most images one task makes, through `num_images` when above 1.
    pub max_n: u32,
    /// Takes `seed`.
    pub seed: bool,
    /// The `output_format` values it documents (empty: no such field).
    pub output_formats: &'static [&'static str],
    /// Documents `enable_base64_output` (outputs as bare base64).
    pub base64: bool,
    /// Documents `enable_sync_mode`.
    pub sync: bool,
    /// Its other documented fields, passed on from `options`.
    pub options: &'static [&'static str],
    /// How many LoRAs `options.loras` may carry (`[{path, scale}]`); 0: the model takes none.
    pub max_loras: u32,
}

impl ModelSpec {
    /// Whether this is a model of the table, rather than [`GENERIC`].
    pub(crate) fn is_known(&self) -> bool {
        !self.id.is_empty()
    }
}

const JPEG_PNG: &[&str] = &["jpeg", "png"];
const JPEG_PNG_WEBP: &[&str] = &["jpeg", "png", "webp"];

/// The models, from their documentation.
pub(crate) const MODELS: &[ModelSpec] = &[
    // https://wavespeed.ai/docs/docs-api/flux-dev (v3 request example and parameter table:
    // prompt, image, mask_image, strength, size, num_inference_steps, seed, guidance_scale,
    // num_images, output_format, enable_base64_output, enable_safety_checker, enable_sync_mode),
    // https://wavespeed.ai/docs-api/flux-dev ("Export as JPEG or PNG", $0.012 x num_images;
    // "512 ~ 1536 per dimension"); num_images 1..4 in WaveSpeed's ComfyUI node
    // (https://github.com/WaveSpeedAI/wavespeed-comfyui/blob/6b1425b80d44675d616b8acb3d1f2e40092f23fd/py/flux_dev.py).
    // With `image` it edits: image-to-image from the prompt, inpainting with `mask_image`.
    ModelSpec {
        id: "wavespeed-ai/flux-dev",
        generation: true,
        edit: Some(EditSpec {
            kind: EditKind::Edit,
            image_field: "image",
            images_array: None,
            prompt: Prompt::Required,
            mask: Some(("mask_image", false)),
            face_field: None,
            mask_or_prompt: false,
        }),
        sizes: Some(Sizes {
            min: 512,
            max: 1536,
        }),
        max_n: 4,
        seed: true,
        output_formats: JPEG_PNG,
        base64: true,
        sync: true,
        options: &[
            "strength",
            "num_inference_steps",
            "guidance_scale",
            "enable_safety_checker",
        ],
        max_loras: 0,
    },
    // https://wavespeed.ai/docs/docs-api/flux-schnell (v3 request example: prompt, size,
    // num_images, seed, output_format "jpeg", enable_base64_output, enable_sync_mode) and
    // https://wavespeed.ai/docs/docs-api/wavespeed-ai/flux-schnell; sizes 512..1536 and
    // num_images 1..4 from WaveSpeed's ComfyUI request model
    // (https://github.com/WaveSpeedAI/wavespeed-comfyui/blob/6b1425b80d44675d616b8acb3d1f2e40092f23fd/py/wavespeed_api/requests/flux_schnell.py).
    // Its `image`/`mask_image` are "if enabled in your deployment": not offered for edits.
    ModelSpec {
        id: "wavespeed-ai/flux-schnell",
        generation: true,
        edit: None,
        sizes: Some(Sizes {
            min: 512,
            max: 1536,
        }),
        max_n: 4,
        seed: true,
        output_formats: &["jpeg"],
        base64: true,
        sync: true,
        options: &[
            "num_inference_steps",
            "guidance_scale",
            "enable_safety_checker",
        ],
        max_loras: 0,
    },
    // The official agent skill
    // (https://github.com/WaveSpeedAI/agent-skills/blob/4dedf7c7ef7a0169035fe15c1b6aec0677872e0f/skills/wavespeed-seedream-45/SKILL.md):
    // `prompt`, `size` "WIDTH*HEIGHT", each side 1024..4096; $0.04 per image.
    ModelSpec {
        id: "bytedance/seedream-v4.5",
        generation: true,
        edit: None,
        sizes: Some(Sizes {
            min: 1024,
            max: 4096,
        }),
        max_n: 1,
        seed: false,
        output_formats: &[],
        base64: false,
        sync: false,
        options: &[],
        max_loras: 0,
    },
    // The same skill: `images` (1..10 URLs), `prompt`, `size`; an edit from the prompt, no mask.
    ModelSpec {
        id: "bytedance/seedream-v4.5/edit",
        generation: false,
        edit: Some(EditSpec {
            kind: EditKind::Edit,
            image_field: "images",
            images_array: Some(10),
            prompt: Prompt::Required,
            mask: None,
            face_field: None,
            mask_or_prompt: false,
        }),
        sizes: Some(Sizes {
            min: 1024,
            max: 4096,
        }),
        max_n: 1,
        seed: false,
        output_formats: &[],
        base64: false,
        sync: false,
        options: &[],
        max_loras: 0,
    },
    // https://wavespeed.ai/models/wavespeed-ai/image-eraser/llms.txt: `image` (required),
    // `mask_image` (white = erase), `prompt` ("the objects or areas to be removed"),
    // `output_format` jpeg/png/webp, `enable_base64_output`, `enable_sync_mode`; $0.025 per run
    // (https://wavespeed.ai/models/wavespeed-ai/image-eraser).
    ModelSpec {
        id: "wavespeed-ai/image-eraser",
        generation: false,
        edit: Some(EditSpec {
            kind: EditKind::Edit,
            image_field: "image",
            images_array: None,
            prompt: Prompt::Optional,
            mask: Some(("mask_image", false)),
            face_field: None,
            mask_or_prompt: true,
        }),
        sizes: None,
        max_n: 1,
        seed: false,
        output_formats: JPEG_PNG_WEBP,
        base64: true,
        sync: true,
        options: &[],
        max_loras: 0,
    },
    // https://wavespeed.ai/models/wavespeed-ai/flux-v1-pro/erase/llms.txt: `image`, `mask_image`
    // (both required; white = erase), `dilate_pixels`; $0.08 per run
    // (https://wavespeed.ai/models/wavespeed-ai/flux-v1-pro/erase). Neither base64 output nor a
    // sync mode is documented.
    ModelSpec {
        id: "wavespeed-ai/flux-v1-pro/erase",
        generation: false,
        edit: Some(EditSpec {
            kind: EditKind::Edit,
            image_field: "image",
            images_array: None,
            prompt: Prompt::None,
            mask: Some(("mask_image", true)),
            face_field: None,
            mask_or_prompt: false,
        }),
        sizes: None,
        max_n: 1,
        seed: false,
        output_formats: &[],
        base64: false,
        sync: false,
        options: &["dilate_pixels"],
        max_loras: 0,
    },
    // https://wavespeed.ai/docs/docs-api/image-background-remover: `image`,
    // `enable_base64_output`, `enable_sync_mode`; $0.01 per image
    // (https://wavespeed.ai/docs/docs-api/wavespeed-ai/image-background-remover).
    ModelSpec {
        id: "wavespeed-ai/image-background-remover",
        generation: false,
        edit: Some(EditSpec {
            kind: EditKind::RemoveBackground,
            image_field: "image",
            images_array: None,
            prompt: Prompt::None,
            mask: None,
            face_field: None,
            mask_or_prompt: false,
        }),
        sizes: None,
        max_n: 1,
        seed: false,
        output_formats: &[],
        base64: true,
        sync: true,
        options: &[],
        max_loras: 0,
    },
    // https://wavespeed.ai/docs-api/image-face-swap: `image` ("the image that contains the face
    // to be replaced"), `face_image` ("the face image as reference"), `target_index` 0..10,
    // `output_format`, `enable_base64_output`, `enable_safety_checker`, `enable_sync_mode`; the
    // official skill gives jpeg/png/webp and $0.01 per image
    // (https://github.com/WaveSpeedAI/agent-skills/blob/4dedf7c7ef7a0169035fe15c1b6aec0677872e0f/skills/wavespeed-face-swapper/SKILL.md).
    ModelSpec {
        id: "wavespeed-ai/image-face-swap",
        generation: false,
        edit: Some(EditSpec {
            kind: EditKind::FaceSwap,
            image_field: "image",
            images_array: None,
            prompt: Prompt::None,
            mask: None,
            face_field: Some("face_image"),
            mask_or_prompt: false,
        }),
        sizes: None,
        max_n: 1,
        seed: false,
        output_formats: JPEG_PNG_WEBP,
        base64: true,
        sync: true,
        options: &["target_index", "enable_safety_checker"],
        max_loras: 0,
    },
    // The LoRA models: each serves the LoRAs its trainer family makes (`crate::training`), as
    // `loras: [{path, scale}]`.
    //
    // https://wavespeed.ai/docs/docs-api/wavespeed-ai/flux-dev-lora (parameter table: prompt,
    // image, mask_image, strength 0..1, loras "max 4 items" with `path` and `scale` 0.0..4.0,
    // size 256..1536 per dimension, num_inference_steps, guidance_scale, num_images 1..4, seed,
    // output_format jpeg/png/webp, enable_base64_output, enable_sync_mode; "$0.015 per image").
    // With `image` it edits as flux-dev does.
    ModelSpec {
        id: "wavespeed-ai/flux-dev-lora",
        generation: true,
        edit: Some(EditSpec {
            kind: EditKind::Edit,
            image_field: "image",
            images_array: None,
            prompt: Prompt::Required,
            mask: Some(("mask_image", false)),
            face_field: None,
            mask_or_prompt: false,
        }),
        sizes: Some(Sizes {
            min: 256,
            max: 1536,
        }),
        max_n: 4,
        seed: true,
        output_formats: JPEG_PNG_WEBP,
        base64: true,
        sync: true,
        options: &["strength", "num_inference_steps", "guidance_scale"],
        max_loras: 4,
    },
    // https://wavespeed.ai/docs/docs-api/wavespeed-ai/qwen-image-text-to-image-lora (parameter
    // table: prompt, size 256..1536 per dimension, loras "max 3 items" with `path` and `scale`
    // 0.0..4.0, seed, output_format jpeg/png/webp, enable_sync_mode, enable_base64_output; no
    // num_images; "$0.025 per image").
    ModelSpec {
        id: "wavespeed-ai/qwen-image/text-to-image-lora",
        generation: true,
        edit: None,
        sizes: Some(Sizes {
            min: 256,
            max: 1536,
        }),
        max_n: 1,
        seed: true,
        output_formats: JPEG_PNG_WEBP,
        base64: true,
        sync: true,
        options: &[],
        max_loras: 3,
    },
    // https://wavespeed.ai/models/wavespeed-ai/z-image/turbo-lora/llms.txt (input schema:
    // prompt, loras "max 3", size 256..1536, seed, output_format jpeg/png/webp,
    // enable_sync_mode) and https://wavespeed.ai/docs/docs-api/z-image-turbo-lora ("up to 3
    // LoRAs"). The scale range is unverified for this model (0.0..4.0 as on the other LoRA
    // models), and so is `enable_base64_output` (not read on the page: bytes are downloaded).
    // Its price is unverified too: it has no entry in pricing.toml.
    ModelSpec {
        id: "wavespeed-ai/z-image/turbo-lora",
        generation: true,
        edit: None,
        sizes: Some(Sizes {
            min: 256,
            max: 1536,
        }),
        max_n: 1,
        seed: true,
        output_formats: JPEG_PNG_WEBP,
        base64: false,
        sync: true,
        options: &[],
        max_loras: 3,
    },
];

/// A model this crate does not know: everything passes, as the official AI SDK provider maps
/// it (`prompt`, `size` as `W*H`, `seed`, one image as `image` and several as `images`, the mask
/// as `mask_image`; `wavespeed-image-model.ts`,
/// <https://github.com/WaveSpeedAI/ai-sdk-provider/blob/5dca52de6a6e8655a0c2bcf708c329bd511a71e6/src/wavespeed-image-model.ts>),
/// plus `num_images` when more than one image is asked for, `output_format`, `negative_prompt`,
/// `aspect_ratio`, and every option as given.
pub(crate) const GENERIC: ModelSpec = ModelSpec {
    id: "",
    generation: true,
    edit: None,
    sizes: None,
    max_n: u32::MAX,
    seed: true,
    output_formats: &[],
    base64: false,
    sync: false,
    options: &[],
    max_loras: 0,
};

/// The table's entry for `id`, or [`GENERIC`].
pub(crate) fn spec(id: &str) -> &'static ModelSpec {
    MODELS.iter().find(|m| m.id == id).unwrap_or(&GENERIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_model_does_something_and_ids_are_unique() {
        for (i, m) in MODELS.iter().enumerate() {
            assert!(m.generation || m.edit.is_some(), "{}", m.id);
            assert!(m.max_n >= 1, "{}", m.id);
            assert!(
                MODELS[i + 1..].iter().all(|other| other.id != m.id),
                "{} twice",
                m.id
            );
            if let Some(edit) = m.edit {
                assert_eq!(
                    edit.face_field.is_some(),
                    edit.kind == EditKind::FaceSwap,
                    "{}",
                    m.id
                );
            }
        }
        assert!(spec("wavespeed-ai/flux-dev").is_known());
        assert!(!spec("someone/new-model").is_known());
        // Only the LoRA models take LoRAs, each within its page's limit.
        for m in MODELS {
            assert_eq!(m.max_loras > 0, m.id.ends_with("-lora"), "{}", m.id);
        }
        assert_eq!(spec("wavespeed-ai/flux-dev-lora").max_loras, 4);
        assert_eq!(
            spec("wavespeed-ai/qwen-image/text-to-image-lora").max_loras,
            3
        );
        assert_eq!(spec("wavespeed-ai/z-image/turbo-lora").max_loras, 3);
    }
}
