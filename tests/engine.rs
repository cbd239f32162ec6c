//! Engine behaviour through the library: determinism, the quickstart snapshot, and policy properties.

mod common;

use common::{bundled, from_toml, load_with as load, repo, report_value as report, run};
use ultrasched::domain::workload::Workload;
use ultrasched::domain::workload::{Backfill, JobKind, PlacementPolicy, QueuePolicy};
use ultrasched::engine::cluster::{JobState, Outcome};
use ultrasched::input::workload::{build, parse_str, Format, Overrides};
use ultrasched::output::report::{jobs_csv, Report, RunInfo};

#[test]
fn same_workload_and_seed_give_identical_reports_and_jobs_csv() {
    for p in bundled() {
        let w1 = load(&p, Overrides::default());
        let w2 = load(&p, Overrides::default());
        let (o1, o2) = (run(&w1), run(&w2));
        assert_eq!(
            report(&w1, &o1).to_string(),
            report(&w2, &o2).to_string(),
            "{p}"
        );
        assert_eq!(jobs_csv(&w1, &o1), jobs_csv(&w2, &o2), "{p}");
    }
}

#[test]
fn a_different_seed_draws_a_different_workload() {
    let a = load("workloads/gb200-training.toml", Overrides::default());
    let b = load(
        "workloads/gb200-training.toml",
        Overrides {
            seed: Some(1),
            ..Default::default()
        },
    );
    assert_ne!(a.jobs, b.jobs);
}

/// The quickstart summary, checked against tests/snapshots/quickstart_summary.json.
/// `UPDATE_SNAPSHOTS=1 cargo test` rewrites the file after a deliberate change.
#[test]
fn quickstart_summary_snapshot() {
    let w = load("workloads/quickstart.toml", Overrides::default());
    let o = run(&w);
    let got = serde_json::to_string_pretty(&report(&w, &o)["summary"]).unwrap() + "\n";
    let path = repo("tests/snapshots/quickstart_summary.json");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want =
        std::fs::read_to_string(&path).expect("snapshot missing: run with UPDATE_SNAPSHOTS=1");
    assert_eq!(
        got, want,
        "quickstart summary changed; if intended, rerun with UPDATE_SNAPSHOTS=1"
    );
}

fn mean_jct(w: &Workload, o: &Outcome) -> f64 {
    report(w, o)["summary"]["jct_s"]["mean"].as_f64().unwrap()
}

/// On gb200-training without backfill (strict order), shortest-job-first beats first-come-first-served.
#[test]
fn sjf_mean_jct_is_not_worse_than_fifo() {
    for p in ["workloads/gb200-training.toml", "workloads/quickstart.toml"] {
        let mut fifo = load(
            p,
            Overrides {
                queue: Some(QueuePolicy::Fifo),
                ..Default::default()
            },
        );
        fifo.scheduler.backfill = Backfill::None;
        let mut sjf = fifo.clone();
        sjf.scheduler.queue = QueuePolicy::Sjf;
        let (jf, js) = (mean_jct(&fifo, &run(&fifo)), mean_jct(&sjf, &run(&sjf)));
        assert!(js <= jf, "{p}: sjf mean JCT {js} > fifo {jf}");
    }
}

/// EASY backfill: a blocked head job starts no later than the reservation it was first given, and backfill
/// actually starts jobs early.
#[test]
fn backfill_never_delays_the_reserved_start_of_the_head() {
    for p in ["workloads/gb200-training.toml", "workloads/quickstart.toml"] {
        let w = load(p, Overrides::default());
        assert!(
            w.scheduler.backfill == Backfill::Easy && w.scheduler.queue == QueuePolicy::Fifo,
            "{p} must use fifo + backfill"
        );
        let o = run(&w);
        let mut reserved = 0;
        for (job, out) in w.jobs.iter().zip(&o.jobs) {
            if let Some(r) = out.reserved {
                reserved += 1;
                let start = out.start.expect("a reserved job starts");
                assert!(
                    start <= r,
                    "{p}: {} reserved for {r} but started {start}",
                    job.id
                );
            }
        }
        assert!(
            reserved > 0,
            "{p}: no head was ever blocked: the test proves nothing"
        );
        let backfilled = o.jobs.iter().filter(|j| j.backfilled).count();
        if p.contains("gb200") {
            assert!(backfilled > 0, "{p}: backfill started nothing");
            let mut strict = w.clone();
            strict.scheduler.backfill = Backfill::None;
            let strict_o = run(&strict);
            assert!(
                mean_jct(&w, &o) < mean_jct(&strict, &strict_o),
                "backfill should cut mean JCT here"
            );
        }
    }
}

#[test]
fn topology_pack_splits_fewer_gangs_than_first_fit() {
    let split = |pl| {
        let w = load(
            "workloads/gb200-training.toml",
            Overrides {
                placement: Some(pl),
                ..Default::default()
            },
        );
        report(&w, &run(&w))["summary"]["training_gangs_split"]
            .as_u64()
            .unwrap()
    };
    let (ff, tp) = (
        split(PlacementPolicy::FirstFit),
        split(PlacementPolicy::TopologyPack),
    );
    assert!(tp < ff, "topology-pack split {tp} gangs, first-fit {ff}");
}

const TWO_DOMAINS: &str =
    "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 2\n";

#[test]
fn jobs_finish_after_their_duration_and_never_overcommit() {
    let w = load("workloads/mixed-fleet.toml", Overrides::default());
    let o = run(&w);
    for (job, out) in w.jobs.iter().zip(&o.jobs) {
        assert_eq!(out.state, JobState::Completed, "{}", job.id);
        let (s, e) = (out.start.unwrap(), out.end.unwrap());
        assert!(s >= job.submit);
        assert_eq!(
            e - s,
            job.duration,
            "{} ran {} instead of {}",
            job.id,
            e - s,
            job.duration
        );
        if job.replicas > 1 {
            assert!(out.domains >= 1);
        }
    }
    assert!(o
        .samples
        .iter()
        .all(|s| s.busy_gpus <= w.cluster.total_gpus));
}

/// Start time (s) and domains spanned of each job, in workload order.
fn placements(text: &str, pl: PlacementPolicy) -> Vec<(u64, u32)> {
    let mut w = from_toml(text);
    w.scheduler.placement = pl;
    run(&w)
        .jobs
        .iter()
        .map(|j| (j.start.unwrap() / 1_000_000, j.domains))
        .collect()
}

