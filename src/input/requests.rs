//! Importers for public LLM request traces. Parsing works on text plus a file label (pure); [`load`] is the
//! only file read.
//!
//! - Azure LLM inference trace 2023 (Patel et al., "Splitwise", ISCA 2024): CSV `TIMESTAMP,ContextTokens,
//!   GeneratedTokens`, timestamps like `2023-11-16 18:17:03.9799600`, taken relative to the first row.
//! - Mooncake (FAST'25 release): JSONL objects `{"timestamp": ms, "input_length", "output_length",
//!   "hash_ids": [..]}`, hash ids naming 512-token prompt blocks.
//!
//! Errors name the file, the data row (1-based, header excluded) and the field, and say what was expected.

use crate::engine::serving::sim::Request;
use crate::error::{InputError, Location};
use std::path::Path;

/// Trace formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// Azure LLM inference 2023 CSV.
    Azure,
    /// Mooncake JSONL.
    Mooncake,
}

/// Where a `--trace FORMAT:PATH` argument points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceArg {
    /// Its format.
    pub format: TraceFormat,
    /// Its path.
    pub path: String,
}

/// Parses `azure:PATH` or `mooncake:PATH`.
pub fn parse_trace_arg(arg: &str) -> Result<TraceArg, InputError> {
    let bad = || {
        InputError::new(
            "--trace",
            Location::File,
            format!("expected azure:PATH or mooncake:PATH, found `{arg}`"),
        )
    };
    let (kind, path) = arg.split_once(':').ok_or_else(bad)?;
    let format = match kind {
        "azure" => TraceFormat::Azure,
        "mooncake" => TraceFormat::Mooncake,
        _ => return Err(bad()),
    };
    if path.is_empty() {
        return Err(bad());
    }
    Ok(TraceArg {
        format,
        path: path.to_string(),
    })
}

/// Reads a trace file: the bytes must be UTF-8 text without NUL bytes.
pub fn load(arg: &TraceArg) -> anyhow::Result<Vec<Request>> {
    let bytes = std::fs::read(Path::new(&arg.path))
        .map_err(|e| InputError::new(&arg.path, Location::File, format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        InputError::new(
            &arg.path,
            Location::File,
            "not UTF-8 text (binary file?): expected a CSV or JSONL trace",
        )
    })?;
    Ok(parse(&text, &arg.path, arg.format)?)
}

/// Parses trace text in `format`; `file` labels errors.
pub fn parse(text: &str, file: &str, format: TraceFormat) -> Result<Vec<Request>, InputError> {
    if text.contains('\0') {
        return Err(InputError::new(
            file,
            Location::File,
            "contains NUL bytes (binary file?): expected a CSV or JSONL trace",
        ));
    }
    if text.trim().is_empty() {
        return Err(InputError::new(
            file,
            Location::File,
            match format {
                TraceFormat::Azure => {
                    "the file is empty: expected a header TIMESTAMP,ContextTokens,GeneratedTokens and rows"
                }
                TraceFormat::Mooncake => "the file is empty: expected one JSON request object per line",
            },
        ));
    }
    let reqs = match format {
        TraceFormat::Azure => parse_azure(text, file)?,
        TraceFormat::Mooncake => parse_mooncake(text, file)?,
    };
    if reqs.is_empty() {
        return Err(InputError::new(
            file,
            Location::File,
            "no requests: expected at least one data row",
        ));
    }
    Ok(reqs)
}

const AZURE_COLUMNS: [&str; 3] = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"];

