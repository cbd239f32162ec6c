//! LLM architecture files (`--model FILE`, `serving.model = { ... }`): the file-format mirror of
//! [`ModelSpec`], its parser with located errors, and `--model` resolution (a built-in name or a file).

use crate::domain::llm::{builtin, builtin_names, ModelSpec};
use crate::error::{line_col, InputError, Location};
use serde::Deserialize;
use std::path::Path;

/// A model as written in a file; becomes a [`ModelSpec`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Name used on the command line and in reports.
    pub name: String,
    /// Parameter count (all weights, embeddings included).
    pub params: f64,
    /// Transformer layers.
    pub layers: u32,
    /// Hidden (model) dimension.
    pub hidden: u32,
    /// Query attention heads.
    pub attention_heads: u32,
    /// Key/value heads (fewer than query heads under grouped-query attention).
    pub kv_heads: u32,
    /// Dimension of one attention head.
    pub head_dim: u32,
    /// Bytes per weight and per KV element (2 for BF16/FP16, 1 for FP8).
    pub bytes_per_element: u32,
    /// MLP intermediate dimension; absent: derived from `params` (see [`derived_ffn_hidden`]).
    #[serde(default)]
    pub ffn_hidden: Option<u32>,
    /// Vocabulary size; absent: 32,000 (Llama 2's).
    #[serde(default)]
    pub vocab: Option<u32>,
}

/// Vocabulary assumed when a model file gives none (Llama 2's).
pub const DEFAULT_VOCAB: u32 = 32_000;

/// The gated-MLP intermediate size that makes a Llama-style model of these dimensions have `params`
/// parameters: `params = 2 * vocab * h + layers * (2 h (heads + kv_heads) head_dim + 3 h ffn + 2 h) + h`,
/// solved for `ffn` (at least 1).
pub fn derived_ffn_hidden(f: &ModelFile, vocab: u32) -> u32 {
    let h = f64::from(f.hidden);
    let attn =
        2.0 * h * f64::from(f.attention_heads + f.kv_heads) * f64::from(f.head_dim) + 2.0 * h;
    let per_layer = (f.params - 2.0 * f64::from(vocab) * h - h) / f64::from(f.layers.max(1));
    let ffn = (per_layer - attn) / (3.0 * h.max(1.0));
    if ffn.is_finite() && ffn >= 1.0 {
        ffn.round().min(f64::from(u32::MAX)) as u32
    } else {
        1
    }
}

impl From<ModelFile> for ModelSpec {
    fn from(f: ModelFile) -> ModelSpec {
        let vocab = f.vocab.unwrap_or(DEFAULT_VOCAB);
        let ffn_hidden = f
            .ffn_hidden
            .unwrap_or_else(|| derived_ffn_hidden(&f, vocab));
        ModelSpec {
            name: f.name,
            params: f.params,
            layers: f.layers,
            hidden: f.hidden,
            attention_heads: f.attention_heads,
            kv_heads: f.kv_heads,
            head_dim: f.head_dim,
            bytes_per_element: f.bytes_per_element,
            ffn_hidden,
            vocab,
        }
    }
}

/// Parses a model spec from TOML, or JSON when `json` is set; errors carry line:column.
pub fn parse_spec(text: &str, file: &str, json: bool) -> Result<ModelSpec, InputError> {
    let spec: ModelFile = if json {
        serde_json::from_str(text).map_err(|e| {
            let msg = e.to_string();
            let msg = msg.rfind(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
            InputError::new(file, Location::LineCol(e.line(), e.column()), msg)
        })?
    } else {
        toml::from_str(text).map_err(|e| {
            let loc = match e.span() {
                Some(span) => {
                    let (l, c) = line_col(text, span.start);
                    Location::LineCol(l, c)
                }
                None => Location::File,
            };
            InputError::new(file, loc, e.message().trim())
        })?
    };
    let spec = ModelSpec::from(spec);
    spec.validate(file)?;
    Ok(spec)
}

/// Resolves `--model`: a built-in name, or a `.toml`/`.json` file holding a [`ModelSpec`].
pub fn resolve(arg: &str) -> anyhow::Result<ModelSpec> {
    if let Some(m) = builtin(arg) {
        return Ok(m);
    }
    let path = Path::new(arg);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("toml") | Some("json") => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                InputError::new(arg, Location::File, format!("cannot read model file: {e}"))
            })?;
            Ok(parse_spec(&text, arg, ext.as_deref() == Some("json"))?)
        }
        _ => Err(InputError::new(
            "--model",
            Location::File,
            format!(
                "unknown model `{arg}`; built in: {}, or a .toml/.json file with name, params, layers, \
                 hidden, attention_heads, kv_heads, head_dim, bytes_per_element (and optionally ffn_hidden, vocab)",
                builtin_names()
            ),
        )
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ffn_hidden_recovers_the_built_in_models() {
        // A model file without ffn_hidden gets the MLP size that makes its parameter count add up: for the
        // built-ins (given their vocabulary) that is their published intermediate size.
        for m in crate::domain::llm::builtin_models() {
            let f = ModelFile {
                name: m.name.clone(),
                params: m.params,
                layers: m.layers,
                hidden: m.hidden,
                attention_heads: m.attention_heads,
                kv_heads: m.kv_heads,
                head_dim: m.head_dim,
                bytes_per_element: m.bytes_per_element,
                ffn_hidden: None,
                vocab: Some(m.vocab),
            };
            assert_eq!(derived_ffn_hidden(&f, m.vocab), m.ffn_hidden, "{}", m.name);
            assert_eq!(ModelSpec::from(f), m);
        }
    }

    #[test]
    fn spec_files_parse_and_bad_ones_are_located() {
        let good =
            "name = \"tiny\"\nparams = 1e9\nlayers = 16\nhidden = 2048\nattention_heads = 16\n\
                    kv_heads = 4\nhead_dim = 128\nbytes_per_element = 2\n";
        let m = parse_spec(good, "m.toml", false).unwrap();
        assert_eq!(m.kv_bytes_per_token(), 2 * 16 * 4 * 128 * 2);

        let cases: &[(&str, bool, &str)] = &[
            (
                &format!("{good}colour = 3\n"),
                false,
                "m.toml:9:1: unknown field `colour`",
            ),
            (
                &good.replace("layers = 16", "layers = -1"),
                false,
                "m.toml:3:10:",
            ),
            (
                &good.replace("kv_heads = 4", "kv_heads = 3"),
                false,
                "m.toml: field `kv_heads`: must divide attention_heads (16), found 3",
            ),
            (
                &good.replace("head_dim = 128", "head_dim = 0"),
                false,
                "m.toml: field `head_dim`: must be at least 1",
            ),
            (
                "{\"name\": \"x\", \"params\": 1e9}",
                true,
                "m.toml:1:28: missing field `layers`",
            ),
        ];
        for (text, json, want) in cases {
            let err = parse_spec(text, "m.toml", *json).unwrap_err().to_string();
            assert!(err.starts_with(want), "got {err:?}, want prefix {want:?}");
        }
    }

    #[test]
    fn unknown_model_names_the_built_ins() {
        let err = resolve("gpt-5").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err
            .to_string()
            .contains("llama-2-70b, llama-3-8b, llama-3-70b"));
    }
}
