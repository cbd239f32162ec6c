//! The run as a timeline in the Chrome trace event format (a JSON object with `traceEvents`), for
//! ui.perfetto.dev and chrome://tracing. Pure: same outcome -> same bytes.
//!
//! Layout: process 0 ("cluster") holds the counters (queue, busy GPUs, utilisation); each pool is a process
//! and each NVLink domain a thread (track) in it; each job segment is a complete event ("X") on every domain
//! it touched, named by job id. Trace viewers need the slices of one thread to nest, but jobs that share a
//! domain overlap freely, so a domain that runs several jobs at once gets extra lanes: threads named
//! "domain N #2", "#3", ... sorted right under it. Simulated time is already in microseconds, the unit of
//! `ts` and `dur`.

use crate::domain::workload::Workload;
use crate::engine::cluster::Outcome;
use std::fmt::Write as _;

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Lane of every (segment, domain entry): the lowest lane of that domain free at the segment's start, so
/// slices on one lane never overlap. Returns the lanes (indexed like the segments' domain lists) and the
/// lane count of each domain (at least 1).
pub fn lanes(o: &Outcome, domains: usize) -> (Vec<Vec<u32>>, Vec<u32>) {
    let mut lane_end: Vec<Vec<u64>> = vec![Vec::new(); domains];
    let mut out = Vec::with_capacity(o.segments.len());
    for seg in &o.segments {
        let mut ls = Vec::with_capacity(seg.domains.len());
        for &(d, _) in &seg.domains {
            let Some(ends) = lane_end.get_mut(d as usize) else {
                ls.push(0);
                continue;
            };
            let lane = match ends.iter().position(|&e| e <= seg.start) {
                Some(l) => l,
                None => {
                    ends.push(0);
                    ends.len() - 1
                }
            };
            ends[lane] = seg.end;
            ls.push(lane as u32);
        }
        out.push(ls);
    }
    let counts = lane_end.iter().map(|e| e.len().max(1) as u32).collect();
    (out, counts)
}