/// Parses the Azure 2023 CSV (any line ending, with or without a trailing newline).
pub fn parse_azure(text: &str, file: &str) -> Result<Vec<Request>, InputError> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("").trim_start_matches('\u{feff}');
    let cols: Vec<&str> = header.split(',').map(str::trim).collect();
    if cols != AZURE_COLUMNS {
        return Err(InputError::new(
            file,
            Location::LineCol(1, 1),
            format!(
                "expected the header {}, found `{header}`",
                AZURE_COLUMNS.join(",")
            ),
        ));
    }
    let mut out = Vec::new();
    let mut first_us: Option<i128> = None;
    for (i, line) in lines.enumerate() {
        let row = i + 1;
        if line.trim().is_empty() {
            continue; // blank lines (such as a final newline) carry no request
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != AZURE_COLUMNS.len() {
            let what = if fields.len() < AZURE_COLUMNS.len() {
                "truncated row"
            } else {
                "too many fields"
            };
            return Err(InputError::row(
                file,
                row,
                AZURE_COLUMNS.get(fields.len()).copied(),
                format!(
                    "{what}: expected {} fields ({}), found {}",
                    AZURE_COLUMNS.len(),
                    AZURE_COLUMNS.join(","),
                    fields.len()
                ),
            ));
        }
        let ts = parse_datetime_us(fields[0]).ok_or_else(|| {
            InputError::row(
                file,
                row,
                Some("TIMESTAMP"),
                format!(
                    "expected a datetime like `2023-11-16 18:17:03.9799600`, found `{}`",
                    fields[0]
                ),
            )
        })?;
        let first = *first_us.get_or_insert(ts);
        if ts < first {
            return Err(InputError::row(
                file,
                row,
                Some("TIMESTAMP"),
                format!(
                    "`{}` is before the first row; times are taken relative to the first row, so it must be \
                     the earliest",
                    fields[0]
                ),
            ));
        }
        let prompt = count(fields[1], file, row, "ContextTokens")?;
        if prompt == 0 {
            return Err(InputError::row(
                file,
                row,
                Some("ContextTokens"),
                "expected at least 1 prompt token, found 0",
            ));
        }
        let output = count(fields[2], file, row, "GeneratedTokens")?;
        out.push(Request {
            arrival_us: u64::try_from(ts - first).unwrap_or(u64::MAX),
            prompt_tokens: prompt,
            output_tokens: output,
            hash_ids: Vec::new(),
        });
    }
    Ok(out)
}

/// A token count: a non-negative integer that fits u32.
fn count(s: &str, file: &str, row: usize, field: &str) -> Result<u32, InputError> {
    let err = |m: String| InputError::row(file, row, Some(field), m);
    if s.is_empty() {
        return Err(err("missing value: expected a non-negative integer".into()));
    }
    if let Ok(v) = s.parse::<u32>() {
        return Ok(v);
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_nan() => Err(err(format!(
            "expected a non-negative integer, found NaN (`{s}`)"
        ))),
        Ok(v) if v < 0.0 => Err(err(format!(
            "must not be negative: expected a non-negative integer, found {s}"
        ))),
        Ok(v) if v > f64::from(u32::MAX) => Err(err(format!(
            "too large: expected at most {}, found {s}",
            u32::MAX
        ))),
        _ => Err(err(format!("expected a non-negative integer, found `{s}`"))),
    }
}

