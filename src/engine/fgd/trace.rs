//! A node list and a pod list turned into kernel records once, shared by every experiment of a study:
//! model ids, pods sorted by name, pod shapes, typical pods, capacity.

use std::collections::HashMap;

use crate::error::InputError;
use crate::kernel::node_score::{
    NodeRecord, PodRecord, TypicalRecord, ANY_MODEL, MAX_GPUS, MILLI, TAG_SHARE,
};

/// One node of a node list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Serial name (`sn`), unique.
    pub name: String,
    /// CPU capacity (milli).
    pub cpu_milli: u32,
    /// Memory capacity (MiB).
    pub memory_mib: u32,
    /// GPUs (0..=8).
    pub gpus: u32,
    /// GPU model (empty for CPU-only nodes).
    pub model: String,
}

/// One pod of a pod list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    /// Pod name, unique.
    pub name: String,
    /// CPU demand (milli).
    pub cpu_milli: u32,
    /// Memory demand (MiB).
    pub memory_mib: u32,
    /// GPUs k (0..=8).
    pub num_gpu: u32,
    /// Milli-GPU per GPU m, clamped to 0..=1000 as the original does.
    pub gpu_milli: u32,
    /// Acceptable GPU models separated by `|`; empty (or `nan`) = any.
    pub gpu_spec: String,
    /// QoS class, when the file has the column.
    pub qos: Option<String>,
    /// Phase in the production trace, when the file has the column.
    pub pod_phase: Option<String>,
    /// Creation time (s), when present.
    pub creation_time: Option<u64>,
    /// Deletion time (s), when present.
    pub deletion_time: Option<u64>,
    /// Scheduled time (s), when present (empty for pods that never ran).
    pub scheduled_time: Option<u64>,
}

impl Pod {
    /// The models of `gpu_spec` (empty = any model).
    pub fn spec_models(&self) -> impl Iterator<Item = &str> {
        self.gpu_spec
            .split('|')
            .map(str::trim)
            .filter(|m| !m.is_empty())
    }
}

/// Share of all pods the typical pods must cover (docs/fgd.md: 95 %).
const TYPICAL_COVERAGE_PCT: u64 = 95;

/// The immutable input of every experiment on one (node list, pod list) pair.
#[derive(Clone, Debug)]
pub struct Trace {
    /// Workload label: the pod file's stem (e.g. `openb_pod_list_default`).
    pub workload: String,
    /// Node names, in file order (the index is the node id).
    pub node_names: Vec<String>,
    /// Initial node records (all free; rank = index, version 1).
    pub nodes: Vec<NodeRecord>,
    /// GPU model names; a model id indexes this.
    pub models: Vec<String>,
    /// Pod names sorted ascending (the index is the pod id).
    pub pod_names: Vec<String>,
    /// Pod records, same order as `pod_names`.
    pub pods: Vec<PodRecord>,
    /// Typical pods with frequencies (built from the original pods).
    pub typical: Vec<TypicalRecord>,
    /// Share of all original pods that the typical pods cover (0..1).
    pub typical_coverage: f64,
    /// Distinct pod shapes (`PodRecord::shape` ranges over 0..shapes).
    pub shapes: usize,
    /// GPUs in the cluster.
    pub total_gpus: u32,
}

/// Model mask of a `gpu_spec`: bits of the listed models that some node has; `ANY_MODEL` when empty.
fn model_mask(pod: &Pod, model_ids: &HashMap<&str, u32>) -> u32 {
    let mut listed = false;
    let mut mask = 0u32;
    for m in pod.spec_models() {
        listed = true;
        if let Some(&id) = model_ids.get(m) {
            mask |= 1 << id;
        }
    }
    if listed {
        mask
    } else {
        ANY_MODEL
    }
}

impl Trace {
    /// Builds the records. `nodes_file` labels errors about the node list (more than 32 GPU models).
    pub fn new(
        workload: &str,
        nodes: &[Node],
        nodes_file: &str,
        pods: &[Pod],
    ) -> Result<Trace, InputError> {
        let mut models: Vec<String> = Vec::new();
        let mut node_records = Vec::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            let model = if n.gpus == 0 {
                0
            } else if let Some(id) = models.iter().position(|m| *m == n.model) {
                id as u32
            } else {
                if models.len() == 32 {
                    return Err(InputError::row(
                        nodes_file,
                        i + 1,
                        Some("model"),
                        format!(
                            "a 33rd GPU model `{}`; at most 32 distinct models are supported",
                            n.model
                        ),
                    ));
                }
                models.push(n.model.clone());
                (models.len() - 1) as u32
            };
            let mut rec = NodeRecord {
                cpu_left: n.cpu_milli,
                mem_left: n.memory_mib,
                model,
                gpu_count: n.gpus.min(MAX_GPUS as u32),
                rank: i as u32,
                version: 1,
                ..Default::default()
            };
            for g in 0..rec.gpu_count as usize {
                rec.gpu_left[g] = MILLI;
            }
            node_records.push(rec);
        }
        let model_ids: HashMap<&str, u32> = models
            .iter()
            .enumerate()
            .map(|(i, m)| (m.as_str(), i as u32))
            .collect();