/// The trace of a run as Chrome trace event JSON.
pub fn trace_json(w: &Workload, o: &Outcome) -> String {
    let c = &w.cluster;
    let (seg_lanes, lane_counts) = lanes(o, c.num_domains());
    // Thread id of lane 0 of each domain: lanes of one pool numbered consecutively from 1.
    let mut first_tid = vec![0u32; c.num_domains()];
    let mut ev: Vec<String> = Vec::new();
    ev.push(r#"{"name":"process_name","ph":"M","pid":0,"tid":0,"args":{"name":"cluster"}}"#.into());
    ev.push(
        r#"{"name":"process_sort_index","ph":"M","pid":0,"tid":0,"args":{"sort_index":0}}"#.into(),
    );
    for (pi, p) in c.pools.iter().enumerate() {
        let pid = pi + 1;
        ev.push(format!(
            r#"{{"name":"process_name","ph":"M","pid":{pid},"tid":0,"args":{{"name":{}}}}}"#,
            js(&format!(
                "pool {} ({} x{}, {})",
                p.name,
                p.preset.id,
                p.domains,
                p.preset.model().id
            ))
        ));
        ev.push(format!(
            r#"{{"name":"process_sort_index","ph":"M","pid":{pid},"tid":0,"args":{{"sort_index":{pid}}}}}"#
        ));
        let mut tid = 1u32;
        for local in 0..p.domains {
            let d = (p.first_domain + local) as usize;
            first_tid[d] = tid;
            for lane in 0..lane_counts[d] {
                let name = if lane == 0 {
                    format!("domain {local}")
                } else {
                    format!("domain {local} #{}", lane + 1)
                };
                ev.push(format!(
                    r#"{{"name":"thread_name","ph":"M","pid":{pid},"tid":{tid},"args":{{"name":{}}}}}"#,
                    js(&name)
                ));
                ev.push(format!(
                    r#"{{"name":"thread_sort_index","ph":"M","pid":{pid},"tid":{tid},"args":{{"sort_index":{tid}}}}}"#
                ));
                tid += 1;
            }
        }
    }
    for s in &o.samples {
        let util = s.busy_gpus as f64 * 100.0 / c.total_gpus.max(1) as f64;
        ev.push(format!(
            r#"{{"name":"queue","ph":"C","ts":{},"pid":0,"tid":0,"args":{{"waiting":{},"running":{}}}}}"#,
            s.time, s.queued, s.running
        ));
        ev.push(format!(
            r#"{{"name":"busy GPUs","ph":"C","ts":{},"pid":0,"tid":0,"args":{{"busy":{}}}}}"#,
            s.time, s.busy_gpus
        ));
        ev.push(format!(
            r#"{{"name":"utilisation %","ph":"C","ts":{},"pid":0,"tid":0,"args":{{"util":{util:.2}}}}}"#,
            s.time
        ));
    }
    // Autoscaled services: a counter of replicas and an instant event at every start or stop.
    for run in &o.services {
        let Some(job) = w.jobs.get(run.job) else {
            continue;
        };
        let mut last = 0u32;
        for &(t, n) in &run.timeline {
            ev.push(format!(
                r#"{{"name":{},"ph":"C","ts":{t},"pid":0,"tid":0,"args":{{"replicas":{n}}}}}"#,
                js(&format!("replicas {}", job.id))
            ));
            if n != last {
                let what = if n > last {
                    "replicas start"
                } else {
                    "replicas stop"
                };
                ev.push(format!(
                    r#"{{"name":{},"cat":"autoscale","ph":"i","s":"g","ts":{t},"pid":0,"tid":0,"args":{{"from":{last},"to":{n}}}}}"#,
                    js(&format!("{} {what}", job.id))
                ));
            }
            last = n;
        }
    }
    for (seg, ls) in o.segments.iter().zip(&seg_lanes) {
        let Some(job) = w.jobs.get(seg.job as usize) else {
            continue;
        };
        for (&(d, gpus), &lane) in seg.domains.iter().zip(ls) {
            let Some(&pool) = c.domain_pool.get(d as usize) else {
                continue;
            };
            let mut e = String::new();
            let _ = write!(
                e,
                r#"{{"name":{},"cat":"{}","ph":"X","ts":{},"dur":{},"pid":{},"tid":{},"args":{{"gpus":{gpus},"job_gpus":{},"kind":"{}","tenant":{},"priority":{}}}}}"#,
                js(&job.id),
                job.kind.as_str(),
                seg.start,
                seg.end.saturating_sub(seg.start),
                pool + 1,
                first_tid[d as usize] + lane,
                job.total_gpus(),
                job.kind.as_str(),
                js(&job.tenant),
                job.priority
            );
            ev.push(e);
        }
    }
    let mut out = String::with_capacity(ev.iter().map(|e| e.len() + 2).sum::<usize>() + 200);
    let _ = write!(
        out,
        "{{\"displayTimeUnit\":\"ms\",\"otherData\":{{\"workload\":{},\"seed\":\"{}\",\"time_unit\":\"simulated microseconds\"}},\n\"traceEvents\":[\n",
        js(&w.name),
        w.seed
    );
    for (i, e) in ev.iter().enumerate() {
        out.push_str(e);
        out.push_str(if i + 1 < ev.len() { ",\n" } else { "\n" });
    }
    out.push_str("]}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cluster::{Outcome, Segment};

    fn outcome(segments: Vec<Segment>) -> Outcome {
        Outcome {
            jobs: Vec::new(),
            samples: Vec::new(),
            segments,
            makespan: 0,
            busy_gpu_time: 0,
            rounds: 0,
            kernel: Default::default(),
            services: Vec::new(),
            reclaims: Default::default(),
            failures: None,
        }
    }

    #[test]
    fn overlapping_jobs_on_a_domain_get_separate_lanes_and_free_lanes_are_reused() {
        let seg = |job, start, end, d| Segment {
            job,
            start,
            end,
            domains: vec![(d, 4)],
            gangs: Vec::new(),
        };
        let o = outcome(vec![
            seg(0, 0, 10, 0),
            seg(1, 5, 20, 0),  // overlaps job 0: lane 1
            seg(2, 10, 15, 0), // job 0 ended at 10: lane 0 again
            seg(3, 12, 30, 0), // both busy: lane 2
            seg(4, 0, 5, 1),
        ]);
        let (l, counts) = lanes(&o, 3);
        assert_eq!(l, vec![vec![0], vec![1], vec![0], vec![2], vec![0]]);
        assert_eq!(counts, vec![3, 1, 1]);
    }
}
