//! One fleet shared by training and autoscaled inference (issue 12): checkpoint losses, reclaims, elastic
//! shrinking, autoscaling after a traffic step, live serving equal to post-run serving for fixed replicas,
//! GPU accounting at every sample, determinism. Expected times are computed by hand in the comments.

mod common;

use common::{from_toml, report_value, run};
use ultrasched::domain::workload::{JobKind, Workload};
use ultrasched::engine::cluster::Outcome;

/// (start s, end s) of every segment of job `id`, in start order.
fn segs(w: &Workload, o: &Outcome, id: &str) -> Vec<(f64, f64)> {
    let j = w.jobs.iter().position(|j| j.id == id).expect("job exists");
    o.segments
        .iter()
        .filter(|s| s.job as usize == j)
        .map(|s| (s.start as f64 / 1e6, s.end as f64 / 1e6))
        .collect()
}

fn job<'a>(w: &Workload, o: &'a Outcome, id: &str) -> &'a ultrasched::engine::cluster::JobOutcome {
    &o.jobs[w.jobs.iter().position(|j| j.id == id).expect("job exists")]
}

/// `domains` NVLink domains of one 8-GPU node each.
fn nodes8(domains: u32, scheduler: &str, jobs: &str) -> String {
    format!(
        "[cluster]\n[[cluster.pools]]\nname = \"n\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = {domains}\n\
         [scheduler]\nplacement = \"first-fit\"\n{scheduler}\n{jobs}"
    )
}

#[test]
fn a_preempted_job_loses_the_work_since_its_last_checkpoint() {
    // a: 8 GPUs, 10,000 s of compute, a 100 s checkpoint after every 1,000 s; b (higher priority) arrives at
    // 2,500 s. Cycle 1,100 s: two checkpoints done by 2,200 s, so a keeps 2,000 s and loses 300 s, plus the
    // 50 s restart cost: lost = 350 s x 8 GPUs = 2,800 GPU-s = 0.7778 GPU-h. a restarts at 2,600 with
    // 10,000 - 2,000 + 50 = 8,050 s of compute: 8 more checkpoints (ceil(8,050 / 1,000) - 1), 8,850 s, so
    // it ends at 11,450 s.
    let text = nodes8(
        1,
        "queue = \"priority\"\npreemption = true\nrestart_cost_s = 50",
        "[[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 10000\ncheckpoint_interval_s = 1000\ncheckpoint_s = 100\n\
         [[jobs]]\nid = \"b\"\ngpus = 8\nduration_s = 100\npriority = 10\nsubmit_s = 2500\n",
    );
    let w = from_toml(&text);
    let o = run(&w);
    assert_eq!(segs(&w, &o, "a"), vec![(0.0, 2500.0), (2600.0, 11450.0)]);
    assert_eq!(segs(&w, &o, "b"), vec![(2500.0, 2600.0)]);
    let a = job(&w, &o, "a");
    assert_eq!(a.preemptions, 1);
    assert_eq!(a.lost_gpu_time, 2_800 * 1_000_000);
    // Checkpoints written: 2 before the preemption, 8 after: 10 x 100 s x 8 GPUs.
    assert_eq!(a.checkpoint_gpu_time, 8_000 * 1_000_000);
    let r = report_value(&w, &o);
    let sh = &r["sharing"];
    assert!((sh["lost_gpu_hours"].as_f64().unwrap() - 2800.0 / 3600.0).abs() < 1e-9);
    // Held: a 2,500 + 8,850 s, b 100 s, on 8 GPUs = 91,600 GPU-s; lost + checkpoints 10,800.
    let goodput = 1.0 - 10_800.0 / 91_600.0;
    assert!(
        (sh["goodput"].as_f64().unwrap() - goodput).abs() < 1e-9,
        "{sh}"
    );
}

