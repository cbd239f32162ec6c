//! Providers, contracts and power (`[[sites]]`, `contract`, `spill_after_s`): power never above a site's
//! cap at any instant (recomputed here from the placements, not read from the engine), committed cost
//! independent of use, on-demand cost equal to the GPU-hours used x price, the spill threshold, the
//! start-up delay of on-demand capacity, and located errors for bad input.

mod common;

use common::{bin, from_toml, load, load_with, repo, report_value, run};
use predicates::prelude::*;
use ultrasched::domain::cluster::Contract;
use ultrasched::domain::workload::{time_from_s, time_to_s, Workload};
use ultrasched::engine::cluster::Outcome;
use ultrasched::input::workload::Overrides;

/// Facility power of every site at every instant a placement starts or ends, W, from the pools' idle and
/// busy power and the segments alone: (time, site, watts).
fn site_power(w: &Workload, o: &Outcome) -> Vec<(u64, usize, f64)> {
    let c = &w.cluster;
    let mut instants: Vec<u64> = o.segments.iter().flat_map(|s| [s.start, s.end]).collect();
    instants.sort_unstable();
    instants.dedup();
    let mut out = Vec::new();
    for &t in &instants {
        for (k, site) in c.sites.iter().enumerate() {
            let mut watts = 0.0;
            for (p, pool) in c.pools.iter().enumerate() {
                if pool.site != Some(k as u32) {
                    continue;
                }
                // GPUs held at t: segments with start <= t < end (an ending one has released them).
                let busy: u64 = o
                    .segments
                    .iter()
                    .filter(|s| s.start <= t && t < s.end)
                    .flat_map(|s| s.domains.iter())
                    .filter(|&&(d, _)| c.domain_pool[d as usize] as usize == p)
                    .map(|&(_, g)| g as u64)
                    .sum();
                watts += (pool.gpus() - busy) as f64 * pool.idle_w + busy as f64 * pool.busy_w;
            }
            out.push((t, k, watts * site.pue));
        }
    }
    out
}

/// One site, one pool of 8 GB200 UltraServers (576 GPUs, 1,200 W busy, 128 W idle, PUE 1.25), and a queue
/// of 72-GPU jobs that would fill it. `cap` in MW.
fn capped(cap: Option<f64>) -> Workload {
    let cap = cap.map_or(String::new(), |c| format!("power_cap_mw = {c}"));
    from_toml(&format!(
        r#"
        seed = 3
        [[sites]]
        name = "dc"
        pue = 1.25
        {cap}
        [cluster]
        [[cluster.pools]]
        preset = "p6e-gb200"
        count = 8
        site = "dc"
        [scheduler]
        backfill = "greedy"
        [[generators]]
        count = 120
        rate_per_hour = 20
        gpu_mix = [ {{ gpus = 72, weight = 1 }}, {{ gpus = 36, weight = 1 }} ]
        duration = {{ median_s = 7200, sigma = 0.5 }}
        "#
    ))
}

#[test]
fn power_never_exceeds_a_cap_and_the_cap_binds() {
    // Uncapped, the fleet reaches its full draw: 576 x 1,200 W x 1.25 = 0.864 MW.
    let w = capped(None);
    let o = run(&w);
    let peak = site_power(&w, &o)
        .iter()
        .map(|&(_, _, watts)| watts)
        .fold(0.0, f64::max);
    assert!(peak > 0.8e6, "uncapped peak {peak} W");
    // A 0.6 MW cap holds about 380 of the 576 GPUs busy.
    let w = capped(Some(0.6));
    let o = run(&w);
    let power = site_power(&w, &o);
    for &(t, _, watts) in &power {
        assert!(
            watts <= 0.6e6 * (1.0 + 1e-9),
            "{watts} W at {} s is above the 0.6 MW cap",
            time_to_s(t)
        );
    }
    let peak = power.iter().map(|&(_, _, x)| x).fold(0.0, f64::max);
    assert!(peak > 0.55e6, "the cap binds: peak {peak} W");
    // Every job still ran, and the report says the same peak and names time at the cap.
    assert!(o.jobs.iter().all(|j| j.end.is_some()));
    let r = report_value(&w, &o);
    let site = &r["sites"][0];
    assert_eq!(site["name"], "dc");
    assert_eq!(site["cap_mw"], 0.6);
    assert!((site["peak_mw"].as_f64().unwrap() - peak / 1e6).abs() < 1e-9);
    assert!(site["time_at_cap_s"].as_f64().unwrap() > 0.0);
    assert!(site["mean_mw"].as_f64().unwrap() <= site["peak_mw"].as_f64().unwrap());
}

