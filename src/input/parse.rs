//! Text -> [`WorkloadFile`], with errors that name the file, line:column and field path. The only I/O of
//! workloads is [`load`].

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

pub use crate::error::line_col;

pub(crate) fn with_path(message: &str, path: &str) -> String {
    if path.is_empty() || path == "." {
        message.to_string()
    } else {
        format!("{message} (at `{path}`)")
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
pub(crate) fn strip_json_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}