#[test]
fn without_checkpoints_a_preempted_job_keeps_its_work() {
    // The old rule stays for jobs that do not checkpoint: a keeps 2,500 s, redoes the 50 s restart cost.
    let text = nodes8(
        1,
        "queue = \"priority\"\npreemption = true\nrestart_cost_s = 50",
        "[[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 10000\n\
         [[jobs]]\nid = \"b\"\ngpus = 8\nduration_s = 100\npriority = 10\nsubmit_s = 2500\n",
    );
    let w = from_toml(&text);
    let o = run(&w);
    assert_eq!(segs(&w, &o, "a"), vec![(0.0, 2500.0), (2600.0, 10150.0)]);
    assert_eq!(job(&w, &o, "a").lost_gpu_time, 50 * 8 * 1_000_000);
}

/// A chat service on 8-GPU replicas: far more requests than one replica keeps below the target, so it wants
/// its maximum from the first evaluation on.
fn busy_service(min: u32, max: u32, lifetime: u32) -> String {
    format!(
        "[[jobs]]\nid = \"svc\"\nkind = \"inference\"\nreplicas = 1\ngpus_per_replica = 8\nlifetime_s = {lifetime}\n\
         priority = 100\n[jobs.serving]\nmodel = \"llama-3-8b\"\n\
         autoscale = {{ min_replicas = {min}, max_replicas = {max}, target_outstanding = 1, cold_start_s = 10, \
         cooldown_s = 600, eval_period_s = 5 }}\n\
         traffic = {{ kind = \"poisson\", rate_per_s = 50, prompt_tokens = {{ median = 1000 }}, \
         output_tokens = {{ median = 200 }} }}\n"
    )
}

#[test]
fn loan_reclaims_training_capacity_and_the_replica_starts_after_its_victim_stops() {
    // Two domains: the service's first replica on domain 0, training job t on domain 1 (submitted at 1 s).
    // At the first evaluation (5 s) the service wants 2 replicas; nothing is free, so t is preempted at 5 s
    // and the new replica takes domain 1 from 5 s, serving at 15 s (cold start 10 s). t waits until the
    // service ends at 100 s and then runs its remaining 1,000 - 4 + 50 (restart) = 1,046 s.
    let jobs = format!(
        "{}[[jobs]]\nid = \"t\"\ngpus = 8\nduration_s = 1000\nsubmit_s = 1\n",
        busy_service(1, 2, 100)
    );
    let text = nodes8(
        2,
        "queue = \"priority\"\nsharing = \"loan\"\nrestart_cost_s = 50",
        &jobs,
    );
    let w = from_toml(&text);
    let o = run(&w);
    assert_eq!(segs(&w, &o, "t"), vec![(1.0, 5.0), (100.0, 1146.0)]);
    // The service: one replica from 0 to 5 s, two from 5 s (the new one's gang starts when t's ends).
    assert_eq!(segs(&w, &o, "svc"), vec![(0.0, 5.0), (5.0, 100.0)]);
    let svc = o
        .segments
        .iter()
        .filter(|s| w.jobs[s.job as usize].id == "svc")
        .collect::<Vec<_>>();
    assert_eq!(svc[1].gangs.len(), 2);
    assert_eq!(o.reclaims.count, 1);
    assert_eq!(o.reclaims.preempted, 1);
    // Wanted at 5 s, serving at 15 s.
    assert_eq!(o.reclaims.latencies, vec![10_000_000]);
    assert_eq!(job(&w, &o, "t").preemptions, 1);
    assert_eq!(job(&w, &o, "svc").resizes, 1);
}

#[test]
fn static_sharing_reserves_max_replicas_and_training_waits() {
    // Static: the service holds both domains (its max_replicas) for its whole lifetime; t starts at 100 s.
    let jobs = format!(
        "{}[[jobs]]\nid = \"t\"\ngpus = 8\nduration_s = 1000\nsubmit_s = 1\n",
        busy_service(1, 2, 100)
    );
    let text = nodes8(2, "queue = \"priority\"\nsharing = \"static\"", &jobs);
    let w = from_toml(&text);
    let o = run(&w);
    assert_eq!(segs(&w, &o, "t"), vec![(100.0, 1100.0)]);
    assert_eq!(segs(&w, &o, "svc"), vec![(0.0, 100.0)]);
    assert_eq!(o.reclaims.count, 0);
    // It served with 1 replica, then 2 from the first evaluation (5 s) on, out of its reserve.
    assert_eq!(
        o.services[0].timeline,
        vec![(0, 1), (5_000_000, 2), (100_000_000, 0)]
    );
}