#[test]
fn the_bundled_multi_cloud_month_stays_under_both_caps() {
    let w = load("workloads/multi-cloud.toml");
    let o = run(&w);
    for &(t, k, watts) in &site_power(&w, &o) {
        let cap = w.cluster.sites[k].power_cap_w.unwrap();
        assert!(watts <= cap * (1.0 + 1e-9), "site {k} at {t}: {watts} W");
    }
}

/// A committed pool of 4 UltraServers and an on-demand pool of 8 H200 nodes at $7.5 per GPU-hour; a
/// 10-hour job on 288 GPUs fixes the makespan; `extra` 8-GPU jobs of an hour each.
fn contracts(extra: u32, spill: &str) -> Workload {
    from_toml(&format!(
        r#"
        [cluster]
        [[cluster.pools]]
        name = "committed"
        preset = "p6e-gb200"
        count = 4
        usd_per_gpu_hour = 5.0
        provider = "aws"
        [[cluster.pools]]
        name = "burst"
        preset = "p5en-h200"
        count = 8
        contract = "on-demand"
        usd_per_gpu_hour = 7.5
        provider = "google"
        startup_s = 300
        [scheduler]
        backfill = "greedy"
        {spill}
        [[jobs]]
        id = "anchor"
        gpus = 288
        duration_s = 36000
        gpu_model = "gb200"
        [[generators]]
        count = {extra}
        rate_per_hour = 1000
        gpu_mix = [ {{ gpus = 8, weight = 1 }} ]
        duration = {{ median_s = 3600, sigma = 0 }}
        "#
    ))
}

fn on_demand_gpu_hours(w: &Workload, o: &Outcome) -> f64 {
    o.segments
        .iter()
        .flat_map(|s| s.domains.iter().map(move |&(d, g)| (s, d, g)))
        .filter(|&(_, d, _)| w.cluster.pool_of(d).contract == Contract::OnDemand)
        .map(|(s, _, g)| g as f64 * (s.end - s.start) as f64 / 3.6e9)
        .sum()
}

#[test]
fn committed_cost_is_independent_of_use_and_on_demand_cost_is_what_was_used() {
    let (idle, busy) = (contracts(1, ""), contracts(40, ""));
    let (oi, ob) = (run(&idle), run(&busy));
    assert_eq!(oi.makespan, ob.makespan, "the anchor job sets the makespan");
    let (ri, rb) = (report_value(&idle, &oi), report_value(&busy, &ob));
    let committed = 288.0 * 10.0 * 5.0;
    for r in [&ri, &rb] {
        let c = r["cost_by_contract"]["committed"].as_f64().unwrap();
        assert!((c - committed).abs() < 1e-6, "committed {c}");
        assert_eq!(
            r["cost_by_provider"]["aws"],
            r["cost_by_contract"]["committed"]
        );
    }
    // The anchor fills the committed pool: the 40 small jobs spill to on-demand at once (spill_after 0).
    let used = on_demand_gpu_hours(&busy, &ob);
    assert!(used > 40.0 * 8.0, "used {used} GPU-h on demand");
    let od = rb["cost_by_contract"]["on-demand"].as_f64().unwrap();
    assert!(
        (od - used * 7.5).abs() < 1e-6,
        "on-demand ${od} for {used} GPU-h"
    );
    assert_eq!(
        rb["cost_by_provider"]["google"],
        rb["cost_by_contract"]["on-demand"]
    );
    let total = rb["summary"]["cost_usd"].as_f64().unwrap();
    assert!((total - committed - od).abs() < 1e-6);
    assert_eq!(rb["jobs_spilled"], 40);
    assert!((rb["on_demand_gpu_hours"].as_f64().unwrap() - used).abs() < 1e-9);
}

