//! Importer for the openb trace CSVs (Alibaba cluster-trace-gpu-v2023): node lists and pod lists.
//!
//! Header-driven: columns are found by name, extra columns are ignored, and a missing required column is an
//! error naming it. Every problem is an [`InputError`] naming the file, the 1-based data row and the column.
//! The `parse_*` functions take bytes and a file label and do no I/O; `load_*` read a file and call them.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

use crate::engine::fgd::trace::{Node, Pod};
use crate::error::{InputError, Location};
use crate::kernel::node_score::{MAX_GPUS, MILLI};

/// Node-list columns the importer needs.
const NODE_COLUMNS: [&str; 5] = ["sn", "cpu_milli", "memory_mib", "gpu", "model"];
/// Pod-list columns the importer needs (the rest are optional).
const POD_COLUMNS: [&str; 5] = ["name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"];

/// Parses a node list (`sn,cpu_milli,memory_mib,gpu,model`).
pub fn parse_nodes(bytes: &[u8], file: &str) -> Result<Vec<Node>, InputError> {
    let table = Table::parse(bytes, file)?;
    let cols: Vec<usize> = NODE_COLUMNS
        .iter()
        .map(|c| table.column(c))
        .collect::<Result<_, _>>()?;
    let mut nodes = Vec::with_capacity(table.rows.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (r, rec) in table.rows.iter().enumerate() {
        let row = r + 1;
        let cell = |i: usize| rec.get(cols[i]).unwrap_or("").trim();
        let name = table.non_empty(row, NODE_COLUMNS[0], cell(0))?;
        if let Some(first) = seen.insert(name.to_string(), row) {
            return Err(table.err(
                row,
                "sn",
                format!("duplicate node name `{name}` (first in row {first})"),
            ));
        }
        let gpus = table.int(row, "gpu", cell(3), MAX_GPUS as u64)? as u32;
        let model = cell(4);
        if gpus > 0 && (model.is_empty() || model.eq_ignore_ascii_case("nan")) {
            return Err(table.err(
                row,
                "model",
                "node has GPUs but no model; expected a GPU model name",
            ));
        }
        nodes.push(Node {
            name: name.to_string(),
            cpu_milli: table.int(row, "cpu_milli", cell(1), u32::MAX as u64)? as u32,
            memory_mib: table.int(row, "memory_mib", cell(2), u32::MAX as u64)? as u32,
            gpus,
            model: if gpus == 0 {
                String::new()
            } else {
                model.to_string()
            },
        });
    }
    if nodes.is_empty() {
        return Err(InputError::new(
            file,
            Location::File,
            "no nodes: the file has a header but no rows",
        ));
    }
    Ok(nodes)
}

/// Parses a pod list (`name,cpu_milli,memory_mib,num_gpu,gpu_milli` required; `gpu_spec`, `qos`, `pod_phase`,
/// `creation_time`, `deletion_time`, `scheduled_time` optional).
pub fn parse_pods(bytes: &[u8], file: &str) -> Result<Vec<Pod>, InputError> {
    let table = Table::parse(bytes, file)?;
    let cols: Vec<usize> = POD_COLUMNS
        .iter()
        .map(|c| table.column(c))
        .collect::<Result<_, _>>()?;
    let opt = |name: &str| table.header.iter().position(|h| h == name);
    let (spec, qos, phase) = (opt("gpu_spec"), opt("qos"), opt("pod_phase"));
    let times = [
        opt("creation_time"),
        opt("deletion_time"),
        opt("scheduled_time"),
    ];
    const TIME_NAMES: [&str; 3] = ["creation_time", "deletion_time", "scheduled_time"];
    let mut pods = Vec::with_capacity(table.rows.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (r, rec) in table.rows.iter().enumerate() {
        let row = r + 1;
        let get = |i: usize| rec.get(i).unwrap_or("").trim();
        let cell = |i: usize| get(cols[i]);
        let name = table.non_empty(row, POD_COLUMNS[0], cell(0))?;
        if let Some(first) = seen.insert(name.to_string(), row) {
            return Err(table.err(
                row,
                "name",
                format!("duplicate pod name `{name}` (first in row {first})"),
            ));
        }
        let mut t = [None; 3];
        for (k, col) in times.iter().enumerate() {
            if let Some(c) = *col {
                let v = get(c);
                if !v.is_empty() {
                    t[k] = Some(table.int(row, TIME_NAMES[k], v, u64::MAX)?);
                }
            }
        }
        let gpu_spec = spec.map(get).unwrap_or("");
        pods.push(Pod {
            name: name.to_string(),
            cpu_milli: table.int(row, "cpu_milli", cell(1), u32::MAX as u64)? as u32,
            memory_mib: table.int(row, "memory_mib", cell(2), u32::MAX as u64)? as u32,
            num_gpu: table.int(row, "num_gpu", cell(3), MAX_GPUS as u64)? as u32,
            // The original clamps m to one GPU, so values above 1000 are accepted and clamped.
            gpu_milli: table
                .int(row, "gpu_milli", cell(4), u32::MAX as u64)?
                .min(MILLI as u64) as u32,
            gpu_spec: if gpu_spec.eq_ignore_ascii_case("nan") {
                String::new()
            } else {
                gpu_spec.to_string()
            },
            qos: qos.map(|c| get(c).to_string()),
            pod_phase: phase.map(|c| get(c).to_string()),
            creation_time: t[0],
            deletion_time: t[1],
            scheduled_time: t[2],
        });
    }
    if pods.is_empty() {
        return Err(InputError::new(
            file,
            Location::File,
            "no pods: the file has a header but no rows",
        ));
    }
    Ok(pods)
}

/// Reads and parses a node list.
pub fn load_nodes(path: &Path) -> anyhow::Result<Vec<Node>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read node list {}", path.display()))?;
    Ok(parse_nodes(&bytes, &path.display().to_string())?)
}

/// Reads and parses a pod list.
pub fn load_pods(path: &Path) -> anyhow::Result<Vec<Pod>> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read pod list {}", path.display()))?;
    Ok(parse_pods(&bytes, &path.display().to_string())?)
}