/// Three 8-GPU domains: the busy service (1 to 2 replicas, until 3,000 s) and `e`, 1,000 s of work on 16
/// GPUs that may shrink to 8 (with `model`, a training model, when not empty), under `sharing`.
fn elastic_fleet(sharing: &str, model: &str) -> Workload {
    let jobs = format!(
        "{}[[jobs]]\nid = \"e\"\nduration_s = 1000\nelastic = {{ min_gpus = 8, max_gpus = 16 }}\n{model}",
        busy_service(1, 2, 3000)
    );
    from_toml(&nodes8(
        3,
        &format!("queue = \"priority\"\nsharing = \"{sharing}\"\nrestart_cost_s = 50"),
        &jobs,
    ))
}

#[test]
fn elastic_training_shrinks_before_anything_is_preempted() {
    // Three domains: the service on domain 0, elastic e (16 GPUs, may shrink to 8) on domains 1 and 2.
    // At 5 s the service wants a second replica: e gives up domain 1's 8 GPUs (no preemption) and runs on
    // 8 GPUs at half speed (no training model: throughput in proportion to GPUs). It keeps 5 s of work
    // (no checkpoints) and pays the 50 s restart: 1,000 - 5 + 50 = 1,045 s of work at 2 s per second of
    // work = 2,090 s, so it ends at 2,095 s. The service holds 16 GPUs until 3,000 s: no room to grow back.
    let w = elastic_fleet("elastic", "");
    let o = run(&w);
    assert_eq!(segs(&w, &o, "e"), vec![(0.0, 5.0), (5.0, 2095.0)]);
    let e = job(&w, &o, "e");
    assert_eq!((e.preemptions, e.resizes), (0, 1));
    // Lost: no work since a checkpoint (it keeps all 5 s), the 50 s restart on the 16 GPUs it held.
    assert_eq!(e.lost_gpu_time, 50 * 16 * 1_000_000);
    assert_eq!(o.reclaims.shrunk, 1);
    assert_eq!(o.reclaims.preempted, 0);
    let last = o
        .segments
        .iter()
        .rfind(|s| w.jobs[s.job as usize].id == "e")
        .unwrap();
    assert_eq!(last.domains, vec![(2, 8)]);
}

#[test]
fn loan_without_elastic_preempts_the_elastic_job_instead() {
    // The same fleet under loan: e is preempted (it cannot shrink), and restarts when the service ends.
    let w = elastic_fleet("loan", "");
    let o = run(&w);
    let e = job(&w, &o, "e");
    assert_eq!((e.preemptions, e.resizes), (1, 0));
    assert_eq!(segs(&w, &o, "e"), vec![(0.0, 5.0), (3000.0, 4045.0)]);
}

#[test]
fn gpus_held_by_inference_and_training_add_up_at_every_sample() {
    // Recomputed from the segments at each sample instant, not read from the engine's counters.
    let jobs = format!(
        "{}[[jobs]]\nid = \"t\"\ngpus = 8\nduration_s = 1000\nsubmit_s = 1\n\
         [[jobs]]\nid = \"u\"\ngpus = 4\nduration_s = 300\nsubmit_s = 2\n",
        busy_service(1, 2, 400)
    );
    for sharing in ["static", "loan", "elastic"] {
        let text = nodes8(
            3,
            &format!("queue = \"priority\"\nsharing = \"{sharing}\"\nbackfill = \"easy\""),
            &jobs,
        );
        let w = from_toml(&text);
        let o = run(&w);
        let total = w.cluster.total_gpus;
        for s in &o.samples {
            let (mut inf, mut train) = (0u64, 0u64);
            for seg in o
                .segments
                .iter()
                .filter(|g| g.start <= s.time && s.time < g.end)
            {
                let g: u64 = seg.domains.iter().map(|&(_, n)| u64::from(n)).sum();
                if w.jobs[seg.job as usize].kind == JobKind::Inference {
                    inf += g;
                } else {
                    train += g;
                }
            }
            assert_eq!(s.inference_gpus, inf, "{sharing} at {}", s.time);
            assert_eq!(
                s.busy_gpus - s.inference_gpus,
                train,
                "{sharing} at {}",
                s.time
            );
            assert!(inf + train <= total, "{sharing} at {}", s.time);
        }
    }
}

