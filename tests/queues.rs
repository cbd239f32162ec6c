//! Queue policies against hand-computed schedules: `las` (Tiresias' discretized least-attained-service,
//! preemptive at a threshold) on one 8-GPU node, and its input checks.

mod common;

use common::{bin, from_toml, run};

/// (job, start s, end s) of every segment, in start order.
fn segments(text: &str) -> Vec<(String, f64, f64)> {
    let w = from_toml(text);
    let o = run(&w);
    let mut s: Vec<(String, f64, f64)> = o
        .segments
        .iter()
        .map(|g| {
            (
                w.jobs[g.job as usize].id.clone(),
                g.start as f64 / 1e6,
                g.end as f64 / 1e6,
            )
        })
        .collect();
    s.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    s
}

fn node8(queue: &str, extra: &str, jobs: &str) -> String {
    format!(
        "[cluster]\n[[cluster.pools]]\nname = \"n\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 1\n\
         [scheduler]\nqueue = \"{queue}\"\nrestart_cost_s = 0\nplacement = \"first-fit\"\n{extra}\n{jobs}"
    )
}

/// a: 8 GPUs x 300 s at 0; b: 8 x 50 s at 10; c: 4 x 500 s at 20.
const JOBS: &str = "[[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 300\nsubmit_s = 0\n\
                    [[jobs]]\nid = \"b\"\ngpus = 8\nduration_s = 50\nsubmit_s = 10\n\
                    [[jobs]]\nid = \"c\"\ngpus = 4\nduration_s = 500\nsubmit_s = 20\n";

fn seg(id: &str, start: f64, end: f64) -> (String, f64, f64) {
    (id.to_string(), start, end)
}

#[test]
fn las_demotes_at_the_threshold_and_the_waiting_job_of_a_lower_queue_preempts() {
    // Threshold 800 GPU-s. t=0: a starts in queue 0. b (10) and c (20) wait in queue 0 behind a (FIFO
    // inside the queue). t=100: a has 8 x 100 = 800 GPU-s: demoted to queue 1; b (queue 0) preempts it and
    // runs 100..150. t=150: queue order c (queue 0), a (queue 1): c starts (4 GPUs); a needs 8, waits.
    // t=350: c reaches 4 x 200 = 800 GPU-s, demoted to queue 1, but nobody waits in queue 0: no preemption
    // (a and c share queue 1; LAS preempts across queues only). t=650: c ends; a restarts with its
    // remaining 200 s (restart cost 0): 650..850.
    let got = segments(&node8("las", "las_thresholds_gpu_s = [800]", JOBS));
    let want = vec![
        seg("a", 0.0, 100.0),
        seg("b", 100.0, 150.0),
        seg("c", 150.0, 650.0),
        seg("a", 650.0, 850.0),
    ];
    assert_eq!(got, want);
}

#[test]
fn fifo_on_the_same_jobs_never_preempts() {
    let got = segments(&node8("fifo", "", JOBS));
    let want = vec![
        seg("a", 0.0, 300.0),
        seg("b", 300.0, 350.0),
        seg("c", 350.0, 850.0),
    ];
    assert_eq!(got, want);
}

#[test]
fn las_charges_the_restart_cost_and_counts_preemptions() {
    // Same as above with restart_cost_s = 30: a's second segment redoes 30 s: 650..880.
    let text = node8("las", "las_thresholds_gpu_s = [800]", JOBS)
        .replace("restart_cost_s = 0", "restart_cost_s = 30");
    let w = from_toml(&text);
    let o = run(&w);
    let a = w.jobs.iter().position(|j| j.id == "a").unwrap();
    assert_eq!(o.jobs[a].preemptions, 1);
    assert_eq!(o.jobs[a].end, Some(880_000_000));
    let others: u32 = o.jobs.iter().map(|j| j.preemptions).sum::<u32>() - 1;
    assert_eq!(others, 0, "only a is preempted");
}

#[test]
fn las_with_three_queues_orders_by_attained_service() {
    // Thresholds 100 and 1000 GPU-s, one 8-GPU node. x: 8 x 40 s at 0 (320 GPU-s: demoted once, at 12.5 s,
    // to queue 1); y: 8 x 10 s at 5. t=12.5: x demoted (100 GPU-s); y (queue 0) preempts it: 12.5..22.5.
    // x restarts at 22.5 with 27.5 s left: 22.5..50.
    let jobs = "[[jobs]]\nid = \"x\"\ngpus = 8\nduration_s = 40\nsubmit_s = 0\n\
                [[jobs]]\nid = \"y\"\ngpus = 8\nduration_s = 10\nsubmit_s = 5\n";
    let got = segments(&node8("las", "las_thresholds_gpu_s = [100, 1000]", jobs));
    let want = vec![
        seg("x", 0.0, 12.5),
        seg("y", 12.5, 22.5),
        seg("x", 22.5, 50.0),
    ];
    assert_eq!(got, want);
}

#[test]
fn las_counts_attained_service_from_when_a_job_started() {
    // Thresholds 100 and 1000 GPU-s, one 8-GPU node, all jobs 8 GPUs. a: 0..60. b (100 s, at 60): 100 GPU-s
    // at 72.5 -> queue 1; c (10 s, at 80, queue 0) preempts it: 80..90. d (200 s, at 85) starts at 90 in
    // queue 0, reaches 100 GPU-s at 102.5 -> queue 1, beside the waiting b: same queue, no preemption. d
    // reaches 1000 GPU-s at 215 -> queue 2, and b (queue 1) preempts it: b 215..295 (80 s left), then d
    // 295..370 (75 s left). Service counted from time 0 instead of each start would put b and d in queue 2
    // early, and d would run to its end first.
    let jobs = "[[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 60\nsubmit_s = 0\n\
                [[jobs]]\nid = \"b\"\ngpus = 8\nduration_s = 100\nsubmit_s = 60\n\
                [[jobs]]\nid = \"c\"\ngpus = 8\nduration_s = 10\nsubmit_s = 80\n\
                [[jobs]]\nid = \"d\"\ngpus = 8\nduration_s = 200\nsubmit_s = 85\n";
    let got = segments(&node8("las", "las_thresholds_gpu_s = [100, 1000]", jobs));
    let want = vec![
        seg("a", 0.0, 60.0),
        seg("b", 60.0, 80.0),
        seg("c", 80.0, 90.0),
        seg("d", 90.0, 215.0),
        seg("b", 215.0, 295.0),
        seg("d", 295.0, 370.0),
    ];
    assert_eq!(got, want);
}

