//! LLM architectures: the few figures a roofline needs (parameters, layers, KV heads, head size, bytes per
//! element). Built-in models carry their published figures; a workload file can describe others with
//! [`ModelSpec`] (read by `input::llm`).

use crate::error::InputError;
use serde::Serialize;

/// One decoder-only transformer, as the performance model sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelSpec {
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
    /// Intermediate (MLP) dimension of the gated MLP (up, gate: hidden -> ffn_hidden; down: back).
    pub ffn_hidden: u32,
    /// Vocabulary size (embedding and LM head rows).
    pub vocab: u32,
}

impl ModelSpec {
    /// KV-cache bytes one token occupies: K and V, every layer, every KV head.
    pub fn kv_bytes_per_token(&self) -> u64 {
        2 * u64::from(self.layers)
            * u64::from(self.kv_heads)
            * u64::from(self.head_dim)
            * u64::from(self.bytes_per_element)
    }

    /// Bytes of all weights.
    pub fn weight_bytes(&self) -> f64 {
        self.params * f64::from(self.bytes_per_element)
    }

    /// Checks that every figure is usable (positive, finite, heads consistent); `file` labels the error.
    pub fn validate(&self, file: &str) -> Result<(), InputError> {
        let bad = |field: &str, msg: String| Err(InputError::field(file, field, msg));
        if self.name.trim().is_empty() {
            return bad("name", "must not be empty".into());
        }
        if !(self.params.is_finite() && self.params >= 1.0) {
            return bad(
                "params",
                format!(
                    "expected a parameter count >= 1 (e.g. 7e9), found {}",
                    self.params
                ),
            );
        }
        for (field, v) in [
            ("layers", self.layers),
            ("hidden", self.hidden),
            ("attention_heads", self.attention_heads),
            ("kv_heads", self.kv_heads),
            ("head_dim", self.head_dim),
            ("bytes_per_element", self.bytes_per_element),
            ("ffn_hidden", self.ffn_hidden),
            ("vocab", self.vocab),
        ] {
            if v == 0 {
                return bad(field, "must be at least 1".into());
            }
        }
        if self.kv_heads > self.attention_heads
            || !self.attention_heads.is_multiple_of(self.kv_heads)
        {
            return bad(
                "kv_heads",
                format!(
                    "must divide attention_heads ({}), found {}",
                    self.attention_heads, self.kv_heads
                ),
            );
        }
        if self.bytes_per_element > 8 {
            return bad(
                "bytes_per_element",
                format!("expected 1 to 8, found {}", self.bytes_per_element),
            );
        }
        Ok(())
    }
}

/// The built-in models. Figures from each model's Hugging Face `config.json` (meta-llama/Llama-2-70b-hf,
/// Meta-Llama-3-8B, Meta-Llama-3-70B); parameter counts are the exact totals those configs give
/// (embeddings + layers + untied LM head), e.g. Llama-3-8B: 2*128256*4096 + 32*218,112,000 + 4096.
pub fn builtin_models() -> Vec<ModelSpec> {
    let llama = |name: &str, params: f64, layers, hidden, heads, ffn_hidden, vocab| ModelSpec {
        name: name.to_string(),
        params,
        layers,
        hidden,
        attention_heads: heads,
        // All three use grouped-query attention with 8 KV heads of 128 dims (Llama 2 used GQA only at 70B).
        kv_heads: 8,
        head_dim: 128,
        bytes_per_element: 2,
        ffn_hidden,
        vocab,
    };
    vec![
        llama(
            "llama-2-70b",
            68_976_648_192.0,
            80,
            8192,
            64,
            28_672,
            32_000,
        ),
        llama("llama-3-8b", 8_030_261_248.0, 32, 4096, 32, 14_336, 128_256),
        llama(
            "llama-3-70b",
            70_553_706_496.0,
            80,
            8192,
            64,
            28_672,
            128_256,
        ),
    ]
}

/// A built-in model by name.
pub fn builtin(name: &str) -> Option<ModelSpec> {
    builtin_models().into_iter().find(|m| m.name == name)
}

/// Comma-separated built-in model names, for error messages.
pub fn builtin_names() -> String {
    builtin_models()
        .iter()
        .map(|m| m.name.clone())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_bytes_per_token_match_hand_computation() {
        // 2 (K,V) * layers * kv_heads * head_dim * 2 bytes.
        let cases = [
            ("llama-3-70b", 2 * 80 * 8 * 128 * 2, 327_680),
            ("llama-2-70b", 2 * 80 * 8 * 128 * 2, 327_680),
            ("llama-3-8b", 2 * 32 * 8 * 128 * 2, 131_072),
        ];
        for (name, formula, hand) in cases {
            let m = builtin(name).unwrap();
            assert_eq!(m.kv_bytes_per_token(), formula, "{name}");
            assert_eq!(m.kv_bytes_per_token(), hand, "{name}");
            m.validate("builtin").unwrap();
        }
    }

    #[test]
    fn parameter_counts_follow_from_the_architecture() {
        // Per layer: q,o = h*h; k,v = h*(kv_heads*head_dim); MLP = 3*h*ffn; two RMSNorms = 2*h.
        let per_layer = |h: f64, ffn: f64| 2.0 * h * h + 2.0 * h * 1024.0 + 3.0 * h * ffn + 2.0 * h;
        let total = |vocab: f64, h: f64, ffn: f64, layers: f64| {
            2.0 * vocab * h + layers * per_layer(h, ffn) + h
        };
        assert_eq!(
            builtin("llama-3-8b").unwrap().params,
            total(128_256.0, 4096.0, 14_336.0, 32.0)
        );
        assert_eq!(
            builtin("llama-3-70b").unwrap().params,
            total(128_256.0, 8192.0, 28_672.0, 80.0)
        );
        assert_eq!(
            builtin("llama-2-70b").unwrap().params,
            total(32_000.0, 8192.0, 28_672.0, 80.0)
        );
        // Weights in BF16: 2 bytes each.
        assert_eq!(
            builtin("llama-3-8b").unwrap().weight_bytes(),
            16_060_522_496.0
        );
    }
}