#[test]
fn live_serving_of_fixed_replicas_equals_post_run_serving() {
    // min = max = 3: the live path (evaluations every 5 s, never a change) against the same service without
    // autoscale, served after the run: the same requests, the same latencies.
    let service = |autoscale: &str| {
        nodes8(
            4,
            "queue = \"fifo\"",
            &format!(
                "[[jobs]]\nid = \"svc\"\nkind = \"inference\"\nreplicas = 3\ngpus_per_replica = 8\n\
                 lifetime_s = 600\nsubmit_s = 30\n[jobs.serving]\nmodel = \"llama-3-8b\"\nrouter = \"least-outstanding\"\n\
                 {autoscale}traffic = {{ kind = \"sessions\", sessions_per_s = 2, turns = {{ median = 4, sigma = 0.5 }}, \
                 first_prompt_tokens = {{ median = 2000, sigma = 0.5 }}, tokens_per_turn = {{ median = 300 }}, \
                 output_tokens = {{ median = 150, sigma = 0.5 }}, tool_wait_s = {{ median_s = 2, sigma = 0.5 }} }}\n"
            ),
        )
    };
    let serve = |text: &str| {
        let w = from_toml(text);
        let o = run(&w);
        let inf = ultrasched::engine::serving::serve_services(&w, &o)
            .unwrap()
            .unwrap();
        (o.services.len(), inf)
    };
    let (live_n, live) = serve(&service(
        "autoscale = { min_replicas = 3, max_replicas = 3, target_outstanding = 4, eval_period_s = 5 }\n",
    ));
    let (post_n, post) = serve(&service(""));
    assert_eq!((live_n, post_n), (1, 0));
    assert!(live.requests > 1000, "{}", live.requests);
    assert_eq!(live.requests, post.requests);
    assert_eq!(live.completed, post.completed);
    assert_eq!(live.output_tokens, post.output_tokens);
    assert_eq!(live.ttft_s, post.ttft_s);
    assert_eq!(live.tpot_s, post.tpot_s);
    assert_eq!(live.e2e_s, post.e2e_s);
    assert_eq!(live.slo_attainment, post.slo_attainment);
    assert_eq!(live.cost_usd, post.cost_usd);
}

#[test]
fn autoscaling_follows_a_traffic_step_within_cold_start_and_one_period() {
    // Traffic x0.05 until 600 s, then x1 (50 requests/s): from the first evaluation after 600 s (at most one
    // period, 5 s, later) the service starts replicas, which serve 10 s (cold start) after that.
    let text = nodes8(
        4,
        "queue = \"priority\"\nsharing = \"loan\"",
        "[[jobs]]\nid = \"svc\"\nkind = \"inference\"\nreplicas = 1\ngpus_per_replica = 8\nlifetime_s = 900\n\
         [jobs.serving]\nmodel = \"llama-3-8b\"\n\
         autoscale = { min_replicas = 1, max_replicas = 4, target_outstanding = 8, cold_start_s = 10, cooldown_s = 600, eval_period_s = 5 }\n\
         traffic = { kind = \"poisson\", rate_per_s = 50, rate_schedule = [[0, 0.05], [600, 0.05], [600.000001, 1.0]], \
         prompt_tokens = { median = 1000 }, output_tokens = { median = 200 } }\n",
    );
    let w = from_toml(&text);
    let o = run(&w);
    let tl = &o.services[0].timeline;
    let first_up = tl
        .iter()
        .find(|&&(_, n)| n > 1)
        .map(|&(t, _)| t)
        .expect("scaled up");
    assert!(first_up > 600_000_000 && first_up <= 605_000_000, "{tl:?}");
    // Before the step one replica was enough.
    assert!(tl.iter().all(|&(t, n)| t > 600_000_000 || n == 1), "{tl:?}");
}

