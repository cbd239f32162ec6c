//! Readers for the original simulator's random draws (workloads/traces/fgd-reference/draws): the pod attempt
//! order and the node tie-break names. Replaying them reproduces the published curves exactly.

use std::collections::HashMap;
use std::path::Path;

use anyhow::Context;

use crate::error::{InputError, Location};

use crate::engine::fgd::engine::Draws;
use crate::engine::fgd::trace::Trace;

/// Marker of a tune-up copy: `<original name>-tuned-<i>`.
const TUNED: &str = "-tuned-";

fn text<'a>(bytes: &'a [u8], file: &str) -> Result<&'a str, InputError> {
    let t = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        InputError::new(
            file,
            Location::File,
            format!("not UTF-8 text (binary file?): invalid byte on line {line}"),
        )
    })?;
    if t.trim().is_empty() {
        return Err(InputError::new(
            file,
            Location::File,
            "file is empty; expected one name per line",
        ));
    }
    Ok(t)
}

/// Parses a pod order file: one pod name per line, originals or `<name>-tuned-<i>` copies. Returns pod ids.
pub fn parse_pod_order(bytes: &[u8], file: &str, trace: &Trace) -> Result<Vec<usize>, InputError> {
    let ids: HashMap<&str, usize> = trace
        .pod_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut order = Vec::new();
    for (l, line) in text(bytes, file)?.lines().enumerate() {
        let name = line.trim();
        if name.is_empty() {
            continue;
        }
        let base = match ids.get(name) {
            Some(&i) => Some(i),
            None => name
                .rfind(TUNED)
                .filter(|&at| name[at + TUNED.len()..].bytes().all(|b| b.is_ascii_digit()))
                .and_then(|at| ids.get(&name[..at]).copied()),
        };
        let Some(i) = base else {
            return Err(InputError::new(
                file,
                Location::LineCol(l + 1, 1),
                format!(
                    "unknown pod `{name}`; expected a pod of {} or `<pod>{TUNED}<n>`",
                    trace.workload
                ),
            ));
        };
        order.push(i);
    }
    Ok(order)
}

/// Parses a node names file: one `<rank>-<node name>` per line, every node exactly once. Returns ranks by node.
pub fn parse_node_names(bytes: &[u8], file: &str, trace: &Trace) -> Result<Vec<u32>, InputError> {
    let ids: HashMap<&str, usize> = trace
        .node_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut rank: Vec<Option<u32>> = vec![None; trace.node_names.len()];
    let mut rank_line: HashMap<u32, usize> = HashMap::new();
    for (l, line) in text(bytes, file)?.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let at = Location::LineCol(l + 1, 1);
        let Some((r, name)) = line.split_once('-') else {
            return Err(InputError::new(
                file,
                at,
                format!("`{line}`: expected `<rank>-<node name>`"),
            ));
        };
        let r: u32 = r.parse().map_err(|_| {
            InputError::new(
                file,
                at.clone(),
                format!("`{r}` is not a rank; expected `<rank>-<node name>`"),
            )
        })?;
        let Some(&node) = ids.get(name) else {
            return Err(InputError::new(
                file,
                at,
                format!("unknown node `{name}`; expected a node of the node list"),
            ));
        };
        if rank[node].is_some() {
            return Err(InputError::new(
                file,
                at,
                format!("node `{name}` listed twice"),
            ));
        }
        if let Some(first) = rank_line.insert(r, l + 1) {
            return Err(InputError::new(
                file,
                at,
                format!("rank {r} already used on line {first}"),
            ));
        }
        rank[node] = Some(r);
    }
    rank.iter()
        .enumerate()
        .map(|(i, r)| {
            r.ok_or_else(|| {
                InputError::new(
                    file,
                    Location::File,
                    format!(
                        "node `{}` is missing; every node needs a rank",
                        trace.node_names[i]
                    ),
                )
            })
        })
        .collect()
}

/// Reads both files into `Draws`.
pub fn load_draws(pod_order: &Path, node_names: &Path, trace: &Trace) -> anyhow::Result<Draws> {
    let po = std::fs::read(pod_order)
        .with_context(|| format!("cannot read pod order {}", pod_order.display()))?;
    let nn = std::fs::read(node_names)
        .with_context(|| format!("cannot read node names {}", node_names.display()))?;
    Ok(Draws {
        pod_order: parse_pod_order(&po, &pod_order.display().to_string(), trace)?,
        node_rank: parse_node_names(&nn, &node_names.display().to_string(), trace)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::openb::{parse_nodes, parse_pods};

    fn trace() -> Trace {
        let nodes = parse_nodes(
            b"sn,cpu_milli,memory_mib,gpu,model\nn-a,1,1,1,A\nn-b,1,1,1,A\n",
            "n",
        )
        .unwrap();
        let pods = parse_pods(
            b"name,cpu_milli,memory_mib,num_gpu,gpu_milli\np-1,1,1,1,500\np-0,1,1,0,0\n",
            "p",
        )
        .unwrap();
        Trace::new("w", &nodes, "n", &pods).unwrap()
    }

    #[test]
    fn good_draws() {
        let t = trace();
        assert_eq!(
            parse_pod_order(b"p-1\np-0\np-1-tuned-0\n", "o", &t).unwrap(),
            vec![1, 0, 1]
        );
        assert_eq!(
            parse_node_names(b"0001-n-a\n0000-n-b\n", "r", &t).unwrap(),
            vec![1, 0]
        );
    }

    #[test]
    fn bad_draws() {
        let t = trace();
        let cases: &[(&[u8], bool, Location, &str)] = &[
            (
                b"p-1\np-9\n",
                true,
                Location::LineCol(2, 1),
                "unknown pod `p-9`",
            ),
            (
                b"p-1-tuned-x\n",
                true,
                Location::LineCol(1, 1),
                "unknown pod",
            ),
            (b"", true, Location::File, "empty"),
            (b"\xff", true, Location::File, "not UTF-8"),
            (
                b"0001-n-a\n",
                false,
                Location::File,
                "node `n-b` is missing",
            ),
            (
                b"0001-n-a\n0001-n-b\n",
                false,
                Location::LineCol(2, 1),
                "rank 1 already used on line 1",
            ),
            (
                b"0001-n-a\n0002-n-a\n",
                false,
                Location::LineCol(2, 1),
                "listed twice",
            ),
            (b"x-n-a\n", false, Location::LineCol(1, 1), "not a rank"),
            (
                b"0001-n-z\n",
                false,
                Location::LineCol(1, 1),
                "unknown node",
            ),
        ];
        for (input, is_order, loc, fragment) in cases {
            let err = if *is_order {
                parse_pod_order(input, "f", &t).map(|_| ()).unwrap_err()
            } else {
                parse_node_names(input, "f", &t).map(|_| ()).unwrap_err()
            };
            assert_eq!(&err.location, loc, "{err}");
            assert!(err.message.contains(fragment), "`{err}` lacks `{fragment}`");
        }
    }
}