#[test]
fn on_demand_starts_up_and_opens_only_after_the_spill_threshold() {
    // Spill after 2 h: no job touches on-demand capacity before it has waited 2 h.
    let w = contracts(40, "spill_after_s = 7200");
    let o = run(&w);
    let mut spilled = 0;
    for s in &o.segments {
        let job = &w.jobs[s.job as usize];
        if s.domains
            .iter()
            .any(|&(d, _)| w.cluster.pool_of(d).contract == Contract::OnDemand)
        {
            spilled += 1;
            assert!(
                s.start >= job.submit + time_from_s(7200.0),
                "{} spilled after {} s",
                job.id,
                time_to_s(s.start - job.submit)
            );
            // A 1-hour job on on-demand capacity holds it for its run plus the 300 s start-up.
            assert_eq!(s.end - s.start, time_from_s(3600.0 + 300.0), "{}", job.id);
        }
    }
    assert!(
        spilled > 0,
        "the committed pool is full for 10 h: jobs spill"
    );
    // And as soon as it may: the first job to wait 2 h finds the on-demand pool empty and starts then,
    // though nothing else happens at that instant (no arrival: the last came at 140 s; no end: the anchor
    // ends at 10 h). The engine must wake for the threshold itself.
    let first = o
        .segments
        .iter()
        .filter(|s| {
            s.domains
                .iter()
                .any(|&(d, _)| w.cluster.pool_of(d).contract == Contract::OnDemand)
        })
        .map(|s| (s.start, w.jobs[s.job as usize].submit))
        .min()
        .expect("a spilled segment");
    assert_eq!(first.0, first.1 + time_from_s(7200.0));
    // Never spilling: nothing on-demand, nothing paid there.
    let w = contracts(40, "spill_after_s = 315360000");
    let o = run(&w);
    assert_eq!(on_demand_gpu_hours(&w, &o), 0.0);
    assert_eq!(report_value(&w, &o)["cost_by_contract"]["on-demand"], 0.0);
    // The --spill-after override reaches the run.
    let w = load_with(
        "workloads/multi-cloud.toml",
        Overrides {
            spill_after_s: Some(0.0),
            ..Default::default()
        },
    );
    assert_eq!(w.scheduler.spill_after, 0);
}

#[test]
fn a_job_no_site_could_ever_power_is_unschedulable() {
    // 0.2 MW holds the idle fleet (576 x 128 W x 1.25 = 92 kW) and at most ~99 busy GPUs: a 144-GPU
    // gang can never start; a 72-GPU one can.
    let w = from_toml(
        r#"
        [[sites]]
        name = "dc"
        pue = 1.25
        power_cap_mw = 0.2
        [cluster]
        [[cluster.pools]]
        preset = "p6e-gb200"
        count = 8
        site = "dc"
        [[jobs]]
        id = "big"
        gpus = 144
        duration_s = 3600
        [[jobs]]
        id = "small"
        gpus = 72
        duration_s = 3600
        "#,
    );
    let o = run(&w);
    assert_eq!(format!("{:?}", o.jobs[0].state), "Unschedulable");
    assert!(o.jobs[1].end.is_some());
}

#[test]
fn bad_capacity_input_exits_2_with_a_located_message() {
    let cases = [
        (
            "[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 2\nsite = \"nowhere\"\n",
            "cluster.pools[0].site",
        ),
        (
            "[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 2\nstartup_s = 60\n",
            "cluster.pools[0].startup_s",
        ),
        (
            "[[sites]]\nname = \"dc\"\npower_cap_mw = 0.0001\n[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 2\nsite = \"dc\"\n",
            "sites[0].power_cap_mw",
        ),
        (
            "[[sites]]\nname = \"dc\"\npue = 0.5\n[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 2\n",
            "PUE from 1 to 3",
        ),
        (
            "[[sites]]\nname = \"dc\"\n[[sites]]\nname = \"dc\"\n[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 2\n",
            "sites[1].name",
        ),
        (
            "[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 2\ncontract = \"spot\"\n",
            "contract",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (text, want)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("bad{i}.toml"));
        std::fs::write(&f, text).unwrap();
        bin()
            .arg("validate")
            .arg(&f)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(*want));
    }
    bin()
        .args([
            "run",
            &repo("workloads/multi-cloud.toml"),
            "--spill-after",
            "-5",
        ])
        .assert()
        .code(2);
}