#[test]
fn placement_policies_choose_as_documented() {
    // Three 72-GPU domains. `a` leaves 12 free in domain 0, `b` leaves 2 free in domain 1.
    // `c` (2 GPUs): first-fit takes domain 0 (lowest index with room), best-fit and topology-pack the tightest:
    // domain 1. Then `d` (20 GPUs, no topology constraint): first-fit anchors at the first domain with a free
    // GPU and spills over two domains; best-fit and topology-pack put it whole in domain 2.
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 3\n\
        [[jobs]]\nid = \"a\"\ngpus = 60\nduration_s = 1000\n\
        [[jobs]]\nid = \"b\"\ngpus = 70\nduration_s = 1000\nsubmit_s = 1\n\
        [[jobs]]\nid = \"c\"\ngpus = 2\nduration_s = 1000\nsubmit_s = 2\n\
        [[jobs]]\nid = \"d\"\ngpus = 20\nduration_s = 1000\nsubmit_s = 3\n";
    let ff = placements(text, PlacementPolicy::FirstFit);
    let bf = placements(text, PlacementPolicy::BestFit);
    let tp = placements(text, PlacementPolicy::TopologyPack);
    // First-fit: a -> d0, b -> d0's 12 + d1 (spans 2: it is topology-unaware), c -> d1, d -> d1 + d2.
    assert_eq!(ff, [(0, 1), (1, 2), (2, 1), (3, 2)]);
    assert_eq!(bf, [(0, 1), (1, 1), (2, 1), (3, 1)]);
    assert_eq!(tp, [(0, 1), (1, 1), (2, 1), (3, 1)]);
    // A 100-GPU gang must span two domains under every policy; domain-required gangs never spill.
    let big = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 2\n\
        [[jobs]]\nid = \"a\"\ngpus = 100\nduration_s = 10\n\
        [[jobs]]\nid = \"b\"\ngpus = 50\nduration_s = 10\ntopology = { required = \"domain\" }\n";
    for pl in [
        PlacementPolicy::FirstFit,
        PlacementPolicy::BestFit,
        PlacementPolicy::TopologyPack,
    ] {
        assert_eq!(placements(big, pl), [(0, 2), (10, 1)], "{pl:?}");
    }
}

#[test]
fn preemption_evicts_lower_priority_work_and_charges_the_restart() {
    let text = format!(
        "{TWO_DOMAINS}[scheduler]\nqueue = \"priority\"\npreemption = true\nrestart_cost_s = 50\n\
         [[jobs]]\nid = \"low\"\ngpus = 144\nduration_s = 1000\npriority = 0\n\
         [[jobs]]\nid = \"high\"\ngpus = 72\nduration_s = 100\nsubmit_s = 200\npriority = 5\n"
    );
    let w = from_toml(&text);
    // Under every backfill mode: greedy's walk, which leaves out gangs larger than the free GPUs, must
    // still reach a job that does not fit when it may preempt (`high` needs 72 GPUs, none are free).
    for backfill in [Backfill::None, Backfill::Easy, Backfill::Greedy] {
        let mut w = w.clone();
        w.scheduler.backfill = backfill;
        let o = run(&w);
        let (low, high) = (&o.jobs[0], &o.jobs[1]);
        assert_eq!(
            high.start,
            Some(200_000_000),
            "{backfill:?}: the high-priority job starts on arrival"
        );
        assert_eq!(low.preemptions, 1, "{backfill:?}");
        // low ran 200 s, was evicted, waits for high (ends 300), then redoes 800 s + 50 s restart.
        assert_eq!(low.end, Some((300 + 800 + 50) * 1_000_000), "{backfill:?}");
        // Rounds with a job waiting: at 0 s, 200 s and 300 s. `high` was the first job walked at 200 s,
        // so the walk went on to `low`, queued again behind it, in the same round: no repeat round.
        assert_eq!(o.rounds, 3, "{backfill:?}");
    }
    // Without preemption the high-priority job waits for the whole low job.
    let mut calm = w.clone();
    calm.scheduler.preemption = false;
    let o = run(&calm);
    assert_eq!(o.jobs[1].start, Some(1000 * 1_000_000));
    assert_eq!(o.jobs[0].preemptions, 0);
}

#[test]
fn a_victim_restarts_in_the_same_instant_where_the_preemption_left_room() {
    // Four 8-GPU H100 domains. At 0 s: `x` (8 GPUs, priority 5) fills one domain, `y` and `z` (4 each,
    // priority 5) share a second, `v1` and `v2` (4 each, priority 1) share a third; the fourth is empty.
    // At 1 s `l` (16 GPUs, priority 1) arrives and waits: 8 GPUs are free and it may preempt no one.
    // At 10 s `j0` (4 GPUs, priority 10) takes half of the empty domain; `h` (8 GPUs, priority 9, one
    // domain) then fits nowhere and evicts the lowest-ranked work until a domain is whole: `v1` (not
    // enough alone) and `v2`. `v1` and `v2` queue again ahead of `l` (same priority, submitted earlier),
    // behind where the walk already is; 4 GPUs are free in the fourth domain. The repeat round after the
    // preemption restarts `v1` there at 10 s (`v2` and `l` do not fit), not when the next job ends (110 s).
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 4\n\
        [scheduler]\nqueue = \"priority\"\npreemption = true\nrestart_cost_s = 0\n\
        [[jobs]]\nid = \"x\"\ngpus = 8\nduration_s = 1000\npriority = 5\n\
        [[jobs]]\nid = \"y\"\ngpus = 4\nduration_s = 1000\npriority = 5\n\
        [[jobs]]\nid = \"z\"\ngpus = 4\nduration_s = 1000\npriority = 5\n\
        [[jobs]]\nid = \"v1\"\ngpus = 4\nduration_s = 1000\npriority = 1\n\
        [[jobs]]\nid = \"v2\"\ngpus = 4\nduration_s = 1000\npriority = 1\n\
        [[jobs]]\nid = \"l\"\ngpus = 16\nduration_s = 10\nsubmit_s = 1\npriority = 1\n\
        [[jobs]]\nid = \"j0\"\ngpus = 4\nduration_s = 100\nsubmit_s = 10\npriority = 10\n\
        [[jobs]]\nid = \"h\"\ngpus = 8\nduration_s = 500\nsubmit_s = 10\npriority = 9\n\
         topology = { required = \"domain\" }\n";
    let w = from_toml(text);
    for backfill in [Backfill::None, Backfill::Easy, Backfill::Greedy] {
        let mut w = w.clone();
        w.scheduler.backfill = backfill;
        let o = run(&w);
        let by_id = |id: &str| {
            let k = w.jobs.iter().position(|j| j.id == id).unwrap();
            &o.jobs[k]
        };
        let s = 1_000_000;
        assert_eq!(by_id("j0").start, Some(10 * s), "{backfill:?}");
        assert_eq!(by_id("h").start, Some(10 * s), "{backfill:?}");
        assert_eq!(
            (by_id("v1").preemptions, by_id("v2").preemptions),
            (1, 1),
            "{backfill:?}"
        );
        // v1 ran 10 s, was evicted and restarts at once with 990 s of work left (the engine keeps the
        // work done and charges `restart_cost_s`, here 0): it ends at 1,000 s. Restarted when `j0` ends
        // (110 s) it would end at 1,100 s.
        assert_eq!(by_id("v1").end, Some(1000 * s), "{backfill:?}");
        assert_eq!(by_id("v2").start, Some(0), "{backfill:?}: first start");
        assert_eq!(by_id("x").preemptions + by_id("y").preemptions, 0);
    }
}

#[test]
fn every_kernel_call_and_its_pairs_are_counted() {
    // Four empty 72-GPU domains, one service of three 72-GPU replicas. The round scores the first replica
    // against the 4 domains with free GPUs (1 call, 4 pairs); the other two are placed one call each on
    // what the ones before left: 3, then 2 candidates (a full domain is no candidate). 3 calls, 9 pairs.
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 4\n\
        [[jobs]]\nid = \"svc\"\nkind = \"inference\"\nreplicas = 3\ngpus_per_replica = 72\nlifetime_s = 10\n";
    let o = run(&from_toml(text));
    assert_eq!(o.jobs[0].state, JobState::Completed);
    assert_eq!((o.kernel.kernel_calls, o.kernel.pairs), (3, 9));
}