/// A CSV file split into header and rows, each row checked to have as many fields as the header.
struct Table<'a> {
    file: &'a str,
    header: Vec<String>,
    rows: Vec<csv::StringRecord>,
}

impl<'a> Table<'a> {
    fn parse(bytes: &[u8], file: &'a str) -> Result<Self, InputError> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            InputError::new(
                file,
                Location::File,
                format!("not UTF-8 text (binary file?): invalid byte on line {line}; expected a CSV file"),
            )
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err(InputError::new(
                file,
                Location::File,
                "file is empty; expected a CSV header and rows",
            ));
        }
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| {
                InputError::new(
                    file,
                    Location::File,
                    format!("cannot read the CSV header: {e}"),
                )
            })?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        let mut rows = Vec::new();
        for (r, rec) in rdr.records().enumerate() {
            let row = r + 1;
            let rec =
                rec.map_err(|e| InputError::row(file, row, None, format!("malformed CSV: {e}")))?;
            if rec.len() < header.len() {
                let missing = &header[rec.len()];
                return Err(InputError::row(
                    file,
                    row,
                    Some(missing),
                    format!(
                        "truncated row: {} fields, the header has {}",
                        rec.len(),
                        header.len()
                    ),
                ));
            }
            if rec.len() > header.len() {
                return Err(InputError::row(
                    file,
                    row,
                    None,
                    format!(
                        "row has {} fields, the header has {}",
                        rec.len(),
                        header.len()
                    ),
                ));
            }
            rows.push(rec);
        }
        Ok(Table { file, header, rows })
    }

    fn column(&self, name: &str) -> Result<usize, InputError> {
        self.header.iter().position(|h| h == name).ok_or_else(|| {
            InputError::new(
                self.file,
                Location::File,
                format!(
                    "missing required column `{name}` (header: {})",
                    self.header.join(",")
                ),
            )
        })
    }

    fn err(&self, row: usize, column: &str, message: impl Into<String>) -> InputError {
        InputError::row(self.file, row, Some(column), message)
    }

    fn non_empty<'v>(&self, row: usize, column: &str, v: &'v str) -> Result<&'v str, InputError> {
        if v.is_empty() {
            Err(self.err(row, column, "empty; expected a name"))
        } else {
            Ok(v)
        }
    }

    /// A non-negative integer no larger than `max`.
    fn int(&self, row: usize, column: &str, v: &str, max: u64) -> Result<u64, InputError> {
        if v.is_empty() {
            return Err(self.err(row, column, "empty; expected a non-negative integer"));
        }
        if let Ok(n) = v.parse::<u64>() {
            if n > max {
                return Err(self.err(
                    row,
                    column,
                    format!("{n} is out of range; expected at most {max}"),
                ));
            }
            return Ok(n);
        }
        let msg = match v.parse::<f64>() {
            Ok(f) if f.is_nan() => format!("`{v}` is NaN; expected a non-negative integer"),
            Ok(f) if f < 0.0 => format!("`{v}` is negative; expected a non-negative integer"),
            Ok(f) if f.is_infinite() || f > max as f64 => {
                format!("`{v}` is out of range; expected an integer at most {max}")
            }
            Ok(_) => format!("`{v}` is not an integer; expected a non-negative integer"),
            Err(_) => format!("`{v}` is not a number; expected a non-negative integer"),
        };
        Err(self.err(row, column, msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NODES: &str =
        "sn,cpu_milli,memory_mib,gpu,model\nn0,64000,262144,2,P100\nn1,32000,1000,0,\n";
    const PODS: &str = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,\
deletion_time,scheduled_time\np0,12000,16384,1,1000,,LS,Running,0,12,0\np1,6000,12288,1,460,V100M16|V100M32,BE,\
Pending,5,9,\n";

    #[test]
    fn good_nodes_and_pods() {
        let nodes = parse_nodes(NODES.as_bytes(), "n.csv").unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(
            nodes[0],
            Node {
                name: "n0".into(),
                cpu_milli: 64000,
                memory_mib: 262144,
                gpus: 2,
                model: "P100".into()
            }
        );
        assert_eq!(nodes[1].model, "");
        let pods = parse_pods(PODS.as_bytes(), "p.csv").unwrap();
        assert_eq!(pods[1].gpu_milli, 460);
        assert_eq!(
            pods[1].spec_models().collect::<Vec<_>>(),
            ["V100M16", "V100M32"]
        );
        assert_eq!(pods[1].scheduled_time, None);
        assert_eq!(pods[0].scheduled_time, Some(0));
        assert_eq!(pods[0].qos.as_deref(), Some("LS"));
    }

    #[test]
    fn multigpu_layout_without_optional_columns_loads() {
        let pods = parse_pods(
            b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,2,8,1000\nb,1,2,0,0\n",
            "m.csv",
        )
        .unwrap();
        assert_eq!(pods.len(), 2);
        assert_eq!(pods[0].gpu_spec, "");
        assert_eq!(pods[0].creation_time, None);
    }

    #[test]
    fn gpu_milli_above_one_gpu_is_clamped() {
        let pods = parse_pods(
            b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,2,1,1500\n",
            "m.csv",
        )
        .unwrap();
        assert_eq!(pods[0].gpu_milli, 1000);
    }

    /// (what, input, expected row and column (None = whole file), message fragment)
    type BadCase = (
        &'static str,
        &'static [u8],
        Option<(usize, Option<&'static str>)>,
        &'static str,
    );

    fn check_bad(parse: fn(&[u8], &str) -> Result<(), InputError>, cases: &[BadCase]) {
        for (what, input, at, fragment) in cases {
            let err = parse(input, "x.csv").expect_err(what);
            assert_eq!(err.file, "x.csv", "{what}");
            let want = match at {
                None => Location::File,
                Some((row, col)) => Location::Row(*row, col.map(str::to_string)),
            };
            assert_eq!(err.location, want, "{what}: {err}");
            assert!(
                err.message.contains(fragment),
                "{what}: `{}` lacks `{fragment}`",
                err.message
            );
        }
    }

    #[test]
    fn bad_pods() {
        let cases: &[BadCase] = &[
            ("empty", b"", None, "empty"),
            ("blank", b"  \n\n", None, "empty"),
            ("binary", b"\x89PNG\r\n\x1a\n\xff\xfe", None, "not UTF-8"),
            (
                "header only",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\n",
                None,
                "no pods",
            ),
            (
                "missing column",
                b"name,cpu_milli,memory_mib,num_gpu\na,1,2,3\n",
                None,
                "missing required column `gpu_milli`",
            ),
            (
                "non-numeric",
                concat!(
                    "name,cpu_milli,memory_mib,num_gpu,gpu_milli",
                    "\na,1,2,1,500\nb,x1,2,1,500\n"
                )
                .as_bytes(),
                Some((2, Some("cpu_milli"))),
                "`x1` is not a number",
            ),
            (
                "negative",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,-2,1,500\n",
                Some((1, Some("memory_mib"))),
                "negative",
            ),
            (
                "nan",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,2,1,NaN\n",
                Some((1, Some("gpu_milli"))),
                "NaN",
            ),
            (
                "fraction",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1.5,2,1,5\n",
                Some((1, Some("cpu_milli"))),
                "not an integer",
            ),
            (
                "too many gpus",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,2,9,1000\n",
                Some((1, Some("num_gpu"))),
                "out of range",
            ),
            (
                "overflow",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,99999999999,2,1,1000\n",
                Some((1, Some("cpu_milli"))),
                "out of range",
            ),
            (
                "huge float",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1e30,2,1,1000\n",
                Some((1, Some("cpu_milli"))),
                "out of range",
            ),
            (
                "truncated",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,2\n",
                Some((1, Some("num_gpu"))),
                "truncated row",
            ),
            (
                "too long",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,2,1,1,9\n",
                Some((1, None)),
                "6 fields",
            ),
            (
                "empty number",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,2,,1\n",
                Some((1, Some("num_gpu"))),
                "empty",
            ),
            (
                "empty name",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\n,1,2,1,1\n",
                Some((1, Some("name"))),
                "expected a name",
            ),
            (
                "duplicate",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\na,1,2,1,1\na,1,2,1,1\n",
                Some((2, Some("name"))),
                "duplicate pod name `a` (first in row 1)",
            ),
            (
                "bad time",
                b"name,cpu_milli,memory_mib,num_gpu,gpu_milli,creation_time\na,1,2,1,1,yesterday\n",
                Some((1, Some("creation_time"))),
                "not a number",
            ),
        ];
        check_bad(|b, f| parse_pods(b, f).map(|_| ()), cases);
    }

    #[test]
    fn bad_nodes() {
        let cases: &[BadCase] = &[
            ("empty", b"", None, "empty"),
            ("binary", b"sn,cpu\n\xc3\x28", None, "line 2"),
            (
                "missing model",
                b"sn,cpu_milli,memory_mib,gpu\nn,1,2,3\n",
                None,
                "missing required column `model`",
            ),
            (
                "gpus without model",
                b"sn,cpu_milli,memory_mib,gpu,model\nn,1,2,3,\n",
                Some((1, Some("model"))),
                "no model",
            ),
            (
                "nine gpus",
                b"sn,cpu_milli,memory_mib,gpu,model\nn,1,2,9,A\n",
                Some((1, Some("gpu"))),
                "at most 8",
            ),
            (
                "negative cpu",
                b"sn,cpu_milli,memory_mib,gpu,model\nn,-1,2,1,A\n",
                Some((1, Some("cpu_milli"))),
                "negative",
            ),
            (
                "duplicate",
                b"sn,cpu_milli,memory_mib,gpu,model\nn,1,2,1,A\nn,1,2,1,A\n",
                Some((2, Some("sn"))),
                "duplicate node name",
            ),
            (
                "header only",
                b"sn,cpu_milli,memory_mib,gpu,model\n",
                None,
                "no nodes",
            ),
        ];
        check_bad(|b, f| parse_nodes(b, f).map(|_| ()), cases);
    }

    #[test]
    fn published_traces_load() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/traces/openb/");
        let nodes = load_nodes(Path::new(&format!("{root}openb_node_list_gpu_node.csv"))).unwrap();
        assert_eq!(nodes.len(), 1213);
        assert_eq!(nodes.iter().map(|n| n.gpus).sum::<u32>(), 6212);
        assert_eq!(
            load_nodes(Path::new(&format!("{root}openb_node_list_all_node.csv")))
                .unwrap()
                .len(),
            1523
        );
        for (f, n) in [("default", 8152), ("gpuspec33", 8152), ("multigpu50", 9061)] {
            let pods = load_pods(Path::new(&format!("{root}openb_pod_list_{f}.csv"))).unwrap();
            assert_eq!(pods.len(), n, "{f}");
        }
    }
}
