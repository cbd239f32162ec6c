//! Errors in user input. Any error whose cause chain holds an [`InputError`] exits with code 2.

use std::fmt;

/// Where in the input a problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// 1-based line and column of a text file.
    LineCol(usize, usize),
    /// 1-based data row of a CSV/JSONL file (header not counted), and the column or field when known.
    Row(usize, Option<String>),
    /// A field path such as `jobs[2].gpus`.
    Field(String),
    /// The file as a whole (empty, unreadable, not UTF-8).
    File,
}

/// Bad user input: names the file, where in it, and what is allowed. Never a panic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file (or `<stdin>`, `--flag`) the input came from.
    pub file: String,
    /// Where in it.
    pub location: Location,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl InputError {
    /// A problem at `location` of `file`.
    pub fn new(file: impl Into<String>, location: Location, message: impl Into<String>) -> Self {
        InputError {
            file: file.into(),
            location,
            message: message.into(),
        }
    }

    /// A problem with a field path.
    pub fn field(
        file: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(file, Location::Field(path.into()), message)
    }

    /// A problem with a CSV/JSONL row (1-based, header excluded) and column.
    pub fn row(
        file: impl Into<String>,
        row: usize,
        column: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(
            file,
            Location::Row(row, column.map(str::to_string)),
            message,
        )
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Location::LineCol(l, c) => write!(f, "{}:{}:{}: {}", self.file, l, c, self.message),
            Location::Row(r, Some(col)) => write!(
                f,
                "{}: row {}, column `{}`: {}",
                self.file, r, col, self.message
            ),
            Location::Row(r, None) => write!(f, "{}: row {}: {}", self.file, r, self.message),
            Location::Field(p) => write!(f, "{}: field `{}`: {}", self.file, p, self.message),
            Location::File => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for InputError {}

/// Exit code for an error: 2 for bad input anywhere in the chain, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err
        .chain()
        .any(|c| c.downcast_ref::<InputError>().is_some())
    {
        2
    } else {
        1
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