#[test]
fn bad_las_thresholds_exit_2_naming_the_field() {
    for (value, what) in [
        ("[]", "1 to 7 thresholds"),
        ("[100, 50]", "las_thresholds_gpu_s[1]"),
        ("[0]", "above 0"),
        ("[1, 2, 3, 4, 5, 6, 7, 8]", "1 to 7 thresholds"),
        ("[-5]", "las_thresholds_gpu_s"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("w.toml");
        std::fs::write(
            &f,
            node8("las", &format!("las_thresholds_gpu_s = {value}"), JOBS),
        )
        .unwrap();
        let out = bin().arg("validate").arg(&f).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(err.contains(what), "{value}: {err}");
    }
}

/// Four 2-GPU x 100 s jobs of tenant a, then four of tenant b, all submitted at 0, on one 8-GPU node.
fn tenant_jobs() -> String {
    let mut s = String::new();
    for t in ["a", "b"] {
        for k in 1..=4 {
            s += &format!(
                "[[jobs]]\nid = \"{t}{k}\"\ntenant = \"{t}\"\ngpus = 2\nduration_s = 100\nsubmit_s = 0\n"
            );
        }
    }
    s
}

fn starts(text: &str) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = segments(text).into_iter().map(|(j, s, _)| (j, s)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn at(pairs: &[(&str, f64)]) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = pairs.iter().map(|&(j, s)| (j.to_string(), s)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn fair_share_with_weights_gives_the_heavier_tenant_its_share() {
    // Weights a = 1, b = 3; shares are GPUs held / 8, over the weight. t=0: a 0 = b 0 (tie: name) -> a1
    // (a: 0.25); b 0 -> b1 (b: 0.083), b2 (0.167), b3 (0.25); node full. t=100: all end; a -> a2 (0.25),
    // b -> b4 (0.083), b has nobody left: a3, a4.
    let text = node8(
        "fair-share",
        "[scheduler.tenants]\na = 1\nb = 3",
        &tenant_jobs(),
    );
    let want = at(&[
        ("a1", 0.0),
        ("b1", 0.0),
        ("b2", 0.0),
        ("b3", 0.0),
        ("a2", 100.0),
        ("a3", 100.0),
        ("a4", 100.0),
        ("b4", 100.0),
    ]);
    assert_eq!(starts(&text), want);
}

#[test]
fn fair_share_with_equal_weights_alternates_and_fifo_does_not() {
    // Equal weights: a1, b1, a2, b2 at 0 (each pick goes to the tenant holding less), the rest at 100.
    let fair = node8("fair-share", "", &tenant_jobs());
    let want = at(&[
        ("a1", 0.0),
        ("b1", 0.0),
        ("a2", 0.0),
        ("b2", 0.0),
        ("a3", 100.0),
        ("b3", 100.0),
        ("a4", 100.0),
        ("b4", 100.0),
    ]);
    assert_eq!(starts(&fair), want);
    let fifo = node8("fifo", "", &tenant_jobs());
    let want = at(&[
        ("a1", 0.0),
        ("a2", 0.0),
        ("a3", 0.0),
        ("a4", 0.0),
        ("b1", 100.0),
        ("b2", 100.0),
        ("b3", 100.0),
        ("b4", 100.0),
    ]);
    assert_eq!(starts(&fifo), want);
}

#[test]
fn bad_tenant_weights_exit_2_naming_the_tenant() {
    for (value, what) in [
        ("0", "scheduler.tenants.a"),
        ("-1", "scheduler.tenants.a"),
        ("\"x\"", "tenants"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("w.toml");
        let text = node8(
            "fair-share",
            &format!("[scheduler.tenants]\na = {value}"),
            &tenant_jobs(),
        );
        std::fs::write(&f, text).unwrap();
        let out = bin().arg("validate").arg(&f).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(err.contains(what), "{value}: {err}");
    }
}

/// The mixed-fleet symptom of issue 10: a GB200-only head that cannot start must not hold back H100 jobs
/// that it could never use, even when they end long after its reservation.
#[test]
fn easy_backfill_never_idles_a_pool_behind_a_head_that_cannot_use_it() {
    let mut text = String::from(
        "[cluster]\n\
         [[cluster.pools]]\nname = \"h100\"\npreset = \"p5-h100\"\ncount = 4\n\
         [[cluster.pools]]\nname = \"gb200\"\npreset = \"p6e-gb200\"\ncount = 1\n\
         [scheduler]\nqueue = \"priority\"\nbackfill = \"easy\"\nplacement = \"first-fit\"\n\
         [[jobs]]\nid = \"g0\"\ngpus = 72\nduration_s = 10000\nsubmit_s = 0\ngpu_model = \"gb200\"\n\
         [[jobs]]\nid = \"g1\"\ngpus = 72\nduration_s = 10000\nsubmit_s = 1\ngpu_model = \"gb200\"\npriority = 5\n",
    );
    for k in 0..4 {
        text += &format!(
            "[[jobs]]\nid = \"h{k}\"\ngpus = 8\nduration_s = 50000\nsubmit_s = 2\ngpu_model = \"h100\"\n"
        );
    }
    let w = from_toml(&text);
    let o = run(&w);
    for (j, r) in w.jobs.iter().zip(&o.jobs) {
        let start = r.start.unwrap() / 1_000_000;
        match j.id.as_str() {
            "g0" => assert_eq!(start, 0),
            // The head starts at its reservation: when g0 ends.
            "g1" => assert_eq!(start, 10_000, "g1"),
            // Every H100 job starts on arrival (ending at 50,002 s, long after the shadow time 10,000).
            _ => assert_eq!(
                start, 2,
                "{} waited behind a head that cannot use H100s",
                j.id
            ),
        }
    }
    // The same with backfill = "none": the H100 jobs wait behind the head (strict order), which is what
    // the test above rules out for easy.
    let w = from_toml(&text.replace("backfill = \"easy\"", "backfill = \"none\""));
    let o = run(&w);
    let h0 = w.jobs.iter().position(|j| j.id == "h0").unwrap();
    assert_eq!(o.jobs[h0].start.unwrap() / 1_000_000, 10_000);
}

#[test]
fn fair_share_compares_dominant_shares_across_gpu_models() {
    // DRF: a tenant's share is the largest fraction it holds of any GPU model. From 0 s, `a` holds 16 of
    // the 32 B200s (0.5) and `b` 6 of the 8 H100s (0.75). At 10 s each submits a 2-GPU H100 job and only 2
    // H100s are free: `a` holds the smaller dominant share, so a_x starts at 10 s and b_x when it ends
    // (110 s), although b_x comes first in the file. Counting GPUs instead of fractions (16 > 6) would pick
    // b first.
    let text = "[cluster]\n\
        [[cluster.pools]]\nname = \"h\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 1\n\
        [[cluster.pools]]\nname = \"g\"\ngpu = \"b200\"\ngpus_per_node = 8\ncount = 4\n\
        [scheduler]\nqueue = \"fair-share\"\nplacement = \"first-fit\"\n\
        [[jobs]]\nid = \"a_big\"\ntenant = \"a\"\ngpus = 16\ngpu_model = \"b200\"\nduration_s = 1000\n\
        [[jobs]]\nid = \"b_big\"\ntenant = \"b\"\ngpus = 6\ngpu_model = \"h100\"\nduration_s = 1000\n\
        [[jobs]]\nid = \"b_x\"\ntenant = \"b\"\ngpus = 2\ngpu_model = \"h100\"\nduration_s = 100\nsubmit_s = 10\n\
        [[jobs]]\nid = \"a_x\"\ntenant = \"a\"\ngpus = 2\ngpu_model = \"h100\"\nduration_s = 100\nsubmit_s = 10\n";
    let want = at(&[
        ("a_big", 0.0),
        ("b_big", 0.0),
        ("a_x", 10.0),
        ("b_x", 110.0),
    ]);
    assert_eq!(starts(text), want);
}

#[test]
fn fair_share_picks_each_job_behind_a_blocked_head_after_the_one_before_it_starts() {
    // One 8-GPU node, greedy backfill. `x` (tenant z, 6 GPUs, 0-100 s) leaves 2 free. At 10 s `h` (tenant
    // a, all 8 GPUs) and 1-GPU jobs of tenants b and c arrive. Shares: a = b = c = 0, so a's `h` is walked
    // first and blocks. Behind it: b (tie: name) -> b1 starts, b now holds 1/8; c (0) -> c1 starts; node
    // full. b2 and c2 start at 100 when x ends (h, needing 8, still blocked), and h at 200 when they end.
    // Picking the jobs behind h before b1 starts (b's share still 0) would start b1 and b2 at 10 instead.
    let mut jobs = String::from(
        "[[jobs]]\nid = \"x\"\ntenant = \"z\"\ngpus = 6\nduration_s = 100\nsubmit_s = 0\n\
         [[jobs]]\nid = \"h\"\ntenant = \"a\"\ngpus = 8\nduration_s = 50\nsubmit_s = 10\n",
    );
    for id in ["b1", "b2", "c1", "c2"] {
        jobs += &format!(
            "[[jobs]]\nid = \"{id}\"\ntenant = \"{}\"\ngpus = 1\nduration_s = 100\nsubmit_s = 10\n",
            &id[..1]
        );
    }
    let text = node8("fair-share", "backfill = \"greedy\"", &jobs);
    let want = at(&[
        ("x", 0.0),
        ("b1", 10.0),
        ("c1", 10.0),
        ("b2", 100.0),
        ("c2", 100.0),
        ("h", 200.0),
    ]);
    assert_eq!(starts(&text), want);
}

#[test]
fn fair_share_forgets_the_gpus_of_a_job_that_ended() {
    // One 8-GPU node. a1 (tenant a) runs 0-100 s; a2 (a, submitted at 10 s) and b1 (b, at 50 s) wait, 8
    // GPUs each. At 100 s a1's GPUs go back: both tenants hold nothing, a tie that goes to the name, so
    // a2 runs 100-200 s and b1 200-300 s. Were a1's GPUs still counted against a, b1 would go first.
    let jobs = "[[jobs]]\nid = \"a1\"\ntenant = \"a\"\ngpus = 8\nduration_s = 100\nsubmit_s = 0\n\
                [[jobs]]\nid = \"a2\"\ntenant = \"a\"\ngpus = 8\nduration_s = 100\nsubmit_s = 10\n\
                [[jobs]]\nid = \"b1\"\ntenant = \"b\"\ngpus = 8\nduration_s = 100\nsubmit_s = 50\n";
    let want = at(&[("a1", 0.0), ("a2", 100.0), ("b1", 200.0)]);
    assert_eq!(starts(&node8("fair-share", "", jobs)), want);
}

#[test]
fn easy_backfill_walks_past_more_blocked_jobs_than_one_scoring_window() {
    // Two 8-GPU nodes. r holds one node until 1,000 s. Forty 16-GPU jobs (1-40 s) wait for the whole pool:
    // the first holds the reservation (1,000 s), none can start before. s (8 GPUs, 10 s, at 50 s) ends
    // long before the reservation, so EASY backfills it at once, though the walk reaches it only after
    // the forty blocked jobs (more than the engine's scoring window of 32).
    let mut jobs =
        String::from("[[jobs]]\nid = \"r\"\ngpus = 8\nduration_s = 1000\nsubmit_s = 0\n");
    for k in 1..=40 {
        jobs +=
            &format!("[[jobs]]\nid = \"w{k:02}\"\ngpus = 16\nduration_s = 100\nsubmit_s = {k}\n");
    }
    jobs += "[[jobs]]\nid = \"s\"\ngpus = 8\nduration_s = 10\nsubmit_s = 50\n";
    let text = format!(
        "[cluster]\n[[cluster.pools]]\nname = \"n\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 2\n\
         [scheduler]\nqueue = \"fifo\"\nbackfill = \"easy\"\nplacement = \"first-fit\"\n{jobs}"
    );
    let s = starts(&text);
    let start = |id: &str| s.iter().find(|(j, _)| j == id).map(|&(_, t)| t);
    assert_eq!(start("s"), Some(50.0));
    assert_eq!(start("w01"), Some(1000.0));
}

#[test]
fn jobs_behind_a_blocked_head_that_cannot_start_are_rejected_without_scoring() {
    // Issue 11's O(1) rejections, seen through the kernel's pair count. Pools a and b, two 8-GPU nodes each;
    // first-fit puts r1 in a and r2 in b. r1 holds 12 GPUs of a until 100 s, r2 14 of b until 1,000 s: 4
    // and 2 free. The head h (16 GPUs) waits for a whole pool, reserved at 100 s, when 16 + 2 are free.
    // Behind it, none can start before then:
    // - b1-b6 (8 GPUs): no pool has 8 free (`may_fit_now`, the largest pool);
    // - r (two 4-GPU replicas, 50 s): one pool has 4, but all pools hold 6 (`may_fit_now`, the sum);
    // - l1-l4 (4 GPUs, 1,000 s): fit a now, but end after 100 s and the head needs 16 of the 18
    //   (`breaks_reservation`).
    // Whenever a later job blocks, the ones behind it are as large or larger. So walking the queue behind a
    // blocked job (depth 256) decides what looking one job past it (depth 1) decides, and with the
    // rejections made before scoring it scores no more pairs either.
    let mut jobs = String::from(
        "[[jobs]]\nid = \"r1\"\ngpus = 12\nduration_s = 100\n\
         [[jobs]]\nid = \"r2\"\ngpus = 14\nduration_s = 1000\n\
         [[jobs]]\nid = \"h\"\ngpus = 16\nduration_s = 100\nsubmit_s = 1\n",
    );
    for k in 1..=6 {
        jobs += &format!("[[jobs]]\nid = \"b{k}\"\ngpus = 8\nduration_s = 10\nsubmit_s = 2\n");
    }
    jobs += "[[jobs]]\nid = \"r\"\nkind = \"inference\"\nreplicas = 2\ngpus_per_replica = 4\nlifetime_s = 50\nsubmit_s = 2\n";
    for k in 1..=4 {
        jobs += &format!("[[jobs]]\nid = \"l{k}\"\ngpus = 4\nduration_s = 1000\nsubmit_s = 2\n");
    }
    let text = |depth: u32| {
        format!(
            "[cluster]\n\
             [[cluster.pools]]\nname = \"a\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 2\n\
             [[cluster.pools]]\nname = \"b\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 2\n\
             [scheduler]\nqueue = \"fifo\"\nbackfill = \"easy\"\nbackfill_depth = {depth}\nplacement = \"first-fit\"\n{jobs}"
        )
    };
    let (walked, unwalked) = (run(&from_toml(&text(256))), run(&from_toml(&text(1))));
    let starts_of = |o: &ultrasched::engine::cluster::Outcome| -> Vec<Option<u64>> {
        o.jobs.iter().map(|j| j.start).collect()
    };
    assert_eq!(starts_of(&walked), starts_of(&unwalked));
    assert_eq!(
        walked.jobs[2].start,
        Some(100_000_000),
        "h at the reservation"
    );
    assert!(walked.jobs[3..]
        .iter()
        .all(|j| j.start >= Some(100_000_000)));
    assert_eq!(walked.kernel.pairs, unwalked.kernel.pairs);
    assert_eq!(walked.kernel.kernel_calls, unwalked.kernel.kernel_calls);
}

#[test]
fn easy_reserves_a_domain_required_head_when_a_domain_frees_not_when_the_pool_has_room() {
    // Two 72-GPU GB200 domains: a1 (40 GPUs, until 100 s) and c1 (24, until 200 s) in domain 0, a2 (40,
    // until 300 s) and c2 (20, until 400 s) in domain 1: 8 + 12 free. The head h needs 56 GPUs in one
    // domain. When a1 ends the pool has 48 + 12 = 60 free, but no domain 56 until c1 ends: h's reservation
    // is at 200 s. b (8 GPUs, 150 s, ending at 152 s) ends before it and backfills at once; a reservation
    // taken from the pool's free GPUs (100 s) would make b delay it.
    let text = "[cluster]\n[[cluster.pools]]\nname = \"g\"\npreset = \"p6e-gb200\"\ncount = 2\n\
        [scheduler]\nqueue = \"fifo\"\nbackfill = \"easy\"\nplacement = \"first-fit\"\n\
        [[jobs]]\nid = \"a1\"\ngpus = 40\nduration_s = 100\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"c1\"\ngpus = 24\nduration_s = 200\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"a2\"\ngpus = 40\nduration_s = 300\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"c2\"\ngpus = 20\nduration_s = 400\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"h\"\ngpus = 56\nduration_s = 100\nsubmit_s = 1\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"b\"\ngpus = 8\nduration_s = 150\nsubmit_s = 2\n";
    assert_eq!(
        starts(text),
        at(&[
            ("a1", 0.0),
            ("c1", 0.0),
            ("a2", 0.0),
            ("c2", 0.0),
            ("h", 200.0),
            ("b", 2.0)
        ])
    );
}

#[test]
fn easy_looks_no_further_behind_the_head_than_backfill_depth() {
    // Two 8-GPU nodes; r holds one until 100 s. h (16 GPUs) blocks, reserved at 100 s. Behind it, w (16
    // GPUs) cannot start either; s (8 GPUs, 10 s) could backfill at once, but it is the second job behind
    // the head: with backfill_depth = 1 the walk stops before it, with 2 it starts at once.
    let text = |depth: u32| {
        format!(
            "[cluster]\n[[cluster.pools]]\nname = \"n\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 2\n\
             [scheduler]\nqueue = \"fifo\"\nbackfill = \"easy\"\nbackfill_depth = {depth}\nplacement = \"first-fit\"\n\
             [[jobs]]\nid = \"r\"\ngpus = 8\nduration_s = 100\n\
             [[jobs]]\nid = \"h\"\ngpus = 16\nduration_s = 100\nsubmit_s = 1\n\
             [[jobs]]\nid = \"w\"\ngpus = 16\nduration_s = 100\nsubmit_s = 2\n\
             [[jobs]]\nid = \"s\"\ngpus = 8\nduration_s = 10\nsubmit_s = 3\n"
        )
    };
    let start = |depth: u32| {
        starts(&text(depth))
            .into_iter()
            .find(|(j, _)| j == "s")
            .map(|(_, t)| t)
    };
    assert_eq!(start(2), Some(3.0));
    // Not walked to while h waits; at 100 s h starts, then w (200 s), then s.
    assert_eq!(start(1), Some(300.0));
}

#[test]
fn easy_reserves_by_pool_for_replicas_spread_over_pools() {
    // Pools a (one 8-GPU H100 node) and b (two 8-GPU H200 nodes). svc's two 8-GPU replicas take all of a and
    // one node of b until 100 s. h (16 H200s) waits for b, reserved at 100 s when svc's replica in b ends.
    // x (8 H200s, 200 s) fits now but would still hold b then, so it waits for h. Each running job's GPUs
    // must be released per pool in the reservation's walk: svc's replica in b is b's.
    let text = "[cluster]\n\
        [[cluster.pools]]\nname = \"a\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 1\n\
        [[cluster.pools]]\nname = \"b\"\ngpu = \"h200\"\ngpus_per_node = 8\ncount = 2\n\
        [scheduler]\nqueue = \"fifo\"\nbackfill = \"easy\"\nplacement = \"first-fit\"\n\
        [[jobs]]\nid = \"svc\"\nkind = \"inference\"\nreplicas = 2\ngpus_per_replica = 8\nlifetime_s = 100\n\
        [[jobs]]\nid = \"h\"\ngpus = 16\nduration_s = 100\nsubmit_s = 1\ngpu_model = \"h200\"\n\
        [[jobs]]\nid = \"x\"\ngpus = 8\nduration_s = 200\nsubmit_s = 2\ngpu_model = \"h200\"\n";
    assert_eq!(
        starts(text),
        at(&[("h", 100.0), ("svc", 0.0), ("x", 200.0)])
    );
}

#[test]
fn easy_backfills_a_job_that_leaves_a_domain_required_head_exactly_its_gpus() {
    // Two 72-GPU GB200 domains: a (72 GPUs, until 100 s) fills domain 0, c (64, until 1,000 s) leaves 8 free
    // in domain 1. The head h needs a whole domain: reserved at 100 s, when 72 + 8 are free. b (8 GPUs,
    // 500 s) runs past the reservation, but in domain 1's 8: at 100 s exactly h's 72 are free, in one
    // domain, so b starts at once. (Refusing when what is left only equals the head would hold b to 100 s.)
    let text = "[cluster]\n[[cluster.pools]]\nname = \"g\"\npreset = \"p6e-gb200\"\ncount = 2\n\
        [scheduler]\nqueue = \"fifo\"\nbackfill = \"easy\"\nplacement = \"first-fit\"\n\
        [[jobs]]\nid = \"a\"\ngpus = 72\nduration_s = 100\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"c\"\ngpus = 64\nduration_s = 1000\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"h\"\ngpus = 72\nduration_s = 100\nsubmit_s = 1\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"b\"\ngpus = 8\nduration_s = 500\nsubmit_s = 2\n";
    assert_eq!(
        starts(text),
        at(&[("a", 0.0), ("b", 2.0), ("c", 0.0), ("h", 100.0)])
    );
}

#[test]
fn jobs_that_wait_behind_a_blocked_head_are_scored_in_one_call_per_round() {
    // Two 72-GPU GB200 domains; c1 and c2 (68 GPUs each, one domain each, until 10,000 s) leave 4 + 4 free.
    // The head h needs a whole domain: blocked until 10,000 s. Behind it wait k jobs d (8 GPUs in one
    // domain, 10 s): the pool has 8 free and they would end before the reservation, so they pass the O(1)
    // tests, but no domain has 8 free, so each round scores them and none fits. Each is followed by an x
    // (16 GPUs: more than the pool's free GPUs, rejected before scoring). Ticks t (4 GPUs, 1 s, every
    // 90 s) backfill and make two rounds each, 200 blocked rounds in all. The jobs behind a blocked head
    // are scored together (a window), so 20 waiting d cost no more calls per round than one: the
    // difference between k = 20 and k = 1 is the d's and x's own starts after 10,000 s, fewer than one
    // call per blocked round.
    let text = |k: u32| {
        let mut jobs = String::from(
            "[[jobs]]\nid = \"c1\"\ngpus = 68\nduration_s = 10000\ntopology = { required = \"domain\" }\n\
             [[jobs]]\nid = \"c2\"\ngpus = 68\nduration_s = 10000\ntopology = { required = \"domain\" }\n\
             [[jobs]]\nid = \"h\"\ngpus = 72\nduration_s = 100\nsubmit_s = 1\ntopology = { required = \"domain\" }\n",
        );
        for i in 0..k {
            jobs += &format!(
                "[[jobs]]\nid = \"d{i}\"\ngpus = 8\nduration_s = 10\nsubmit_s = 2\ntopology = {{ required = \"domain\" }}\n\
                 [[jobs]]\nid = \"x{i}\"\ngpus = 16\nduration_s = 10\nsubmit_s = 2\n"
            );
        }
        for i in 1..=100 {
            jobs += &format!(
                "[[jobs]]\nid = \"t{i}\"\ngpus = 4\nduration_s = 1\nsubmit_s = {}\n",
                i * 90
            );
        }
        format!(
            "[cluster]\n[[cluster.pools]]\nname = \"g\"\npreset = \"p6e-gb200\"\ncount = 2\n\
             [scheduler]\nqueue = \"fifo\"\nbackfill = \"easy\"\nplacement = \"first-fit\"\n{jobs}"
        )
    };
    let (one, twenty) = (run(&from_toml(&text(1))), run(&from_toml(&text(20))));
    for o in [&one, &twenty] {
        assert_eq!(
            o.jobs[2].start,
            Some(10_000_000_000),
            "h at the reservation"
        );
        // Every tick backfilled at its arrival; every d after the head.
        assert!(o.jobs[3..].iter().all(
            |j| j.start >= Some(10_000_000_000) || j.start.is_some_and(|s| s % 90_000_000 == 0)
        ));
    }
    let extra = twenty.kernel.kernel_calls - one.kernel.kernel_calls;
    assert!(
        extra < 200,
        "{} calls with one waiting d, {} with twenty",
        one.kernel.kernel_calls,
        twenty.kernel.kernel_calls
    );
}

#[test]
fn a_round_in_which_no_waiting_gang_fits_any_pool_scores_nothing() {
    // Two 8-GPU nodes; r holds one until 1,000 s. b (12 GPUs, at 1 s) waits for it. Fifty ticks (1 GPU,
    // 1 s, every 10 s) backfill at their arrival (greedy). When a tick ends, only b waits, and b needs more
    // GPUs than any pool has free: the round is skipped without scoring b (the walk's own skip of size
    // classes would not skip it: 12 is in the class of 8 to 15, and 8 are free). So b costs the same few
    // kernel calls however many ticks end while it waits; were the smallest waiting gang remembered from
    // jobs that left the queue, every tick's end would score b once more.
    let text = |with_b: bool| {
        let mut jobs = String::from("[[jobs]]\nid = \"r\"\ngpus = 8\nduration_s = 1000\n");
        if with_b {
            jobs += "[[jobs]]\nid = \"b\"\ngpus = 12\nduration_s = 10\nsubmit_s = 1\n";
        }
        for i in 1..=50 {
            jobs += &format!(
                "[[jobs]]\nid = \"t{i}\"\ngpus = 1\nduration_s = 1\nsubmit_s = {}\n",
                i * 10
            );
        }
        format!(
            "[cluster]\n[[cluster.pools]]\nname = \"n\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 2\n\
             [scheduler]\nqueue = \"fifo\"\nbackfill = \"greedy\"\nplacement = \"first-fit\"\n{jobs}"
        )
    };
    let (with_b, without) = (run(&from_toml(&text(true))), run(&from_toml(&text(false))));
    assert_eq!(with_b.jobs[1].start, Some(1_000_000_000), "b when r ends");
    // The ticks start as they arrive either way.
    let tick_starts = |o: &ultrasched::engine::cluster::Outcome, from: usize| -> Vec<Option<u64>> {
        o.jobs[from..].iter().map(|j| j.start).collect()
    };
    assert_eq!(tick_starts(&with_b, 2), tick_starts(&without, 1));
    let extra = with_b.kernel.kernel_calls - without.kernel.kernel_calls;
    assert!(
        extra < 25,
        "b cost {extra} calls ({} with b, {} without)",
        with_b.kernel.kernel_calls,
        without.kernel.kernel_calls
    );
}

#[test]
fn easy_backfills_a_job_that_ends_exactly_at_the_reservation() {
    // Two 8-GPU nodes; r holds one until 100 s. h (16 GPUs) blocks, reserved at 100 s. s (8 GPUs, 98 s, at
    // 2 s) would hold GPUs the head needs, but it ends at 100 s exactly, when h starts: it backfills at
    // once. (Counting an end at the shadow time as past it would hold s until h ends, at 200 s.)
    let text = "[cluster]\n[[cluster.pools]]\nname = \"n\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 2\n\
        [scheduler]\nqueue = \"fifo\"\nbackfill = \"easy\"\nplacement = \"first-fit\"\n\
        [[jobs]]\nid = \"r\"\ngpus = 8\nduration_s = 100\n\
        [[jobs]]\nid = \"h\"\ngpus = 16\nduration_s = 100\nsubmit_s = 1\n\
        [[jobs]]\nid = \"s\"\ngpus = 8\nduration_s = 98\nsubmit_s = 2\n";
    assert_eq!(starts(text), at(&[("h", 100.0), ("r", 0.0), ("s", 2.0)]));
}

#[test]
fn easy_reserves_a_pool_level_head_when_one_pool_has_room_not_when_the_pools_together_do() {
    // Pools a (H100), b (H200) and c (B200), one 8-GPU node each. At 0 s a1 and a2 fill a, b1 and b2 fill
    // b (4 GPUs each; a2 and b2 until 100 s, a1 and b1 until 1,000 s) and c1 takes half of c until
    // 1,000 s. The head h (8 GPUs, any model) arrives at 1 s and waits: at 100 s 12 GPUs are free, but 4
    // in each pool, so h is reserved at 1,000 s, when a pool is whole. x (4 B200s, 500 s) fits c now and
    // ends at 502 s, before the reservation: it backfills at 2 s.
    let text = "[cluster]\n\
        [[cluster.pools]]\nname = \"a\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 1\n\
        [[cluster.pools]]\nname = \"b\"\ngpu = \"h200\"\ngpus_per_node = 8\ncount = 1\n\
        [[cluster.pools]]\nname = \"c\"\ngpu = \"b200\"\ngpus_per_node = 8\ncount = 1\n\
        [scheduler]\nqueue = \"fifo\"\nbackfill = \"easy\"\nplacement = \"first-fit\"\n\
        [[jobs]]\nid = \"a1\"\ngpus = 4\nduration_s = 1000\ngpu_model = \"h100\"\n\
        [[jobs]]\nid = \"a2\"\ngpus = 4\nduration_s = 100\ngpu_model = \"h100\"\n\
        [[jobs]]\nid = \"b1\"\ngpus = 4\nduration_s = 1000\ngpu_model = \"h200\"\n\
        [[jobs]]\nid = \"b2\"\ngpus = 4\nduration_s = 100\ngpu_model = \"h200\"\n\
        [[jobs]]\nid = \"c1\"\ngpus = 4\nduration_s = 1000\ngpu_model = \"b200\"\n\
        [[jobs]]\nid = \"h\"\ngpus = 8\nduration_s = 100\nsubmit_s = 1\n\
        [[jobs]]\nid = \"x\"\ngpus = 4\nduration_s = 500\nsubmit_s = 2\ngpu_model = \"b200\"\n";
    assert_eq!(
        starts(text),
        at(&[
            ("a1", 0.0),
            ("a2", 0.0),
            ("b1", 0.0),
            ("b2", 0.0),
            ("c1", 0.0),
            ("h", 1000.0),
            ("x", 2.0)
        ])
    );
}

#[test]
fn greedy_leaves_a_gang_larger_than_every_pools_free_gpus_unscored() {
    // Two 8-GPU H100 nodes; r holds one until 10,000 s. Every 100 s two 8-GPU ticks of 10 s arrive: one
    // takes the free node, the other waits for it. big (16 GPUs) waits for r. Greedy walks past big
    // whenever a tick ends, but 16 GPUs are more than any pool has free, so big is left out of the walk
    // (its size class) and never scored until it can start: waiting through the ten tick pairs (submitted
    // at 1 s) costs the same kernel calls and pairs as arriving just before r ends (at 9,999 s).
    let text = |big_at: u32| {
        let mut jobs = String::from("[[jobs]]\nid = \"r\"\ngpus = 8\nduration_s = 10000\n");
        jobs +=
            &format!("[[jobs]]\nid = \"big\"\ngpus = 16\nduration_s = 100\nsubmit_s = {big_at}\n");
        for k in 0..10 {
            for t in ["a", "b"] {
                jobs += &format!(
                    "[[jobs]]\nid = \"t{t}{k}\"\ngpus = 8\nduration_s = 10\nsubmit_s = {}\n",
                    100 * k + 50
                );
            }
        }
        format!(
            "[cluster]\n[[cluster.pools]]\nname = \"g\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 2\n\
             [scheduler]\nqueue = \"fifo\"\nbackfill = \"greedy\"\nplacement = \"first-fit\"\n{jobs}"
        )
    };
    let (early, late) = (from_toml(&text(1)), from_toml(&text(9999)));
    let (early, late) = ((run(&early), early), (run(&late), late));
    for (o, w) in [&early, &late] {
        let start = |id: &str| {
            let j = w.jobs.iter().position(|j| j.id == id).unwrap();
            o.jobs[j].start.map(|t| t / 1_000_000)
        };
        assert_eq!(start("big"), Some(10_000), "big when r ends");
        for k in 0..10u64 {
            assert_eq!(start(&format!("ta{k}")), Some(100 * k + 50));
            assert_eq!(start(&format!("tb{k}")), Some(100 * k + 60));
        }
    }
    let (early, late) = (early.0, late.0);
    assert_eq!(early.kernel.kernel_calls, late.kernel.kernel_calls);
    assert_eq!(early.kernel.pairs, late.kernel.pairs);
}

/// Rounds that cannot start anything cost no kernel call. Two P5 nodes (16 GPUs), no backfill: `a` (16
/// GPUs) runs 0-100 s; `b` (8 GPUs) arrives at 10 s, when no pool has 8 GPUs free. Rounds at 0, 10 and
/// 100 s; kernel calls by hand: `a` at 0 s (2 free domains scored), `b` at 100 s (2): the round at 10 s
/// sees that the smallest waiting gang exceeds every pool's free GPUs and scores nothing.
#[test]
fn a_round_where_the_smallest_waiting_gang_fits_no_pool_scores_nothing() {
    let w = from_toml(
        "[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 2\n[scheduler]\nbackfill = \"none\"\n\
         [[jobs]]\nid = \"a\"\ngpus = 16\nduration_s = 100\n\
         [[jobs]]\nid = \"b\"\ngpus = 8\nduration_s = 10\nsubmit_s = 10\n",
    );
    let o = run(&w);
    let starts = common::starts_s(&o);
    assert_eq!(starts, [Some(0), Some(100)]);
    assert_eq!((o.rounds, o.kernel.kernel_calls, o.kernel.pairs), (3, 2, 4));
}

/// EASY's what-if for a head that is one pool-level gang needs no kernel call: the free GPUs per pool
/// decide it. Two P5 nodes (8 GPUs each): `a` (8 GPUs, 0-100 s), head `h` (16 GPUs) at 1 s, `b` (8 GPUs,
/// 50 s) at 2 s, `c` (8 GPUs, 200 s) at 3 s. By hand, (calls, pairs) per round: 0 s `a` (1, 2); 1 s `h`
/// blocks, reserved at 100 s (1, 1); 2 s `h` again (1, 1) and `b` backfills, ending before 100 s (1, 1);
/// 3 s `h` (1, 0: no free domain) and the walk stops, nothing free; 52 s `h` (1, 1), `c` would hold the
/// head's GPUs past 100 s: not scored; 100 s `h` starts (1, 2) and `c` blocks (1, 0); 110 s `c` (1, 2).
/// 9 calls, 10 pairs, 7 rounds; every reservation came from the pool counts.
#[test]
fn easy_reservations_for_a_pool_level_head_cost_no_kernel_call() {
    let w = from_toml(
        "[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 2\n[scheduler]\nbackfill = \"easy\"\n\
         [[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 100\n\
         [[jobs]]\nid = \"h\"\ngpus = 16\nduration_s = 10\nsubmit_s = 1\n\
         [[jobs]]\nid = \"b\"\ngpus = 8\nduration_s = 50\nsubmit_s = 2\n\
         [[jobs]]\nid = \"c\"\ngpus = 8\nduration_s = 200\nsubmit_s = 3\n",
    );
    let o = run(&w);
    let starts = common::starts_s(&o);
    assert_eq!(starts, [Some(0), Some(100), Some(2), Some(110)]);
    assert_eq!(
        (o.rounds, o.kernel.kernel_calls, o.kernel.pairs),
        (7, 9, 10)
    );
}

/// Preemption's what-if for a pool-level head needs no kernel call either. Two P5 nodes, priority queue
/// with preemption, no backfill. By hand, (calls, pairs): at 0 s `l1` and `l2` (8 GPUs, priority 1,
/// 1,000 s) start, (1, 2) and (1, 1). At 10 s `h` (16 GPUs, priority 9, 10 s) is scored (1, 0: no free
/// domain), evicts `l1` (started with `l2`, the lower index goes first; 8 free, not enough) then
/// `l2` (16 free: the pool counts say it fits, no what-if placement) and is placed (1, 2); the walk goes on to `l1`, queued again (1, 0), which blocks.
/// At 20 s `h` ends and both restart, (1, 2) and (1, 1). 7 calls, 8 pairs.
#[test]
fn preemption_decides_a_pool_level_head_on_the_pool_counts() {
    let w = from_toml(
        "[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 2\n\
         [scheduler]\nqueue = \"priority\"\npreemption = true\nbackfill = \"none\"\n\
         [[jobs]]\nid = \"l1\"\ngpus = 8\nduration_s = 1000\npriority = 1\n\
         [[jobs]]\nid = \"l2\"\ngpus = 8\nduration_s = 1000\npriority = 1\n\
         [[jobs]]\nid = \"h\"\ngpus = 16\nduration_s = 10\npriority = 9\nsubmit_s = 10\n",
    );
    let o = run(&w);
    let preemptions: Vec<u32> = o.jobs.iter().map(|j| j.preemptions).collect();
    assert_eq!(preemptions, [1, 1, 0]);
    assert_eq!(o.jobs[2].start, Some(10_000_000));
    assert_eq!((o.kernel.kernel_calls, o.kernel.pairs), (7, 8));
}

/// A backfill the placement refuses (its GPUs would break the head's reservation) does not stop the
/// walk: the next job behind it is still tried. Two pools of two P5 nodes, first-fit, EASY: Q's nodes hold
/// `q1` (1,000 s) and `q2` (50 s), one of P's holds `a` (100 s). Head `h` (16 GPUs, any one pool) arrives
/// at 1 s: reserved at 100 s, when P is whole (24 GPUs free then, Q's 8 included). `r` (8 GPUs, 500 s)
/// at 2 s passes the quick test (24 >= 16 + 8) but first-fit puts it on P's free node, which leaves no
/// pool with 16 at 100 s: refused. `s` (8 GPUs, 10 s) at 3 s ends before 100 s and backfills at once.
/// At 50 s `q2` ends and `r` gets Q's node (P stays whole for `h`).
#[test]
fn a_refused_backfill_does_not_stop_the_walk_behind_it() {
    let w = from_toml(
        "[cluster]\n\
         [[cluster.pools]]\nname = \"q\"\npreset = \"p5-h100\"\ncount = 2\n\
         [[cluster.pools]]\nname = \"p\"\npreset = \"p5-h100\"\ncount = 2\n\
         [scheduler]\nbackfill = \"easy\"\nplacement = \"first-fit\"\n\
         [[jobs]]\nid = \"q1\"\ngpus = 8\nduration_s = 1000\n\
         [[jobs]]\nid = \"q2\"\ngpus = 8\nduration_s = 50\n\
         [[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 100\n\
         [[jobs]]\nid = \"h\"\ngpus = 16\nduration_s = 10\nsubmit_s = 1\n\
         [[jobs]]\nid = \"r\"\ngpus = 8\nduration_s = 500\nsubmit_s = 2\n\
         [[jobs]]\nid = \"s\"\ngpus = 8\nduration_s = 10\nsubmit_s = 3\n",
    );
    let o = run(&w);
    let starts = common::starts_s(&o);
    assert_eq!(
        starts,
        [Some(0), Some(0), Some(0), Some(100), Some(50), Some(3)]
    );
    assert_eq!(o.jobs[3].reserved, Some(100_000_000));
}