        let mut sorted: Vec<&Pod> = pods.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        let mut shape_ids: HashMap<(u32, u32, u32, u32), u32> = HashMap::new();
        let mut records = Vec::with_capacity(sorted.len());
        for p in &sorted {
            let (gpus, milli) = (p.num_gpu, p.gpu_milli.min(MILLI));
            let uses_gpu = gpus > 0 && milli > 0;
            let mask = if uses_gpu {
                model_mask(p, &model_ids)
            } else {
                ANY_MODEL
            };
            let tag = if !uses_gpu {
                0
            } else if gpus == 1 && milli < MILLI {
                TAG_SHARE
            } else {
                1 << gpus
            };
            let next = shape_ids.len() as u32;
            let shape = *shape_ids
                .entry((p.cpu_milli, gpus, milli, mask))
                .or_insert(next);
            records.push(PodRecord {
                cpu: p.cpu_milli,
                mem: p.memory_mib,
                gpus,
                milli,
                model_mask: mask,
                tag,
                shape,
                _pad: 0,
            });
        }
        let (typical, typical_coverage) = typical_pods(pods, &model_ids);
        Ok(Trace {
            workload: workload.to_string(),
            node_names: nodes.iter().map(|n| n.name.clone()).collect(),
            total_gpus: node_records.iter().map(|n| n.gpu_count).sum(),
            nodes: node_records,
            models,
            pod_names: sorted.iter().map(|p| p.name.clone()).collect(),
            pods: records,
            typical,
            typical_coverage,
            shapes: shape_ids.len(),
        })
    }

    /// Cluster GPU capacity in milli-GPU.
    pub fn capacity_milli(&self) -> u64 {
        self.total_gpus as u64 * MILLI as u64
    }
}

/// Typical pods per docs/fgd.md: count pods by (cpu, m, k, gpu_spec), most frequent first (ties: key
/// descending), until the running count reaches 95 % of all pods; frequency = count / kept count.
/// Returns them and the share of pods they cover.
pub fn typical_pods(pods: &[Pod], model_ids: &HashMap<&str, u32>) -> (Vec<TypicalRecord>, f64) {
    let mut counts: HashMap<(u32, u32, u32, &str), (u64, &Pod)> = HashMap::new();
    for p in pods {
        let key = (
            p.cpu_milli,
            p.gpu_milli.min(MILLI),
            p.num_gpu,
            p.gpu_spec.as_str(),
        );
        counts.entry(key).or_insert((0, p)).0 += 1;
    }
    let mut keys: Vec<_> = counts.into_iter().collect();
    keys.sort_by(|(ka, (ca, _)), (kb, (cb, _))| cb.cmp(ca).then_with(|| kb.cmp(ka)));
    let total = pods.len() as u64;
    let mut kept = Vec::new();
    let mut running = 0u64;
    for (_, (count, pod)) in keys {
        if running * 100 >= TYPICAL_COVERAGE_PCT * total {
            break;
        }
        running += count;
        kept.push((count, pod));
    }
    let typical = kept
        .iter()
        .map(|&(count, p)| {
            let (gpus, milli) = (p.num_gpu, p.gpu_milli.min(MILLI));
            let uses_gpu = gpus > 0 && milli > 0;
            TypicalRecord {
                cpu: p.cpu_milli,
                gpus,
                milli,
                model_mask: if uses_gpu {
                    model_mask(p, model_ids)
                } else {
                    ANY_MODEL
                },
                freq: count as f64 / running as f64,
                count: u32::try_from(count).unwrap_or(u32::MAX),
            }
        })
        .collect();
    (
        typical,
        if total == 0 {
            0.0
        } else {
            running as f64 / total as f64
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::openb::{load_nodes, load_pods};
    use std::path::Path;

    #[test]
    fn default_trace_typical_pods_match_the_doc() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/traces/openb/");
        let nodes = load_nodes(Path::new(&format!("{root}openb_node_list_gpu_node.csv"))).unwrap();
        let pods = load_pods(Path::new(&format!("{root}openb_pod_list_default.csv"))).unwrap();
        let t = Trace::new("openb_pod_list_default", &nodes, "n", &pods).unwrap();
        assert_eq!(t.total_gpus, 6212);
        assert_eq!(t.typical.len(), 35);
        assert!(
            (t.typical_coverage - 0.9526).abs() < 5e-5,
            "{}",
            t.typical_coverage
        );
        let top = t.typical[0];
        // docs/fgd.md says cpu 3150; the trace says 3152 (1047 pods), which is what counts.
        assert_eq!((top.cpu, top.milli, top.gpus), (3152, 810, 1));
        let kept = (t.typical_coverage * 8152.0).round();
        assert!((top.freq - 1047.0 / kept).abs() < 1e-12);
        assert!((t.typical.iter().map(|x| x.freq).sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(t.pod_names.windows(2).all(|w| w[0] < w[1]));
    }
}