/// The files of a run, checked against a workload (maybe not the one that ran).
fn check_against(
    checked: &Workload,
    ran: &Workload,
    o: &Outcome,
    edit: impl Fn(String) -> String,
) -> Result<ultrasched::check::Checked, ultrasched::check::CheckError> {
    use ultrasched::output::report::{jobs_csv, placements_csv};
    let report = edit(serde_json::to_string(&common::report(ran, o)).unwrap());
    ultrasched::check::check(
        checked,
        ultrasched::check::RunFiles {
            report_json: &report,
            jobs_csv: &jobs_csv(ran, o),
            placements_csv: &placements_csv(ran, o),
        },
    )
}

#[test]
fn the_checker_recomputes_power_spill_and_the_bill() {
    // The engine's own runs pass.
    let w = load("workloads/multi-cloud.toml");
    let o = run(&w);
    check_against(&w, &w, &o, |r| r).unwrap();
    let w = contracts(40, "spill_after_s = 7200");
    let o = run(&w);
    check_against(&w, &w, &o, |r| r).unwrap();
    // An uncapped run checked against the capped workload: the site is over its cap.
    let (capped_w, free_w) = (capped(Some(0.6)), capped(None));
    let o = run(&free_w);
    let err = check_against(&capped_w, &free_w, &o, |r| r)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("site `dc` draws") && err.contains("above its 0.6 MW cap"),
        "{err}"
    );
    // A run that spilled at once, checked against a threshold of two hours.
    let (at_once, late) = (contracts(40, ""), contracts(40, "spill_after_s = 7200"));
    let o = run(&at_once);
    let err = check_against(&late, &at_once, &o, |r| r)
        .unwrap_err()
        .to_string();
    assert!(err.contains("before it has waited spill_after_s"), "{err}");
    // A wrong bill.
    let o = run(&late);
    let err = check_against(&late, &late, &o, |r| {
        let mut v: serde_json::Value = serde_json::from_str(&r).unwrap();
        let x = v["cost_by_contract"]["on-demand"].as_f64().unwrap();
        v["cost_by_contract"]["on-demand"] = (x * 1.01).into();
        v.to_string()
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("cost_by_contract.on-demand"), "{err}");
}

#[test]
fn the_checker_draws_the_line_at_the_cap_itself() {
    // The 0.6 MW run's peak facility draw P, recomputed here from the placements (busy GPUs at 1,200 W and,
    // where the cap binds, ~200 idle ones at 128 W: ~30 kW of it). Checked against a cap of exactly P the
    // run is within it (no margin below the cap); against P less a millionth (0.6 W) it is over, which a
    // sum without the idle GPUs' share would not see.
    let w = capped(Some(0.6));
    let o = run(&w);
    let peak = site_power(&w, &o)
        .iter()
        .map(|&(_, _, watts)| watts)
        .fold(0.0, f64::max);
    assert!(
        peak > 0.55e6 && peak <= 0.6e6 * (1.0 + 1e-9),
        "peak {peak} W"
    );
    check_against(&capped(Some(peak / 1e6)), &w, &o, |r| r).unwrap();
    let err = check_against(&capped(Some(peak / 1e6 * (1.0 - 1e-6))), &w, &o, |r| r)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("site `dc` draws") && err.contains("above its"),
        "{err}"
    );
}

