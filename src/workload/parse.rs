//! Text -> [`WorkloadFile`], with errors that name the file, line:column and field path. The only I/O of
//! workloads is [`load`].

use super::spec::WorkloadFile;
use super::{build, Overrides, Workload};
use crate::error::{InputError, Location};
use std::path::Path;

/// Which syntax a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML (the default).
    Toml,
    /// JSON (files ending in `.json`).
    Json,
}

impl Format {
    /// JSON when the path ends in `.json`, else TOML.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Toml,
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, col)
}

fn with_path(message: &str, path: &str) -> String {
    if path.is_empty() || path == "." {
        message.to_string()
    } else {
        format!("{message} (at `{path}`)")
    }
}

/// Parses a workload file's text.
pub fn parse_str(text: &str, file: &str, format: Format) -> Result<WorkloadFile, InputError> {
    if text.trim().is_empty() {
        return Err(InputError::new(
            file,
            Location::File,
            "the file is empty; a workload needs at least a [cluster] with one pool",
        ));
    }
    match format {
        Format::Toml => {
            let de = toml::Deserializer::parse(text).map_err(|e| toml_error(text, file, &e, ""))?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                toml_error(text, file, e.inner(), &path)
            })
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            let spec: WorkloadFile = serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.inner();
                let msg = strip_json_position(&inner.to_string());
                InputError::new(
                    file,
                    Location::LineCol(inner.line(), inner.column()),
                    with_path(&msg, &path),
                )
            })?;
            de.end().map_err(|e| {
                InputError::new(
                    file,
                    Location::LineCol(e.line(), e.column()),
                    "trailing characters after the JSON document",
                )
            })?;
            Ok(spec)
        }
    }
}

/// A TOML error located by line:column when it has a span, else by field path.
pub(crate) fn toml_error(text: &str, file: &str, e: &toml::de::Error, path: &str) -> InputError {
    let msg = with_path(e.message().trim(), path);
    match e.span() {
        Some(span) => {
            let (l, c) = line_col(text, span.start);
            InputError::new(file, Location::LineCol(l, c), msg)
        }
        None if !path.is_empty() && path != "." => {
            InputError::field(file, path, e.message().trim())
        }
        None => InputError::new(file, Location::File, msg),
    }
}

/// serde_json appends " at line L column C"; the location is printed separately.
fn strip_json_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Reads, parses and builds a workload file.
pub fn load(path: &Path, ov: Overrides) -> anyhow::Result<Workload> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| InputError::new(&file, Location::File, format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        InputError::new(
            &file,
            Location::File,
            format!(
                "is not UTF-8 text (invalid byte at offset {}); expected a TOML or JSON workload",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let spec = parse_str(&text, &file, Format::of(path))?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("workload");
    Ok(build(spec, &file, stem, ov)?)
}