#[test]
fn inference_replicas_each_stay_in_one_domain_and_are_all_or_nothing() {
    // Three 48-GPU replicas need three domains: only two exist, so the service never fits (unschedulable
    // at arrival); two replicas fit.
    let text = format!(
        "{TWO_DOMAINS}[[jobs]]\nid = \"three\"\nkind = \"inference\"\nreplicas = 3\ngpus_per_replica = 48\nlifetime_s = 10\n\
         [[jobs]]\nid = \"two\"\nkind = \"inference\"\nreplicas = 2\ngpus_per_replica = 48\nlifetime_s = 10\n"
    );
    let w = from_toml(&text);
    let o = run(&w);
    assert_eq!(o.jobs[0].state, JobState::Unschedulable);
    assert_eq!(o.jobs[1].state, JobState::Completed);
    assert_eq!(o.jobs[1].domains, 2);
}

#[test]
fn gpu_model_constraints_route_jobs_to_their_pool() {
    // One H100 node (8 GPUs) and one GB200 UltraServer. `gb` needs GB200 and must wait for `hog` although the
    // H100 node is free; `h` needs H100 and gets it at once; `wide` needs 16 H100s: never fits.
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 1\n\
        [[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 1\n\
        [scheduler]\nbackfill = true\n\
        [[jobs]]\nid = \"hog\"\ngpus = 72\nduration_s = 100\ngpu_model = \"gb200\"\n\
        [[jobs]]\nid = \"gb\"\ngpus = 8\nduration_s = 10\ngpu_model = \"gb200\"\nsubmit_s = 1\n\
        [[jobs]]\nid = \"h\"\ngpus = 8\nduration_s = 10\ngpu_model = \"h100\"\nsubmit_s = 2\n\
        [[jobs]]\nid = \"wide\"\ngpus = 16\nduration_s = 10\ngpu_model = \"h100\"\nsubmit_s = 3\n";
    let o = run(&from_toml(text));
    let starts = common::starts_s(&o);
    assert_eq!(starts, [Some(0), Some(100), Some(2), None]);
    assert_eq!(o.jobs[3].state, JobState::Unschedulable);
}

#[test]
fn a_job_too_big_for_its_gpu_model_does_not_hold_up_a_fifo_queue() {
    // `wide` needs 16 H100s and the fleet has 8 (plus a 72-GPU GB200 domain it may not use): it is
    // unschedulable when it arrives, so under FIFO without backfill `small` (8 H100s, at 1 s) starts at once
    // instead of waiting behind a head that can never start.
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 1\n\
        [[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 1\n\
        [scheduler]\nqueue = \"fifo\"\nbackfill = \"none\"\n\
        [[jobs]]\nid = \"wide\"\ngpus = 16\nduration_s = 10\ngpu_model = \"h100\"\n\
        [[jobs]]\nid = \"small\"\ngpus = 8\nduration_s = 10\ngpu_model = \"h100\"\nsubmit_s = 1\n";
    let o = run(&from_toml(text));
    assert_eq!(o.jobs[0].state, JobState::Unschedulable);
    assert_eq!(o.jobs[1].start, Some(1_000_000));
}

#[test]
fn a_preempted_checkpointing_job_keeps_its_checkpoints_and_pays_for_them() {
    // `low`: 8 GPUs, 1,000 s of compute, a 10 s checkpoint after every 100 s. `hi` preempts it at 235 s:
    // two checkpoints were written (at 110 s and 220 s of wall time), 200 s of compute kept, the 15 s
    // since lost (120 GPU-s). It resumes when `hi` ends at 245 s with 800 s left: 800 + 7 x 10 = 870 s of
    // wall time, so it ends at 1,115 s. Checkpoint GPU time: (2 + 7) x 10 s x 8 GPUs = 720 GPU-s.
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 1\n\
        [scheduler]\nqueue = \"priority\"\npreemption = true\nrestart_cost_s = 0\n\
        [[jobs]]\nid = \"low\"\ngpus = 8\nduration_s = 1000\npriority = 1\n\
        checkpoint_interval_s = 100\ncheckpoint_s = 10\n\
        [[jobs]]\nid = \"hi\"\ngpus = 8\nduration_s = 10\npriority = 10\nsubmit_s = 235\n";
    let o = run(&from_toml(text));
    let low = &o.jobs[0];
    assert_eq!((low.start, low.end), (Some(0), Some(1_115_000_000)));
    assert_eq!(low.preemptions, 1);
    assert_eq!(low.lost_gpu_time, 120_000_000, "GPU-us lost");
    assert_eq!(
        low.checkpoint_gpu_time, 720_000_000,
        "GPU-us writing checkpoints"
    );
}

#[test]
fn easy_reserves_a_whole_domain_for_a_domain_level_head() {
    // Two 8-GPU domains. r1 (6 GPUs, to 100 s) and r2 (6 GPUs, to 200 s) take one each. h (8 GPUs,
    // `required = "domain"`, at 1 s) is blocked; its reservation is domain 0 at 100 s, when r1 ends. x
    // (2 GPUs, 150 s, at 2 s) fits now, but topology-pack puts it on domain 0 (2 free on each, lowest
    // index), and it would run past 100 s there: EASY holds it back. At 100 s h takes domain 0 and x the
    // two GPUs left on domain 1.
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\nname = \"h\"\npreset = \"p5-h100\"\ncount = 2\n\
        [scheduler]\nqueue = \"fifo\"\nbackfill = \"easy\"\nplacement = \"topology-pack\"\n\
        [[jobs]]\nid = \"r1\"\ngpus = 6\nduration_s = 100\n\
        [[jobs]]\nid = \"r2\"\ngpus = 6\nduration_s = 200\n\
        [[jobs]]\nid = \"h\"\ngpus = 8\nduration_s = 50\nsubmit_s = 1\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"x\"\ngpus = 2\nduration_s = 150\nsubmit_s = 2\n";
    let o = run(&from_toml(text));
    let starts = common::starts_s(&o);
    assert_eq!(starts, [Some(0), Some(0), Some(100), Some(100)]);
}

/// Two 8-GPU domains (H100 nodes), FIFO + greedy backfill; the jobs follow.
const GREEDY_TWO_DOMAINS: &str =
    "seed = 1\n[cluster]\n[[cluster.pools]]\nname = \"h\"\npreset = \"p5-h100\"\ncount = 2\n\
     [scheduler]\nqueue = \"fifo\"\nbackfill = \"greedy\"\n";

/// (start in whole seconds, backfilled) of every job, in workload order.
fn starts_and_backfilled(o: &Outcome) -> Vec<(Option<u64>, bool)> {
    o.jobs
        .iter()
        .map(|j| (j.start.map(|s| s / 1_000_000), j.backfilled))
        .collect()
}

#[test]
fn greedy_marks_backfilled_only_the_jobs_that_pass_a_waiting_one() {
    // Two 8-GPU domains, FIFO + greedy. a (8 GPUs, 0..100) and b (8 GPUs at 10 s, 10..110): b starts on
    // the idle domain with nobody waiting: not backfilled. big (16 GPUs at 20 s) waits for both; c (8 GPUs
    // at 30 s) waits too (no free GPU) and starts at 100 s on a's domain, ahead of big, which is still
    // waiting: backfilled. big starts when c ends, at 150 s.
    let text = format!(
        "{GREEDY_TWO_DOMAINS}\
        [[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 100\n\
        [[jobs]]\nid = \"b\"\ngpus = 8\nduration_s = 100\nsubmit_s = 10\n\
        [[jobs]]\nid = \"big\"\ngpus = 16\nduration_s = 10\nsubmit_s = 20\n\
        [[jobs]]\nid = \"c\"\ngpus = 8\nduration_s = 50\nsubmit_s = 30\n"
    );
    let o = run(&from_toml(&text));
    assert_eq!(
        starts_and_backfilled(&o),
        [
            (Some(0), false),
            (Some(10), false),
            (Some(150), false),
            (Some(100), true)
        ]
    );
}

#[test]
fn greedy_marks_a_job_backfilled_when_it_passes_a_job_left_unwalked() {
    // Two 8-GPU domains, FIFO + greedy. a (8 GPUs, 0..100); big (16 GPUs at 10 s) waits; s (4 GPUs at
    // 20 s) starts at once on the free domain. Nothing was released since big's round, so the round at
    // 20 s walks only s (big cannot fit on less): s still passed big, which waits: backfilled. big starts
    // when a ends (s ended at 70 s). The engine counts a round at each instant with a waiting job: 0, 10,
    // 20, 70 and 100 s.
    let text = format!(
        "{GREEDY_TWO_DOMAINS}\
        [[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 100\n\
        [[jobs]]\nid = \"big\"\ngpus = 16\nduration_s = 10\nsubmit_s = 10\n\
        [[jobs]]\nid = \"s\"\ngpus = 4\nduration_s = 50\nsubmit_s = 20\n"
    );
    let w = from_toml(&text);
    let o = run(&w);
    assert_eq!(
        starts_and_backfilled(&o),
        [(Some(0), false), (Some(100), false), (Some(20), true)]
    );
    assert_eq!(report(&w, &o)["engine"]["rounds"], 5);
}

#[test]
fn segments_account_for_every_busy_gpu_second() {
    for p in bundled() {
        let w = load(&p, Overrides::default());
        let o = run(&w);
        let from_segments: u128 = o
            .segments
            .iter()
            .map(|s| {
                (s.end - s.start) as u128 * s.domains.iter().map(|&(_, g)| g as u128).sum::<u128>()
            })
            .sum();
        assert_eq!(from_segments, o.busy_gpu_time, "{p}");
        for s in &o.segments {
            let job = &w.jobs[s.job as usize];
            assert_eq!(
                s.domains.iter().map(|&(_, g)| g as u64).sum::<u64>(),
                job.total_gpus(),
                "{p}: {}",
                job.id
            );
            assert!(s.end > s.start, "{p}: {} segment is empty", job.id);
        }
    }
}

#[test]
fn cost_energy_and_peak_power_match_a_hand_computation() {
    // One GB200 UltraServer (72 GPUs at $8/GPU-h, 128 W idle, 1,200 W busy) for 2 h; one 36-GPU job for 1 h.
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 1\nusd_per_gpu_hour = 8\n\
        [[jobs]]\nid = \"a\"\ngpus = 36\nduration_s = 3600\n\
        [[jobs]]\nid = \"b\"\ngpus = 1\nduration_s = 7200\n";
    let w = from_toml(text);
    let s = &report(&w, &run(&w))["summary"];
    let f = |k: &str| s[k].as_f64().unwrap();
    assert!((f("cost_usd") - 72.0 * 8.0 * 2.0).abs() < 1e-6);
    assert!((f("cost_usd_busy") - (36.0 * 8.0 + 1.0 * 8.0 * 2.0)).abs() < 1e-6);
    // Idle 72 x 128 W x 7200 s, plus (1200 - 128) W x (36 x 3600 + 1 x 7200) GPU-s, in MWh.
    let joules = 72.0 * 128.0 * 7200.0 + 1072.0 * (36.0 * 3600.0 + 7200.0);
    assert!((f("energy_mwh") - joules / 3.6e9).abs() < 1e-9);
    // Peak while both run: 72 x 128 + 37 x 1072 W.
    assert!((f("peak_power_mw") - (72.0 * 128.0 + 37.0 * 1072.0) / 1e6).abs() < 1e-12);
}

#[test]
fn a_gang_split_across_domains_runs_slower_and_says_so() {
    // Two P5 nodes (8 GPUs each). `filler` holds 4 GPUs of node 0. A 7B data-parallel job of 8 GPUs arriving
    // then: topology-pack puts it whole on node 1 (slowdown 1); first-fit splits it 4 + 4 over both nodes
    // (the hand computation in perfmodel's tests: 1.0141 / 0.9141).
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 2\n\
        [[jobs]]\nid = \"filler\"\ngpus = 4\nduration_s = 100000\n\
        [[jobs]]\nid = \"dp\"\ngpus = 8\nduration_s = 1000\nsubmit_s = 1\n\
        model = { params_b = 7, tokens_per_step = 65536, tp = 1, mfu = 0.4 }\n";
    let mut w = from_toml(text);
    w.scheduler.placement = PlacementPolicy::TopologyPack;
    let o = run(&w);
    assert_eq!((o.jobs[1].domains, o.jobs[1].slowdown), (1, 1.0));
    assert_eq!(o.jobs[1].end, Some(1_001_000_000));
    w.scheduler.placement = PlacementPolicy::FirstFit;
    let o = run(&w);
    assert_eq!(o.jobs[1].domains, 2);
    let expected = 1.0141 / 0.9141;
    assert!(
        (o.jobs[1].slowdown - expected).abs() < 2e-3,
        "slowdown {}",
        o.jobs[1].slowdown
    );
    let ran = (o.jobs[1].end.unwrap() - o.jobs[1].start.unwrap()) as f64 / 1e6;
    assert!(
        (ran - 1000.0 * o.jobs[1].slowdown).abs() < 1e-3,
        "ran {ran}s"
    );
    let s = &report(&w, &o)["summary"]["training"];
    assert_eq!(s["modelled_jobs"], 1);
}

#[test]
fn stranded_gpus_count_free_capacity_the_head_cannot_use() {
    // Two GB200 domains; `a` (40 GPUs) and `b` (40) leave 32 free in each. The head `c` needs a whole domain
    // (72, required = domain) and cannot start: all 64 free GPUs are stranded until `a` ends at 100 s.
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 2\n\
        [[jobs]]\nid = \"a\"\ngpus = 40\nduration_s = 100\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"b\"\ngpus = 40\nduration_s = 300\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"c\"\ngpus = 72\nduration_s = 100\ntopology = { required = \"domain\" }\n";
    let w = from_toml(text);
    let o = run(&w);
    assert_eq!(o.jobs[2].start, Some(100_000_000));
    assert_eq!(o.samples[0].stranded_gpus, 64);
    let s = &report(&w, &o)["summary"]["stranded_gpus"];
    // 64 stranded for the first 100 s of a 300 s makespan; nothing waits afterwards.
    assert!((s["mean"].as_f64().unwrap() - 64.0 * 100.0 / 300.0).abs() < 1e-9);
    assert_eq!(s["max"], 64.0);
}

#[test]
fn a_whole_free_domain_is_not_stranded_for_a_gang_that_spans_domains() {
    // Two GB200 domains; `a` (40 GPUs) leaves 32 free in one domain and the other whole. The head `c` needs
    // 144 GPUs, both domains whole, and waits for `a` (100 s). Per domain it would take min(144, 72) = 72:
    // the 32 beside `a` are stranded, the 72 of the empty domain are not (the gang would use all of them).
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 2\n\
        [[jobs]]\nid = \"a\"\ngpus = 40\nduration_s = 100\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"c\"\ngpus = 144\nduration_s = 100\n";
    let w = from_toml(text);
    let o = run(&w);
    assert_eq!(o.jobs[1].start, Some(100_000_000));
    assert_eq!(o.samples[0].stranded_gpus, 32);
}

#[test]
fn frag_aware_lowers_domain_fragmentation_where_best_fit_packs_tightest() {
    // Two GB200 domains: fillers leave 16 free in domain 0 and 40 in domain 1. An 8-GPU job: best-fit takes
    // the tightest (domain 0, leaving 8); frag-aware computes frag = free mod {8, 16, 32, 72}:
    // domain 0: 16 -> 8 changes frag from 0+0+16+16 = 32 to 8+8+8+8 = 32 (+0); domain 1: 40 -> 32 changes
    // it from 0+8+8+40 = 56 to 0+0+0+32 = 32 (-24), so frag-aware takes domain 1.
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 2\n\
        [[jobs]]\nid = \"f0\"\ngpus = 56\nduration_s = 1000\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"f1\"\ngpus = 32\nduration_s = 1000\ntopology = { required = \"domain\" }\n\
        [[jobs]]\nid = \"x\"\ngpus = 8\nduration_s = 10\nsubmit_s = 1\n";
    let placed = |pl| {
        let mut w = from_toml(text);
        w.scheduler.placement = pl;
        let o = run(&w);
        let seg = o.segments.iter().find(|s| s.job == 2).unwrap();
        let f0 = o
            .segments
            .iter()
            .find(|s| s.job == 0)
            .unwrap()
            .domains
            .clone();
        let f1 = o
            .segments
            .iter()
            .find(|s| s.job == 1)
            .unwrap()
            .domains
            .clone();
        (f0, f1, seg.domains.clone())
    };
    let (f0, f1, x) = placed(PlacementPolicy::BestFit);
    assert_eq!(f0, [(0, 56)]);
    assert_eq!(
        f1,
        [(1, 32)],
        "only domain 1 holds the 32-GPU domain-bound filler"
    );
    assert_eq!(x, [(0, 8)], "best-fit packs the tightest domain");
    let (_, _, x) = placed(PlacementPolicy::FragAware);
    assert_eq!(x, [(1, 8)], "frag-aware lowers fragmentation instead");
}

#[test]
fn rl_jobs_run_their_steps_at_the_modelled_step_time() {
    // One colocated RL job (8 GPUs) and one async job (8 training GPUs + 4 rollout replicas of 2 GPUs) on
    // two GB200 UltraServers. Each runs steps x step time; the breakdown adds up.
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 2\n\
        [[jobs]]\nid = \"colo\"\nkind = \"rl\"\ngpus = 8\n\
        rl = { mode = \"colocated\", steps = 20, llm = \"llama-3-8b\", episodes_per_step = 64, turns = 3, prompt_tokens = 1024, turn_tokens = 256, output_tokens = 128, tool_wait_s = 2, reward_s = 5, switch_s = 3 }\n\
        [[jobs]]\nid = \"async\"\nkind = \"rl\"\ngpus = 8\n\
        rl = { mode = \"async\", staleness = 1, steps = 20, llm = \"llama-3-8b\", episodes_per_step = 64, turns = 3, prompt_tokens = 1024, output_tokens = 128, reward_s = 5, rollout_replicas = 4, rollout_tp = 2 }\n";
    let w = from_toml(text);
    assert_eq!(w.jobs[1].total_gpus(), 16);
    let o = run(&w);
    for (job, out) in w.jobs.iter().zip(&o.jobs) {
        let b = out.rl.expect("rl breakdown");
        let ran = (out.end.unwrap() - out.start.unwrap()) as f64 / 1e6;
        assert!(
            (ran - 20.0 * b.step_s).abs() < 1e-3,
            "{}: ran {ran}, step {}",
            job.id,
            b.step_s
        );
        assert!(b.gpu_idle_share > 0.0 && b.gpu_idle_share < 1.0);
    }
    let colo = o.jobs[0].rl.unwrap();
    assert!(
        (colo.step_s
            - (colo.rollout_s + colo.reward_s + colo.train_s + colo.sync_s + colo.switch_s))
            .abs()
            < 1e-9
    );
    let asy = o.jobs[1].rl.unwrap();
    assert!(
        (asy.step_s - (asy.rollout_s + asy.reward_s).max(asy.train_s + asy.sync_s)).abs() < 1e-9
    );
    // The engine hands the model the placement it made: the async job's 8 training GPUs and its 4
    // rollout replicas of 2 GPUs all in one domain (16 of 72). The model's step for that placement
    // (src/perf/rl.rs works such cases by hand) is what the job got: 4 replicas, so 16 episodes each
    // (5 would give 13).
    let preset = &w.cluster.pool_of(0).preset;
    let model = ultrasched::perf::rl::step(
        w.jobs[1].rl.as_deref().unwrap(),
        preset,
        &[8],
        Some(ultrasched::perf::rl::RolloutPlacement {
            preset,
            replicas: 4,
            same_domain: true,
        }),
    )
    .unwrap();
    assert_eq!(asy, model);
    // Both jobs sit on their ideal split (8 GPUs in one domain): no slowdown, exactly.
    assert_eq!(o.jobs[0].slowdown, 1.0);
    assert_eq!(o.jobs[1].slowdown, 1.0);
    let seg = o.segments.iter().find(|s| s.job == 1).unwrap();
    assert_eq!(
        seg.domains.iter().map(|&(_, g)| g).sum::<u32>(),
        16,
        "rollout replicas placed with the gang"
    );
    let r = report(&w, &o);
    assert_eq!(r["rl_jobs"].as_array().unwrap().len(), 2);
    assert_eq!(r["rl_jobs"][1]["mode"], "async");
    assert_eq!(r["summary"]["rl"]["jobs"], 2);
}

#[test]
fn an_async_rl_job_whose_rollouts_span_domains_syncs_its_weights_over_efa() {
    // Two GB200 UltraServers (72-GPU domains). `h0` takes 60 GPUs of domain 0 and `h1` 68 of domain 1
    // (it does not fit domain 0's 12). The RL job's 8 training GPUs go to domain 0 (topology-pack: the
    // only domain they fit), leaving 4 free in each domain; its 8 one-GPU rollout replicas take domain 0's
    // 4 (tie: lowest index) and then domain 1's 4. The job is src/perf/rl.rs's hand-worked async case
    // (llama-3-8b, 64 episodes of three turns, staleness 0): rollout 7.566203 s, train 0.765562 s. Not
    // all of its GPUs share one NVLink domain, so the weights sync over EFA: 28,800 Gb/s / 8 / 72 GPUs x
    // 0.7 = 35 GB/s per stream, 8 streams, 16.0605e9 B / (8 x 35e9) = 0.057359 s (over NVLink it would
    // be 0.001593 s). Step 7.566203 + 5 + 0.765562 + 0.057359 = 13.389124 s; 10 steps.
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 2\n\
        [scheduler]\nplacement = \"topology-pack\"\n\
        [[jobs]]\nid = \"h0\"\ngpus = 60\nduration_s = 100000\n\
        [[jobs]]\nid = \"h1\"\ngpus = 68\nduration_s = 100000\n\
        [[jobs]]\nid = \"rl\"\nkind = \"rl\"\ngpus = 8\nsubmit_s = 1\n\
        rl = { mode = \"async\", staleness = 0, steps = 10, llm = \"llama-3-8b\", episodes_per_step = 64, turns = 3, prompt_tokens = 1024, turn_tokens = 256, output_tokens = 128, tool_wait_s = 2, reward_s = 5, rollout_replicas = 8, rollout_tp = 1 }\n";
    let w = from_toml(text);
    let o = run(&w);
    let seg = o.segments.iter().find(|s| s.job == 2).unwrap();
    assert_eq!(
        seg.domains,
        [(0, 12), (1, 4)],
        "training and 4 rollouts in domain 0, 4 in 1"
    );
    let b = o.jobs[2].rl.expect("rl breakdown");
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b;
    assert!(close(b.sync_s, 0.057_359_008_914_285_71), "{b:?}");
    assert!(close(b.step_s, 13.389_124_248_165_44), "{b:?}");
    let ran = (o.jobs[2].end.unwrap() - o.jobs[2].start.unwrap()) as f64 / 1e6;
    assert!((ran - 133.891_242).abs() < 1e-5, "ran {ran}");
}

#[test]
fn async_rollouts_that_fit_only_on_a_gpu_model_they_may_not_use_are_unschedulable() {
    // The trainer may use the B200 pool (32 GPUs); its 16 one-GPU rollout replicas must run on H100s, and
    // the fleet has 8. Counting the B200s for the rollouts would make the job wait for ever instead.
    let text = "seed = 1\n[cluster]\n\
        [[cluster.pools]]\nname = \"h\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 1\n\
        [[cluster.pools]]\nname = \"b\"\ngpu = \"b200\"\ngpus_per_node = 8\ncount = 4\n\
        [[jobs]]\nid = \"rl\"\nkind = \"rl\"\ngpus = 8\ngpu_model = \"b200\"\n\
        rl = { mode = \"async\", steps = 10, llm = \"llama-3-8b\", episodes_per_step = 64, turns = 3, prompt_tokens = 1024, output_tokens = 128, rollout_replicas = 16, rollout_tp = 1, rollout_gpu_model = \"h100\" }\n\
        [[jobs]]\nid = \"fits\"\nkind = \"rl\"\ngpus = 8\ngpu_model = \"b200\"\n\
        rl = { mode = \"async\", steps = 10, llm = \"llama-3-8b\", episodes_per_step = 64, turns = 3, prompt_tokens = 1024, output_tokens = 128, rollout_replicas = 8, rollout_tp = 1, rollout_gpu_model = \"h100\" }\n";
    let o = run(&from_toml(text));
    assert_eq!(o.jobs[0].state, JobState::Unschedulable);
    assert_eq!(o.jobs[1].state, JobState::Completed);
    assert_eq!(o.jobs[1].start, Some(0));
}

#[test]
fn rl_jobs_are_checked_when_read() {
    let base = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = 2\n[[jobs]]\nkind = \"rl\"\ngpus = 8\n";
    let err = |rl: &str| {
        let text = format!("{base}rl = {{ {rl} }}\n");
        let spec = parse_str(&text, "rl.toml", Format::Toml).unwrap();
        build(spec, "rl.toml", "t", Overrides::default())
            .unwrap_err()
            .to_string()
    };
    let common =
        "steps = 5, episodes_per_step = 8, turns = 2, prompt_tokens = 512, output_tokens = 64";
    assert!(
        err(&format!("mode = \"colocated\", llm = \"gpt-5\", {common}"))
            .contains("unknown llm `gpt-5`")
    );
    // 70B weights do not fit one H100: no pool can host a rollout replica.
    let e = err(&format!(
        "mode = \"colocated\", llm = \"llama-3-70b\", {common}"
    ));
    assert!(
        e.contains("field `jobs[0].rl`") && e.contains("no pool can host a rollout replica"),
        "{e}"
    );
    assert!(
        err(&format!("mode = \"async\", llm = \"llama-3-8b\", {common}"))
            .contains("rollout_replicas`: is required")
    );
}

const SERVED: &str = "seed = 3\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 1\nusd_per_gpu_hour = 6\n\
    [[jobs]]\nid = \"blocker\"\ngpus = 72\nduration_s = 100\n\
    [[jobs]]\nid = \"svc\"\nkind = \"inference\"\nreplicas = 2\ngpus_per_replica = 4\nlifetime_s = 600\nsubmit_s = 10\n\
    [jobs.serving]\nmodel = \"llama-3-8b\"\nrouter = \"kv-aware\"\n\
    traffic = { kind = \"sessions\", sessions_per_s = 0.5, turns = { median = 4 }, first_prompt_tokens = { median = 2000 }, tokens_per_turn = { median = 300 }, output_tokens = { median = 200 }, tool_wait_s = { median_s = 2 } }\n";

#[test]
fn inference_services_are_served_where_and_when_they_ran() {
    let w = from_toml(SERVED);
    let o = run(&w);
    // The service waits for the blocker: it runs from 100 s to 700 s.
    assert_eq!(
        (o.jobs[1].start, o.jobs[1].end),
        (Some(100_000_000), Some(700_000_000))
    );
    let inf = ultrasched::engine::serving::serve_services(&w, &o)
        .unwrap()
        .expect("one served service");
    let again = ultrasched::engine::serving::serve_services(&w, &o)
        .unwrap()
        .unwrap();
    assert_eq!(
        serde_json::to_string(&inf).unwrap(),
        serde_json::to_string(&again).unwrap(),
        "deterministic"
    );
    let s = &inf.per_service[0];
    assert_eq!(
        (s.start_s, s.end_s, s.gpu.as_str()),
        (100.0, 700.0, "gb200")
    );
    // ~0.5 sessions/s x 600 s x 4 turns.
    assert!(
        (800..=1600).contains(&inf.requests),
        "{} requests",
        inf.requests
    );
    assert_eq!(inf.completed, inf.requests);
    // 8 GPUs x 600 s at $6/GPU-h, per million output tokens.
    assert!((inf.cost_usd - 8.0 * 600.0 / 3600.0 * 6.0).abs() < 1e-9);
    assert!(
        (inf.usd_per_million_output_tokens - inf.cost_usd / inf.output_tokens as f64 * 1e6).abs()
            < 1e-9
    );
    let sessions = s.outcome.sessions.as_ref().expect("session stats");
    assert!(
        sessions.ttft_later_turns_s.mean < sessions.ttft_first_turn_s.mean,
        "later turns reuse the cached prefix"
    );
    let report = Report::new(
        &w,
        &o,
        RunInfo {
            version: String::new(),
            backend: String::new(),
            adapter: String::new(),
            wall_s: 0.0,
            cluster_s: 0.0,
            serving_s: 0.0,
            kernel_usage: None,
            workload_file: String::new(),
        },
    )
    .with_inference(Some(inf));
    let v = serde_json::to_value(&report).unwrap();
    for key in [
        "requests",
        "ttft_s",
        "tpot_s",
        "slo_attainment",
        "usd_per_million_output_tokens",
    ] {
        assert!(v["inference"].get(key).is_some(), "inference.{key}");
    }
}

#[test]
fn serving_specs_are_checked_when_read() {
    let bad = SERVED.replace("model = \"llama-3-8b\"", "model = \"llama-9\"");
    let e = parse_str(&bad, "s.toml", Format::Toml)
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("s.toml:19:9: unknown model `llama-9`"), "{e}");
    // 70B weights (141 GB) do not fit one 80 GB H100.
    let big = SERVED
        .replace("llama-3-8b", "llama-3-70b")
        .replace("gpus_per_replica = 4", "gpus_per_replica = 1")
        .replace("p6e-gb200", "p5-h100");
    let e = build(
        parse_str(&big, "s.toml", Format::Toml).unwrap(),
        "s.toml",
        "t",
        Overrides::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("field `jobs[1].serving.model`"),
        "{e}"
    );
    let train = SERVED.replace(
        "kind = \"inference\"\nreplicas = 2\ngpus_per_replica = 4\nlifetime_s = 600",
        "gpus = 8\nduration_s = 600",
    );
    let e = build(
        parse_str(&train, "s.toml", Format::Toml).unwrap(),
        "s.toml",
        "t",
        Overrides::default(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("serving`: belongs to inference jobs"),
        "{e}"
    );
}

#[test]
fn a_preempted_rl_job_resumes_its_steps_and_pays_the_restart_once() {
    // A low-priority colocated RL job fills one UltraServer; a high-priority gang arrives at 600 s and takes
    // it for 1000 s. The RL job restarts afterwards: its time on GPUs is its steps x step time plus exactly
    // the 120 s restart cost (to the microsecond rounding of the step conversion).
    let text = "seed = 1\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 1\n\
        [scheduler]\nqueue = \"priority\"\npreemption = true\nrestart_cost_s = 120\n\
        [[jobs]]\nid = \"rl\"\nkind = \"rl\"\ngpus = 72\npriority = 0\n\
        rl = { mode = \"colocated\", steps = 50, llm = \"llama-3-8b\", episodes_per_step = 64, turns = 2, prompt_tokens = 1024, output_tokens = 128, reward_s = 5 }\n\
        [[jobs]]\nid = \"urgent\"\ngpus = 72\nduration_s = 1000\nsubmit_s = 600\npriority = 9\n";
    let w = from_toml(text);
    let o = run(&w);
    let step = o.jobs[0].rl.unwrap().step_s;
    assert_eq!(o.jobs[0].preemptions, 1);
    assert_eq!(o.jobs[1].start, Some(600_000_000));
    let held: u64 = o
        .segments
        .iter()
        .filter(|s| s.job == 0)
        .map(|s| s.end - s.start)
        .sum();
    let expected = 50.0 * step + 120.0;
    assert!(
        (held as f64 / 1e6 - expected).abs() < 1e-3,
        "held {} s, expected {expected} s",
        held as f64 / 1e6
    );
    assert_eq!(o.segments.iter().filter(|s| s.job == 0).count(), 2);
}

/// A service of 36 one-node replicas (4 x GB200, llama-3-8b) filling two 72-GPU domains, `split` being
/// extra `[jobs.serving]` lines.
fn disaggregated_service(split: &str) -> String {
    format!(
        "seed = 5\n[cluster]\n[[cluster.pools]]\npreset = \"p6e-gb200\"\ncount = 2\nusd_per_gpu_hour = 6\n\
         [[jobs]]\nid = \"svc\"\nkind = \"inference\"\nreplicas = 36\ngpus_per_replica = 4\nlifetime_s = 300\n\
         [jobs.serving]\nmodel = \"llama-3-8b\"\n{split}\
         traffic = {{ kind = \"poisson\", rate_per_s = 40, prompt_tokens = {{ median = 3000 }}, output_tokens = {{ median = 150 }} }}\n"
    )
}

#[test]
fn a_disaggregated_service_is_served_on_the_domains_the_engine_placed_it_in() {
    use ultrasched::engine::serving::traffic::serve_placed;
    let w = from_toml(&disaggregated_service(
        "prefill_replicas = 12\ndecode_replicas = 24\n",
    ));
    let o = run(&w);
    let inf = ultrasched::engine::serving::serve_services(&w, &o)
        .unwrap()
        .expect("one served service");
    let s = &inf.per_service[0];
    assert_eq!(inf.completed, inf.requests);
    let copy = s
        .outcome
        .summary
        .kv_transfer_s
        .expect("a disaggregated service reports its KV copies");
    assert!(copy.p50 > 0.0 && copy.max < 1.0, "{copy:?}");
    // The domains, read from the segment's replicas (one node each, 18 nodes per domain), not asked of
    // the engine: the service must be served exactly as on those domains.
    let seg = o.segments.iter().find(|g| g.job == 0).unwrap();
    let domains: Vec<u32> = seg.gangs.iter().map(|g| g[0].0 / 18).collect();
    assert_eq!(domains.len(), 36);
    assert!(domains.contains(&0) && domains.contains(&1));
    let job = &w.jobs[0];
    let spec = job.serving.as_deref().unwrap();
    let gpu = w.cluster.pools[0].preset.model();
    let start = o.jobs[0].start.unwrap();
    let end = o.jobs[0].end.unwrap();
    let seed = ultrasched::engine::serving::traffic::service_seed(w.seed, 0);
    let direct = serve_placed(spec, gpu, 4, &domains, start, end, seed).unwrap();
    assert_eq!(
        serde_json::to_string(&direct).unwrap(),
        serde_json::to_string(&s.outcome).unwrap()
    );
    // With every prefill replica in the other domain from every decode replica, each copy crosses EFA.
    let mut apart = vec![0u32; 12];
    apart.extend([1u32; 24]);
    let far = serve_placed(spec, gpu, 4, &apart, start, end, seed).unwrap();
    let near = vec![0u32; 36];
    let near = serve_placed(spec, gpu, 4, &near, start, end, seed).unwrap();
    let (far_copy, near_copy) = (
        far.summary.kv_transfer_s.unwrap(),
        near.summary.kv_transfer_s.unwrap(),
    );
    assert!(
        far_copy.p50 > near_copy.p50,
        "{far_copy:?} vs {near_copy:?}"
    );
    assert!(far.summary.ttft_s.mean > near.summary.ttft_s.mean);
    // The same replicas colocated copy nothing.
    let colocated = from_toml(&disaggregated_service(""));
    let o = run(&colocated);
    let inf = ultrasched::engine::serving::serve_services(&colocated, &o)
        .unwrap()
        .unwrap();
    assert!(inf.per_service[0].outcome.summary.kv_transfer_s.is_none());
}

#[test]
fn a_disaggregated_split_that_cannot_be_honoured_is_refused_with_its_field() {
    let err = |split: &str| {
        let text = disaggregated_service(split);
        let built = parse_str(&text, "svc.toml", Format::Toml)
            .and_then(|spec| build(spec, "svc.toml", "svc", Overrides::default()));
        format!("{:#}", built.unwrap_err())
    };
    let e = err("prefill_replicas = 10\ndecode_replicas = 20\n");
    assert!(
        e.contains("jobs[0].serving.prefill_replicas")
            && e.contains("must equal the job's replicas (36)"),
        "{e}"
    );
    let e = err("prefill_replicas = 12\n");
    assert!(e.contains("jobs[0].serving.decode_replicas"), "{e}");
    let e = err("prefill_replicas = 0\ndecode_replicas = 36\n");
    // Refused where it is read, with its line and column.
    assert!(
        e.contains("jobs[0].serving.prefill_replicas") && e.contains("from 1"),
        "{e}"
    );
    let e = err("prefill_replicas = 12\ndecode_replicas = 24\nadmission = \"reserve\"\n");
    assert!(e.contains("jobs[0].serving.admission"), "{e}");
    let e = err(
        "prefill_replicas = 12\ndecode_replicas = 24\nautoscale = { min_replicas = 1, max_replicas = 36 }\n",
    );
    assert!(e.contains("autoscale"), "{e}");
}

/// The utilisation timeline is recomputed from the segments alone: at every sample instant `t` (taken
/// after everything due at `t`), the jobs running are those with a segment `start <= t < end`, the busy
/// GPUs theirs, the inference GPUs those of services, and the queued jobs those submitted, not yet ended
/// and not running. Workloads with preemption, elastic resizes, autoscaled services, failures and a gap with
/// nothing running.
#[test]
fn samples_agree_with_the_segments() {
    let mut cases: Vec<(String, Workload)> = ["quickstart", "mixed-fleet", "failures-spares"]
        .iter()
        .map(|n| (n.to_string(), common::load(&format!("workloads/{n}.toml"))))
        .collect();
    cases.push((
        "shared".into(),
        from_toml(&format!("{}{LATER}", common::SHARED_FLEET)),
    ));
    for (name, w) in &cases {
        let o = common::run(w);
        assert!(o.samples.len() > 3, "{name}: {} samples", o.samples.len());
        // One sample per instant: a later change at the same instant replaces it.
        assert!(
            o.samples.windows(2).all(|p| p[0].time < p[1].time),
            "{name}: two samples at one instant"
        );
        // A step function: a sample is kept only where some value changes.
        let values = |s: &ultrasched::engine::cluster::Sample| {
            (
                s.busy_gpus,
                s.inference_gpus,
                s.queued,
                s.running,
                s.stranded_gpus,
            )
        };
        if let Some(p) = o
            .samples
            .windows(2)
            .find(|p| values(&p[0]) == values(&p[1]))
        {
            panic!(
                "{name}: the sample at {} repeats the one at {}",
                p[1].time, p[0].time
            );
        }
        let last_end: Vec<Option<u64>> = (0..w.jobs.len())
            .map(|j| {
                o.segments
                    .iter()
                    .filter(|s| s.job as usize == j)
                    .map(|s| s.end)
                    .max()
            })
            .collect();
        for s in &o.samples {
            let t = s.time;
            let live: Vec<&ultrasched::engine::cluster::Segment> = o
                .segments
                .iter()
                .filter(|g| g.start <= t && t < g.end)
                .collect();
            let running: std::collections::BTreeSet<u32> = live.iter().map(|g| g.job).collect();
            let gpus = |g: &&ultrasched::engine::cluster::Segment| -> u64 {
                g.domains.iter().map(|&(_, n)| n as u64).sum()
            };
            let busy: u64 = live.iter().map(gpus).sum();
            let inference: u64 = live
                .iter()
                .filter(|g| w.jobs[g.job as usize].kind == JobKind::Inference)
                .map(gpus)
                .sum();
            let queued = (0..w.jobs.len())
                .filter(|&j| {
                    o.jobs[j].state == JobState::Completed
                        && w.jobs[j].submit <= t
                        && last_end[j].is_some_and(|e| e > t)
                        && !running.contains(&(j as u32))
                })
                .count();
            let want = (running.len() as u32, busy, inference, queued as u32);
            let got = (s.running, s.busy_gpus, s.inference_gpus, s.queued);
            assert_eq!(
                got, want,
                "{name} at {t} us: (running, busy, inference, queued)"
            );
        }
    }
}

/// A job long after the shared fleet's others have ended: a stretch with nothing running or waiting.
const LATER: &str = "[[jobs]]\nid = \"later\"\ngpus = 8\nduration_s = 10\nsubmit_s = 2000\n";

#[test]
fn a_run_shorter_than_a_microsecond_takes_one_and_each_instant_has_one_sample() {
    // a (8 GPUs, 0.1 us) takes 1 us: no event falls on the instant that schedules it, so the engine visits
    // each instant once and keeps one sample per instant, the state after it. b starts when a ends.
    let text = "[cluster]\n[[cluster.pools]]\nname = \"n\"\ngpu = \"h100\"\ngpus_per_node = 8\ncount = 1\n\
        [scheduler]\nqueue = \"fifo\"\nplacement = \"first-fit\"\n\
        [[jobs]]\nid = \"a\"\ngpus = 8\nduration_s = 0.0000001\n\
        [[jobs]]\nid = \"b\"\ngpus = 8\nduration_s = 10\n";
    let o = run(&from_toml(text));
    assert_eq!(o.jobs[0].end, Some(1));
    assert_eq!(o.jobs[1].start, Some(1));
    let states: Vec<(u64, u64, u32, u32)> = o
        .samples
        .iter()
        .map(|s| (s.time, s.busy_gpus, s.queued, s.running))
        .collect();
    assert_eq!(
        states,
        vec![(0, 8, 1, 1), (1, 8, 0, 1), (10_000_001, 0, 0, 0)]
    );
}

/// The resident candidate list costs a call the domains that changed, not a rebuild, and is compacted
/// only when its holes (domains that filled up since the last rebuild, kept with 0 free GPUs) pass 64 and
/// half the list: filling one P5 domain after another, the list keeps its length (one more hole each)
/// until the 65th hole in a list of 100 (65 > 64 and 130 > 100), then holds the 35 domains still free;
/// in a list of 130 the 65th hole is exactly half (130 is not more than 130), so it is the 66th. A
/// domain freed again takes its hole back. Decisions do not depend on this (tests/schedule_props.rs
/// checks the live records against a rebuild); the number of records a call scores does.
#[test]
fn the_resident_candidate_list_is_updated_in_place_and_compacted_past_64_holes_and_half_the_list() {
    use ultrasched::domain::cluster::ClusterState;
    use ultrasched::engine::cluster::placement::Scratch;
    for (n, compact_at) in [(100usize, 65usize), (130, 66)] {
        let w = from_toml(&format!(
            "[cluster]\n[[cluster.pools]]\npreset = \"p5-h100\"\ncount = {n}\n"
        ));
        let c = &w.cluster;
        let mut state = ClusterState::new(c);
        let mut scratch = Scratch::new();
        scratch.refresh(c, &state);
        assert_eq!((scratch.candidates.len(), scratch.live()), (n, n));
        let mut held = Vec::new();
        for k in 1..=n {
            let mut a = Vec::new();
            state.take_from_domain(c, (k - 1) as u32, 8, &mut a);
            held.push(a);
            scratch.dirty = true;
            scratch.refresh(c, &state);
            let scored = if k < compact_at { n } else { n - compact_at };
            assert_eq!(
                (scratch.candidates.len(), scratch.live()),
                (scored, n - k),
                "{n} domains, {k} filled"
            );
            if k == 10 {
                // Domain 3 frees up again: its hole is a candidate again, the list keeps its length.
                state.release(c, &held[3]);
                scratch.dirty = true;
                scratch.refresh(c, &state);
                assert_eq!((scratch.candidates.len(), scratch.live()), (n, n - 9));
                let mut a = Vec::new();
                state.take_from_domain(c, 3, 8, &mut a);
                held[3] = a;
                scratch.dirty = true;
                scratch.refresh(c, &state);
                assert_eq!((scratch.candidates.len(), scratch.live()), (n, n - 10));
            }
        }
    }
}