/// A committed GB200 pool and an on-demand one (no start-up), each one 72-GPU domain, spill after
/// `spill_after_s`; `before`: jobs ahead of an async RL job (an 8-GPU trainer and four 2-GPU rollout
/// replicas, 16 GPUs).
fn async_rl(spill_after_s: u32, before: &str) -> Workload {
    from_toml(&format!(
        r#"
[cluster]
[[cluster.pools]]
name = "committed"
preset = "p6e-gb200"
count = 1
[[cluster.pools]]
name = "burst"
preset = "p6e-gb200"
count = 1
contract = "on-demand"
startup_s = 0
[scheduler]
spill_after_s = {spill_after_s}
{before}
[[jobs]]
id = "rl"
kind = "rl"
gpus = 8
rl = {{ mode = "async", staleness = 1, steps = 5, llm = "llama-3-8b", episodes_per_step = 64, turns = 3, prompt_tokens = 1024, output_tokens = 128, reward_s = 5, rollout_replicas = 4, rollout_tp = 2 }}
"#
    ))
}

/// Job `j`'s first start, the GPUs of its first segment and the contracts of their pools (runs of one
/// contract merged).
fn first_segment(w: &Workload, o: &Outcome, j: usize) -> (Option<u64>, u32, Vec<Contract>) {
    let seg = o.segments.iter().find(|s| s.job as usize == j).unwrap();
    let gpus = seg.domains.iter().map(|&(_, g)| g).sum();
    let mut c: Vec<Contract> = seg
        .domains
        .iter()
        .map(|&(d, _)| w.cluster.pool_of(d).contract)
        .collect();
    c.dedup();
    (o.jobs[j].start, gpus, c)
}

#[test]
fn an_async_rl_job_takes_committed_capacity_before_on_demand() {
    // A committed GB200 pool with room for the whole job and an on-demand pool open at once: the training
    // gang and its rollout replicas both go to committed capacity, which is free (on-demand is for what
    // committed capacity cannot take).
    let w = async_rl(0, "");
    let o = run(&w);
    assert_eq!(
        first_segment(&w, &o, 0),
        (Some(0), 16, vec![Contract::Committed])
    );
}

/// The spill threshold wakes the engine only where there is on-demand capacity to open, and never again at
/// the instant a job arrives. Two 16-GPU jobs of 100 s on two committed P5 nodes: b waits for a. The
/// rounds with a job waiting, by hand: at 0 s (a starts, b waits) and at 100 s (b starts), 2.
/// - Without on-demand pools, `spill_after_s = 50` adds no instant at 50 s.
/// - With an on-demand pool too small for b (one 8-GPU node) and `spill_after_s = 0`, that pool is open
///   from the start: no second round at 0 s.
#[test]
fn the_spill_threshold_wakes_the_engine_only_where_there_is_on_demand_capacity() {
    for (burst, spill) in [("", 50), ("burst", 0)] {
        let burst_pool = if burst.is_empty() {
            String::new()
        } else {
            "[[cluster.pools]]\nname = \"burst\"\npreset = \"p5-h100\"\ncount = 1\ncontract = \"on-demand\"\n"
                .to_string()
        };
        let w = from_toml(&format!(
            r#"
[cluster]
[[cluster.pools]]
name = "committed"
preset = "p5-h100"
count = 2
{burst_pool}
[scheduler]
spill_after_s = {spill}
[[jobs]]
id = "a"
gpus = 16
duration_s = 100
[[jobs]]
id = "b"
gpus = 16
duration_s = 100
"#
        ));
        let o = run(&w);
        let starts: Vec<f64> = o.jobs.iter().map(|j| time_to_s(j.start.unwrap())).collect();
        assert_eq!(starts, [0.0, 100.0], "{burst:?}");
        assert_eq!(o.rounds, 2, "{burst:?}, spill after {spill} s");
    }
}

