//! The JSON of Serper's search endpoints, field for field.
//!
//! Serper publishes no reference beyond its playground (<https://serper.dev/playground>), so the
//! field names come from what it answers: the recorded answers of LangChain's Serper notebook
//! (<https://github.com/langchain-ai/langchain/blob/ec153b5398d362a8cc8ebdac00ece19e8910da63/docs/docs/integrations/tools/google_serper.ipynb>),
//! LiteLLM's typed request
//! (<https://github.com/BerriAI/litellm/blob/84129010b38cac1f4c97e25beef31edd2b6b16bc/litellm/llms/serper/search/transformation.py>)
//! and the API Evangelist OpenAPI transcription
//! (<https://github.com/api-evangelist/serper/blob/0847b086c6743bd84bf11ced77141c12df8ceb4d/openapi/serper-google-search-api-openapi.yml>).
//!
//! Outbound types leave out what is not set; inbound types accept fields they do not name and
//! read a `null` like a missing field, since every item field is optional in practice.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value};

/// The body of `POST /search`, `/news` and `/images` (one shape for every search type).
///
/// Fields: `q`, `num`, `gl`, `hl`, `tbs`, and Serper's own `page`, `location`, `autocorrect`
/// (passed in `options`), per LiteLLM's `SerperSearchRequest`
/// (<https://github.com/BerriAI/litellm/blob/84129010b38cac1f4c97e25beef31edd2b6b16bc/litellm/llms/serper/search/transformation.py>)
/// and the transcribed `SearchRequest` schema
/// (<https://github.com/api-evangelist/serper/blob/0847b086c6743bd84bf11ced77141c12df8ceb4d/openapi/serper-google-search-api-openapi.yml>).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct SearchRequest {
    /// The query, with any `site:` clauses of `include_domains` added.
    pub(crate) q: String,
    /// Results per page (default 10, at most 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) num: Option<u32>,
    /// Google's country (`us`), lower case.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) gl: Option<String>,
    /// Google's interface language (`en`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hl: Option<String>,
    /// Google's time filter: `qdr:d`, `qdr:w`, `qdr:m`, `qdr:y`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tbs: Option<String>,
    /// Serper's other fields, checked by name and passed as given.
    #[serde(flatten)]
    pub(crate) options: Map<String, Value>,
}

/// The answer of every search type: the list that type fills, Google's answer box (web search
/// only) and the credits the call used.
///
/// `credits` is a top-level integer in answers since at least 2025 (it is absent from the 2023
/// recordings); see `organic`, `news` and `images` in the LangChain recordings linked above.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchResponse {
    /// Web results (`/search`).
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) organic: Vec<Organic>,
    /// News articles (`/news`).
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) news: Vec<News>,
    /// Images (`/images`).
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) images: Vec<Image>,
    /// Google's direct answer, when it shows one (`/search`).
    #[serde(default)]
    pub(crate) answer_box: Option<AnswerBox>,
    /// The credits this call used.
    #[serde(default)]
    pub(crate) credits: Option<Number>,
}

/// One `organic[]` web result: `title`, `link`, `snippet`, `date` (text as Google shows it:
/// `"Dec 20, 2023"`, `"2 days ago"`), plus `position`, `sitelinks`, `attributes`, `imageUrl`
/// the gateway does not use.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Organic {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) title: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) link: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) snippet: String,
    #[serde(default)]
    pub(crate) date: Option<String>,
}

/// One `news[]` article: `title`, `link`, `snippet`, `date` (`"5 mins ago"`), `source` (the
/// publisher), plus `imageUrl` (a thumbnail) and `position`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct News {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) title: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) link: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) snippet: String,
    #[serde(default)]
    pub(crate) date: Option<String>,
    #[serde(default)]
    pub(crate) source: Option<String>,
}

/// One `images[]` item: `title`, `link` (the page the image is on), `source` (the site's name),
/// `domain`, `imageUrl` (the image), plus `imageWidth`, `imageHeight`, `thumbnailUrl`,
/// `thumbnailWidth`, `thumbnailHeight`, `googleUrl` and `position`, which the gateway does not
/// read.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Image {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) title: String,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) link: String,
    #[serde(default)]
    pub(crate) source: Option<String>,
    #[serde(default)]
    pub(crate) domain: Option<String>,
    #[serde(default, rename = "imageUrl")]
    pub(crate) image_url: Option<String>,
}

/// `answerBox`: `{title, answer | snippet, snippetHighlighted[], link}`; LangChain reads
/// `answer`, then `snippet`
/// (<https://github.com/langchain-ai/langchain-community/blob/bc87773064735e649cfd798185502e156d5e948a/libs/community/langchain_community/utilities/google_serper.py#L116-L123>).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct AnswerBox {
    #[serde(default)]
    pub(crate) answer: Option<String>,
    #[serde(default)]
    pub(crate) snippet: Option<String>,
}

/// An error answer: `{"message": "Unauthorized.", "statusCode": 403}`
/// (<https://github.com/MiroMindAI/MiroFlow/issues/7>).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// A field that may be missing or `null`: its default either way.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