#[test]
fn live_serving_is_deterministic() {
    let jobs = format!(
        "{}[[jobs]]\nid = \"e\"\nduration_s = 1000\nelastic = {{ min_gpus = 8, max_gpus = 16 }}\n\
         [[jobs]]\nid = \"t\"\ngpus = 8\nduration_s = 500\nsubmit_s = 3\n",
        busy_service(1, 3, 1200)
    );
    let text = nodes8(4, "queue = \"priority\"\nsharing = \"elastic\"", &jobs);
    let w = from_toml(&text);
    let (a, b) = (run(&w), run(&w));
    assert_eq!(report_value(&w, &a), report_value(&w, &b));
    let (ia, ib) = (
        ultrasched::engine::serving::serve_services(&w, &a).unwrap(),
        ultrasched::engine::serving::serve_services(&w, &b).unwrap(),
    );
    assert_eq!(
        serde_json::to_string(&ia).unwrap(),
        serde_json::to_string(&ib).unwrap()
    );
}

/// A small shared fleet as a file, for the command-line tests.
fn small_fleet(dir: &std::path::Path) -> std::path::PathBuf {
    let jobs = format!(
        "{}[[jobs]]\nid = \"e\"\nduration_s = 1000\nelastic = {{ min_gpus = 8, max_gpus = 16 }}\n\
         checkpoint_interval_s = 100\ncheckpoint_s = 5\n\
         [[jobs]]\nid = \"t\"\ngpus = 8\nduration_s = 500\nsubmit_s = 3\n",
        busy_service(1, 2, 600)
    );
    let path = dir.join("fleet.toml");
    std::fs::write(&path, nodes8(3, "queue = \"priority\"", &jobs)).unwrap();
    path
}

#[test]
fn compare_puts_the_sharing_policies_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let file = small_fleet(dir.path());
    let out = common::bin()
        .args([
            "compare",
            file.to_str().unwrap(),
            "--sharing",
            "static,loan,elastic",
            "--format",
            "csv",
            "-q",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    let header: Vec<&str> = lines[0].split(',').collect();
    for col in [
        "sharing",
        "slo_attainment",
        "training_wait_mean_s",
        "goodput",
        "lost_gpu_hours",
        "usd_per_million_output_tokens",
    ] {
        assert!(header.contains(&col), "{col} missing: {}", lines[0]);
    }
    let at = header.iter().position(|&c| c == "sharing").unwrap();
    let policies: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(at).unwrap())
        .collect();
    assert_eq!(policies, ["static", "loan", "elastic"]);
    // Static makes t wait for the reserve; loan and elastic start it at once and reclaim later.
    let wait = header
        .iter()
        .position(|&c| c == "training_wait_mean_s")
        .unwrap();
    let waits: Vec<f64> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(wait).unwrap().parse().unwrap())
        .collect();
    assert!(waits[0] > waits[1], "{waits:?}");
}