/// `YYYY-MM-DD HH:MM:SS[.fraction]` (or with `T`) -> microseconds since 1970-01-01 (proleptic Gregorian, no
/// time zone: only differences are used). Fractions beyond microseconds are truncated.
pub fn parse_datetime_us(s: &str) -> Option<i128> {
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let (y, mo, da) = (d.next()?, d.next()?, d.next()?);
    if d.next().is_some() {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (time, None),
    };
    let mut t = hms.split(':');
    let (h, mi, se) = (t.next()?, t.next()?, t.next()?);
    if t.next().is_some() {
        return None;
    }
    let digits = |x: &str, n: usize| x.len() == n && x.bytes().all(|b| b.is_ascii_digit());
    if !(digits(y, 4)
        && digits(mo, 2)
        && digits(da, 2)
        && digits(h, 2)
        && digits(mi, 2)
        && digits(se, 2))
    {
        return None;
    }
    let num = |x: &str| x.parse::<i64>().ok();
    let (y, mo, da, h, mi, se) = (num(y)?, num(mo)?, num(da)?, num(h)?, num(mi)?, num(se)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&mo) || da < 1 || da > month_days[(mo - 1) as usize] {
        return None;
    }
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let micros = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let six: String = f.chars().chain(std::iter::repeat('0')).take(6).collect();
            six.parse::<i64>().ok()?
        }
        Some(_) => return None,
    };
    let days = days_from_civil(y, mo, da);
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) as i128) * 1_000_000 + micros as i128)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses Mooncake JSONL: one object per line; blank lines are skipped but still counted as rows.
pub fn parse_mooncake(text: &str, file: &str) -> Result<Vec<Request>, InputError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let row = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| {
            let what = if e.is_eof() {
                "truncated row"
            } else {
                "invalid JSON"
            };
            let msg = e.to_string();
            let msg = msg.rfind(" at line ").map_or(msg.as_str(), |k| &msg[..k]);
            InputError::row(
                file,
                row,
                None,
                format!("{what} ({msg}): expected one JSON object per line"),
            )
        })?;
        let obj = v.as_object().ok_or_else(|| {
            InputError::row(
                file,
                row,
                None,
                "expected a JSON object {\"timestamp\", \"input_length\", \"output_length\", \"hash_ids\"}",
            )
        })?;
        let field = |name: &str| {
            obj.get(name).ok_or_else(|| {
                InputError::row(file, row, Some(name), "missing field: expected a number")
            })
        };
        let ts_ms = non_negative(field("timestamp")?, file, row, "timestamp", false)?;
        let prompt = non_negative(field("input_length")?, file, row, "input_length", true)?;
        if prompt < 1.0 {
            return Err(InputError::row(
                file,
                row,
                Some("input_length"),
                "expected at least 1 prompt token, found 0",
            ));
        }
        let output = non_negative(field("output_length")?, file, row, "output_length", true)?;
        let hash_ids = match obj.get("hash_ids") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .enumerate()
                .map(|(k, h)| {
                    h.as_u64().ok_or_else(|| {
                        InputError::row(
                            file,
                            row,
                            Some(&format!("hash_ids[{k}]")),
                            format!("expected a non-negative integer, found {h}"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(InputError::row(
                    file,
                    row,
                    Some("hash_ids"),
                    format!("expected an array of non-negative integers, found {other}"),
                ))
            }
        };
        out.push(Request {
            arrival_us: (ts_ms * 1000.0).round() as u64,
            prompt_tokens: prompt as u32,
            output_tokens: output as u32,
            hash_ids,
        });
    }
    Ok(out)
}

/// A non-negative finite number (an integer below 2^32 when `integer`).
fn non_negative(
    v: &serde_json::Value,
    file: &str,
    row: usize,
    name: &str,
    integer: bool,
) -> Result<f64, InputError> {
    let err = |m: String| Err(InputError::row(file, row, Some(name), m));
    let want = if integer {
        "a non-negative integer"
    } else {
        "a non-negative number"
    };
    // serde_json has no NaN literal; a string "NaN" lands here as a non-number.
    let Some(x) = v.as_f64() else {
        return err(format!("expected {want}, found {v}"));
    };
    if x < 0.0 {
        return err(format!("must not be negative: expected {want}, found {v}"));
    }
    // 10 years of milliseconds, or a token count that fits u32.
    let max = if integer { f64::from(u32::MAX) } else { 3.2e11 };
    if !x.is_finite() || x > max {
        return err(format!("too large: expected {want} up to {max}, found {v}"));
    }
    if integer && x.fract() != 0.0 {
        return err(format!("expected {want}, found {v}"));
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_are_relative_microseconds() {
        let a = parse_datetime_us("2023-11-16 18:17:03.9799600").unwrap();
        let b = parse_datetime_us("2023-11-16 18:17:04.0319600").unwrap();
        assert_eq!(b - a, 52_000);
        // Across midnight, a month end and a leap day.
        let c = parse_datetime_us("2024-02-29 23:59:59.5").unwrap();
        let d = parse_datetime_us("2024-03-01 00:00:00").unwrap();
        assert_eq!(d - c, 500_000);
        assert_eq!(parse_datetime_us("1970-01-01 00:00:01"), Some(1_000_000));
        for bad in [
            "2023-11-16",
            "2023-13-01 00:00:00",
            "2023-02-29 00:00:00",
            "2023-11-16 25:00:00",
            "2023-11-16 18:17:03.",
            "2023-11-16 18:17:03.x",
            "x",
        ] {
            assert_eq!(parse_datetime_us(bad), None, "{bad}");
        }
    }

    #[test]
    fn trace_argument_names_its_format() {
        assert_eq!(
            parse_trace_arg("mooncake:a:b.jsonl").unwrap(),
            TraceArg {
                format: TraceFormat::Mooncake,
                path: "a:b.jsonl".into()
            }
        );
        for bad in ["a.csv", "csv:a.csv", "azure:"] {
            let e = parse_trace_arg(bad).unwrap_err().to_string();
            assert!(e.starts_with("--trace: expected azure:PATH"), "{e}");
        }
    }
}