/// EASY's reservation for a head that may spill counts the on-demand capacity it may use. One committed
/// P5 node and one on-demand P5 node (no start-up), spill at once. At 0 s `a` (4 GPUs, 1,000 s) takes
/// half the committed node and `a2` (8 GPUs, 100 s) spills to the on-demand node. At 1 s `h` (8 GPUs)
/// fits nowhere: its reservation is at 100 s, when `a2` leaves the on-demand node (on committed
/// capacity alone it would be 1,000 s). At 2 s `b` (4 GPUs, 5,000 s) fits the committed node's other half
/// and runs past 100 s, but `h` still fits the on-demand node then: `b` backfills at 2 s, `h` starts at
/// 100 s.
#[test]
fn easy_reserves_a_head_that_may_spill_on_the_on_demand_capacity_it_may_use() {
    let w = from_toml(
        r#"
[cluster]
[[cluster.pools]]
name = "committed"
preset = "p5-h100"
count = 1
[[cluster.pools]]
name = "burst"
preset = "p5-h100"
count = 1
contract = "on-demand"
startup_s = 0
[scheduler]
backfill = "easy"
spill_after_s = 0
[[jobs]]
id = "a"
gpus = 4
duration_s = 1000
[[jobs]]
id = "a2"
gpus = 8
duration_s = 100
[[jobs]]
id = "h"
gpus = 8
duration_s = 100
submit_s = 1
[[jobs]]
id = "b"
gpus = 4
duration_s = 5000
submit_s = 2
"#,
    );
    let o = run(&w);
    let starts: Vec<f64> = o.jobs.iter().map(|j| time_to_s(j.start.unwrap())).collect();
    assert_eq!(starts, [0.0, 0.0, 100.0, 2.0]);
    assert_eq!(o.jobs[2].reserved.map(time_to_s), Some(100.0));
    assert!(o.jobs[3].backfilled);
}

/// The same async RL job: before the spill threshold its training gang and rollout replicas take committed
/// capacity at once (the on-demand pool is not open yet, and the job needs none of it); with the committed
/// pool full and the threshold at 0, the whole job spills to on-demand at once.
#[test]
fn an_async_rl_job_uses_committed_capacity_before_the_threshold_and_spills_whole_when_it_is_full() {
    let w = async_rl(3600, "");
    let o = run(&w);
    assert_eq!(
        first_segment(&w, &o, 0),
        (Some(0), 16, vec![Contract::Committed])
    );
    let w = async_rl(
        0,
        "[[jobs]]\nid = \"fill\"\ngpus = 72\nduration_s = 1000\ntopology = { required = \"domain\" }\n",
    );
    let o = run(&w);
    assert_eq!(
        first_segment(&w, &o, 0),
        (Some(0), 72, vec![Contract::Committed])
    );
    assert_eq!(
        first_segment(&w, &o, 1),
        (Some(0), 16, vec![Contract::OnDemand])
    );
}

/// A job that fails on committed capacity retries with the on-demand pools open only when that opens
/// something: two committed P5 nodes, one of them held by `a` (H100 only) until 100 s, and a service of
/// two 8-GPU H100 replicas that may spill at once. Kernel calls by hand: at 0 s `a` scores once, the
/// service's first replica once (feasible: the free node) and its second once (infeasible).
/// - On-demand GB200 pool (the service's model is not there): the masks with it open are the same, so no
///   second try; at 100 s one call per replica. Starts at 100 s; 5 calls.
/// - On-demand H100 pool: the second try scores both replicas again (2 calls) and the second replica
///   spills: starts at 0 s; 5 calls.
#[test]
fn a_job_retries_with_on_demand_pools_open_only_when_that_opens_a_pool_it_may_use() {
    for (burst, start_s) in [("p6e-gb200-x36", 100.0), ("p5-h100", 0.0)] {
        let w = from_toml(&format!(
            r#"
[cluster]
[[cluster.pools]]
name = "committed"
preset = "p5-h100"
count = 2
[[cluster.pools]]
name = "burst"
preset = "{burst}"
count = 1
contract = "on-demand"
startup_s = 0
[scheduler]
backfill = "none"
spill_after_s = 0
[[jobs]]
id = "a"
gpus = 8
duration_s = 100
gpu_model = "h100"
[[jobs]]
id = "svc"
kind = "inference"
replicas = 2
gpus_per_replica = 8
lifetime_s = 10
gpu_model = "h100"
"#
        ));
        let o = run(&w);
        assert_eq!(
            (time_to_s(o.jobs[1].start.unwrap()), o.kernel.kernel_calls),
            (start_s, 5),
            "{burst}"
        );
    }
}