#[test]
fn run_writes_the_sharing_report_and_the_checker_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = small_fleet(dir.path());
    let out_dir = dir.path().join("out");
    let trace = dir.path().join("trace.json");
    let out = common::bin()
        .args([
            "run",
            file.to_str().unwrap(),
            "--sharing",
            "elastic",
            "-q",
            "--out",
        ])
        .arg(&out_dir)
        .arg("--trace-out")
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("sharing    elastic"), "{table}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap())
            .unwrap();
    let sh = &r["sharing"];
    assert_eq!(sh["policy"], "elastic");
    // Two 8-GPU replicas at most; the mean runs over the whole run (training outlives the service).
    assert_eq!(sh["inference_gpus"]["max"], 16.0, "{sh}");
    assert!(sh["inference_gpus"]["mean"].as_f64().unwrap() > 0.0, "{sh}");
    assert_eq!(sh["services"][0]["id"], "svc");
    assert_eq!(sh["services"][0]["replicas"]["max"], 2.0);
    assert!(sh["shrunk"].as_u64().unwrap() >= 1, "{sh}");
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(
        html.contains("GPUs by use over time"),
        "sharing section missing"
    );
    assert!(html.contains("SLO attainment per hour"));
    let t = std::fs::read_to_string(&trace).unwrap();
    assert!(
        t.contains("svc replicas start"),
        "no replica event in the trace"
    );
    let check = common::bin().arg("check").arg(&out_dir).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn bad_sharing_input_is_a_located_error() {
    let dir = tempfile::tempdir().unwrap();
    for (text, needle) in [
        (nodes8(1, "sharing = \"shared\"", ""), "sharing"),
        (
            nodes8(1, "", "[[jobs]]\nid = \"s\"\nkind = \"inference\"\nreplicas = 1\ngpus_per_replica = 8\nlifetime_s = 10\nelastic = { min_gpus = 8, max_gpus = 8 }\n"),
            "jobs[0].elastic",
        ),
        (
            nodes8(1, "", "[[jobs]]\nid = \"t\"\ngpus = 8\nduration_s = 10\nelastic = { min_gpus = 16, max_gpus = 8 }\n"),
            "elastic.min_gpus",
        ),
        (
            nodes8(1, "", "[[jobs]]\nid = \"t\"\ngpus = 8\nduration_s = 10\ncheckpoint_s = 5\n"),
            "checkpoint_s",
        ),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, &text).unwrap();
        let out = common::bin().arg("validate").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{needle} not in {err}");
    }
}

#[test]
fn an_slo_target_adds_a_replica_per_evaluation_while_ttft_is_above_it() {
    // Every TTFT is above 1 us: from the first evaluation (5 s) on, one more replica each period, up to 4.
    // With a 100 s target every p90 is below half of it: one fewer each period (no cool-down), down to 1.
    let service = |replicas: u32, target: &str| {
        nodes8(
            4,
            "queue = \"priority\"\nsharing = \"loan\"",
            &format!(
                "[[jobs]]\nid = \"svc\"\nkind = \"inference\"\nreplicas = {replicas}\ngpus_per_replica = 8\n\
                 lifetime_s = 40\n[jobs.serving]\nmodel = \"llama-3-8b\"\n\
                 autoscale = {{ min_replicas = 1, max_replicas = 4, target_ttft_p90_s = {target}, slo_window_s = 60, \
                 cold_start_s = 10, cooldown_s = 0, eval_period_s = 5 }}\n\
                 traffic = {{ kind = \"poisson\", rate_per_s = 50, prompt_tokens = {{ median = 1000 }}, \
                 output_tokens = {{ median = 200 }} }}\n"
            ),
        )
    };
    let s = |t: u64| t * 1_000_000;
    let w = from_toml(&service(1, "0.000001"));
    let o = run(&w);
    assert_eq!(
        o.services[0].timeline,
        vec![(0, 1), (s(5), 2), (s(10), 3), (s(15), 4), (s(40), 0)]
    );
    let w = from_toml(&service(4, "100"));
    let o = run(&w);
    assert_eq!(
        o.services[0].timeline,
        vec![(0, 4), (s(5), 3), (s(10), 2), (s(15), 1), (s(40), 0)]
    );
}

#[test]
fn a_request_trace_is_time_scaled_and_looped_over_the_lifetime() {
    // The bundled Mooncake sample, at twice its rate (time_scale 0.5), looped over an hour. One pass lasts
    // (span + mean gap) x 0.5; pass k sends the requests whose scaled arrival, plus k passes, is inside the
    // hour. Recomputed here from the file itself.
    let trace = common::repo("workloads/traces/mooncake/synthetic_trace.jsonl");
    let mut arrivals: Vec<u64> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["timestamp"].as_u64().unwrap() * 1000
        })
        .collect();
    arrivals.sort_unstable();
    let first = arrivals[0];
    let rel: Vec<u64> = arrivals.iter().map(|a| a - first).collect();
    let n = rel.len() as u64;
    let span = *rel.last().unwrap();
    let period = (((span + span / (n - 1)) as f64) * 0.5).round() as u64;
    let lifetime = 3_600_000_000u64;
    let mut want = 0u64;
    for k in 0.. {
        if k * period >= lifetime {
            break;
        }
        want += rel
            .iter()
            .filter(|&&a| k * period + ((a as f64 * 0.5).round() as u64) < lifetime)
            .count() as u64;
    }
    assert!(
        want > 2 * n,
        "the hour holds more than two passes: {want} of {n}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.toml");
    let text = nodes8(
        8,
        "queue = \"priority\"\nsharing = \"loan\"",
        &format!(
            "[[jobs]]\nid = \"svc\"\nkind = \"inference\"\nreplicas = 2\ngpus_per_replica = 8\nlifetime_s = 3600\n\
             [jobs.serving]\nmodel = \"llama-3-8b\"\nrouter = \"kv-aware\"\n\
             autoscale = {{ min_replicas = 2, max_replicas = 8, target_outstanding = 16 }}\n\
             traffic = {{ kind = \"trace\", file = {:?}, format = \"mooncake\", time_scale = 0.5 }}\n",
            trace
        ),
    );
    std::fs::write(&path, text).unwrap();
    let w = ultrasched::input::workload::load(&path, Default::default()).unwrap();
    let o = run(&w);
    let inf = ultrasched::engine::serving::serve_services(&w, &o)
        .unwrap()
        .unwrap();
    assert_eq!(inf.requests, want);
    // A field of another kind is refused, naming it.
    std::fs::write(
        &path,
        nodes8(
            1,
            "",
            &format!(
                "[[jobs]]\nid = \"svc\"\nkind = \"inference\"\nreplicas = 1\ngpus_per_replica = 8\nlifetime_s = 60\n\
                 [jobs.serving]\nmodel = \"llama-3-8b\"\n\
                 traffic = {{ kind = \"trace\", file = {:?}, format = \"mooncake\", rate_per_s = 3 }}\n",
                trace
            ),
        ),
    )
    .unwrap();
    let e = ultrasched::input::workload::load(&path, Default::default()).unwrap_err();
    assert!(
        format!("{e:#}").contains("jobs[0].serving.traffic.rate_per_s"),
        "{e:#}"
    );
}

#[test]
fn a_shrunk_elastic_job_with_a_model_runs_at_its_model_step() {
    // As `elastic_training_shrinks_before_anything_is_preempted`, with a training model on e: at 8 GPUs of
    // its 16 it runs each unit of work at the model's step time on 8 GPUs over the step on its ideal
    // split (two domains of 8), not at full speed: 1,045 s of work from 5 s.
    let w = elastic_fleet(
        "elastic",
        "model = { params_b = 7, tokens_per_step = 65536, tp = 1, mfu = 0.4 }\n",
    );
    let o = run(&w);
    let e = w.jobs.iter().position(|j| j.id == "e").unwrap();
    let model = w.jobs[e].model.expect("a training model");
    let preset = &w.cluster.pool_of(0).preset;
    let ideal = ultrasched::perf::training::ideal_split(preset, 16);
    assert_eq!(ideal, [8, 8]);
    let ratio = ultrasched::perf::training::step_time_s(&model, preset, &[8])
        / ultrasched::perf::training::step_time_s(&model, preset, &ideal);
    assert!(ratio > 1.0, "half the GPUs, a slower step: {ratio}");
    let work = 1_045_000_000u64;
    let end = 5_000_000 + (work as f64 * ratio).ceil() as u64;
    let o_e = job(&w, &o, "e");
    assert_eq!((o_e.preemptions, o_e.resizes), (0, 1));
    assert_eq!(o_e.end, Some(end));
}
