//! The per-operator cost model against hand computations, and vLLM's scheduler (paged KV, preemption with
//! recomputation, token budget, chunked prefill) against worked examples.

use std::cell::RefCell;
use ultrasched::domain::catalog::{gpu_model_index, GPU_MODELS};
use ultrasched::domain::llm::builtin;
use ultrasched::domain::traffic::{Admission, Router};
use ultrasched::engine::serving::sim::{simulate_replicas, Request, SimConfig};
use ultrasched::perf::inference::ServiceModel;
use ultrasched::perf::operators::{Chunk, OperatorConstants, Operators, Shape};

fn ops(tp: u32, domains: u32) -> Operators {
    let gpu = GPU_MODELS[gpu_model_index("h100").unwrap()];
    Operators::new(
        builtin("llama-2-70b").unwrap(),
        gpu,
        tp,
        domains,
        OperatorConstants::default(),
    )
    .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * b.abs().max(1.0)
}

// Llama-2-70B on 4 x H100 (989 TFLOP/s, 3.35 TB/s, NVLink 450 GB/s per direction), per GPU: hidden h = 8192,
// 16 query heads and 2 KV heads of 128 (q_dim 2048, kv_dim 256), MLP 28672 / 4 = 7168, vocab 32000 / 4 =
// 8000, 2-byte elements, 80 layers. gemm(t, in, out) = max(2 t in out / (989e12 * 0.7),
// (in out + t (in + out)) * 2 / (3.35e12 * 0.85)) s + 4 us.

#[test]
fn one_decode_iteration_by_hand() {
    // 4 decoding requests holding 8,000 KV tokens in all.
    let b = ops(4, 1).breakdown(&Shape {
        prefills: &[],
        decodes: 4,
        decode_kv: 8000,
    });
    // Linear, per layer: every GEMM is weight-bound at 4 tokens:
    //   QKV  (8192*2560 + 4*(8192+2560))*2 B = 42,028,032 B / 2.8475e12 B/s = 14.7596 us + 4
    //   O    (2048*8192 + 4*(2048+8192))*2   = 33,636,352 B                 = 11.8126 us + 4
    //   up   (8192*14336 + 4*(8192+14336))*2 = 235,061,248 B                = 82.5500 us + 4
    //   down (7168*8192 + 4*(7168+8192))*2   = 117,563,392 B                = 41.2865 us + 4
    //   = 166.409 us; x 80 = 13,312.73 us.
    assert!(close(b.linear_us, 13_312.731_813_871_816), "{b:?}");
    // Attention: KV read 8000 tok * 2*256*2 B = 8,192,000 B / (3.35e12 * 0.6) = 4.0756 us + 8 us latency
    //   = 12.0756 us; x 80 = 966.05 us.
    assert!(close(b.attention_us, 966.049_751_243_781_2), "{b:?}");
    // All-reduce of 4 * 8192 * 2 = 65,536 B: 37 + 20 + 1.5 * 65536 / 315e9 s = 57.31208 us; two per layer,
    //   x 80 = 9,169.93 us.
    assert!(close(b.all_reduce_us, 9_169.932_190_476_191), "{b:?}");
    // Small kernels per layer (latency + bytes / (3.35e12 * 0.5)): KV write 2 + 0.0024, two norms
    //   2 * (6 + 0.0783), rope 2 + 0.0225, act 4 + 0.1027, add 2 + 0.1174 = 22.401 us; x 80 = 1,792.08 us.
    assert!(close(b.small_us, 1_792.083_295_522_388_4), "{b:?}");
    // Embedding 2 + 0.0783 us; LM head gemm(4, 8192, 8000) = 131,160,064 B / 2.8475e12 = 46.0615 + 4 us.
    assert!(close(b.embed_head_us, 52.154_296_189_640_04), "{b:?}");
    assert_eq!(b.overhead_us, 0.0);
    // 25,292.95 us in all.
    assert_eq!(ops(4, 1).decode_step_us(8000, 4), 25_293);
}

#[test]
fn one_prefill_iteration_by_hand() {
    // One 2,048-token prompt, nothing cached.
    let b = ops(4, 1).breakdown(&Shape {
        prefills: &[Chunk {
            new: 2048,
            ctx: 0,
            last: true,
        }],
        decodes: 0,
        decode_kv: 0,
    });
    // Linear, compute-bound: 2 * 2048 * (8192*2560 + 2048*8192 + 8192*14336 + 7168*8192) FLOP
    //   = 2 * 2048 * 318,767,104 = 1.30567e12 FLOP per layer / (989e12 * 0.7) = 1886.09 us, + 4 * 4 us;
    //   x 80 = 102,527.82 us.
    assert!(close(b.linear_us, 102_527.820_700_158_9), "{b:?}");
    // Attention, causal: 4 * 16 heads * 128 * 2048*2049/2 = 17,188,257,792 FLOP / (989e12 * 0.4)
    //   = 43.4486 us + 8 = 51.4486 us per layer; x 80 = 4,115.89 us.
    assert!(close(b.attention_us, 4_115.886_307_785_642), "{b:?}");
    // All-reduce of 2048 * 8192 * 2 = 33,554,432 B: 57 + 1.5 * 33554432 / 315e9 s = 216.7830 us, x 160.
    assert!(close(b.all_reduce_us, 34_685.281_523_809_52), "{b:?}");
    assert!(close(b.small_us, 18_186.647_307_462_685), "{b:?}");
    // The LM head runs for the prompt's last token only.
    assert!(close(b.embed_head_us, 92.106_919_332_748_02), "{b:?}");
}

#[test]
fn a_prefill_is_never_faster_than_a_decode_step() {
    // The weight-read floor: prefilling 128 tokens reads every weight, as a decode step does.
    let m = ops(4, 1);
    let step = m.decode_step_us(128, 1);
    let prefill = m.iteration_us(
        &[Chunk {
            new: 128,
            ctx: 0,
            last: true,
        }],
        0,
        0,
    );
    assert!(
        prefill > step,
        "prefill {prefill} us, decode step {step} us"
    );
    // A cached prefix costs attention over the context but no linear work for it.
    let cold = m.iteration_us(
        &[Chunk {
            new: 1024,
            ctx: 0,
            last: true,
        }],
        0,
        0,
    );
    let warm = m.iteration_us(
        &[Chunk {
            new: 512,
            ctx: 512,
            last: true,
        }],
        0,
        0,
    );
    assert!(warm < cold, "{warm} {cold}");
}

#[test]
fn tensor_parallel_all_reduces_cross_efa_between_domains() {
    let inside = ops(8, 1).breakdown(&Shape {
        prefills: &[],
        decodes: 8,
        decode_kv: 8000,
    });
    let across = ops(8, 2).breakdown(&Shape {
        prefills: &[],
        decodes: 8,
        decode_kv: 8000,
    });
    // 8 * 8192 * 2 = 131,072 B: NVLink 37 + 20 + 1.75 * 131072 / 315e9 s; EFA 60 + 20 + 1.75 * 131072 / 40e9 s.
    assert!(close(
        inside.all_reduce_us,
        160.0 * (57.0 + 1.75 * 131_072.0 / 315e9 * 1e6)
    ));
    assert!(close(
        across.all_reduce_us,
        160.0 * (80.0 + 1.75 * 131_072.0 / 40e9 * 1e6)
    ));
    assert_eq!(inside.linear_us, across.linear_us);
    // No all-reduce on one GPU.
    let one = Operators::new(
        builtin("llama-3-8b").unwrap(),
        GPU_MODELS[0],
        1,
        1,
        OperatorConstants::default(),
    )
    .unwrap();
    assert_eq!(
        one.breakdown(&Shape {
            prefills: &[],
            decodes: 1,
            decode_kv: 10
        })
        .all_reduce_us,
        0.0
    );
}

#[test]
fn kv_capacity_keeps_vllms_memory_margin() {
    // 4 * 80e9 * 0.9 - 68,976,648,192 * 2 B = 150,046,703,616 B / 327,680 B per token = 457,906.2 tokens.
    assert_eq!(ops(4, 1).kv_capacity_tokens(), 457_906);
}

/// A model with fixed costs that records every iteration's prefill tokens and decodes.
struct Recorder {
    capacity: u64,
    log: RefCell<Vec<(u64, u64)>>,
}

impl ServiceModel for Recorder {
    fn prefill_us(&self, new_tokens: u64, _requests: usize) -> u64 {
        new_tokens.max(1)
    }
    fn decode_step_us(&self, _kv: u64, _batch: usize) -> u64 {
        100
    }
    fn iteration_us(&self, prefills: &[Chunk], decodes: u64, _kv: u64) -> u64 {
        let tokens: u64 = prefills.iter().map(|c| c.new).sum();
        self.log.borrow_mut().push((tokens, decodes));
        tokens + if decodes > 0 { 100 } else { 0 }
    }
    fn kv_capacity_tokens(&self) -> u64 {
        self.capacity
    }
}

fn req(arrival_us: u64, prompt: u32, output: u32) -> Request {
    Request {
        arrival_us,
        prompt_tokens: prompt,
        output_tokens: output,
        hash_ids: vec![],
    }
}

fn paged(block_size: u32) -> SimConfig {
    SimConfig {
        replicas: 1,
        router: Router::RoundRobin,
        admission: Admission::Paged,
        block_size,
        watermark: 0.0,
        ..SimConfig::default()
    }
}

#[test]
fn pages_are_allocated_as_tokens_are_produced_and_all_freed() {
    // One request, prompt 100, 50 output tokens, 16-token pages: ceil(100/16) = 7 pages at admission; the
    // 49th decode step writes KV slot 149 (the 150th), so the peak is ceil(149/16) = 10 pages; at the end
    // none is held.
    let m = Recorder {
        capacity: 1 << 20,
        log: RefCell::new(vec![]),
    };
    let res = simulate_replicas(&[req(0, 100, 50)], &m, &paged(16)).unwrap();
    assert_eq!(res.replicas[0].peak_pages, 10);
    assert_eq!(res.kv_pages_held_at_end, 0);
    assert_eq!(res.requests[0].output_tokens, 50);
    // Reserving the whole footprint instead needs no pages at all.
    let reserve = SimConfig {
        admission: Admission::Reserve,
        ..paged(16)
    };
    let res = simulate_replicas(&[req(0, 100, 50)], &m, &reserve).unwrap();
    assert_eq!(res.replicas[0].peak_pages, 0);
}

#[test]
fn a_preempted_request_is_recomputed_and_finishes() {
    // KV for 64 tokens = 4 pages of 16. A: prompt 16, 40 outputs (needs 4 pages at its end); B arrives
    // 1 us later, same sizes. Both start with 1 page; when they need 5 pages together, B (the newer) is
    // preempted, waits, and is recomputed (prefill of its prompt plus its outputs so far) after A ends.
    let m = Recorder {
        capacity: 64,
        log: RefCell::new(vec![]),
    };
    let res = simulate_replicas(&[req(0, 16, 40), req(1, 16, 40)], &m, &paged(16)).unwrap();
    let (a, b) = (res.requests[0], res.requests[1]);
    assert_eq!(a.preemptions, 0);
    assert!(b.preemptions >= 1, "{b:?}");
    assert_eq!((a.output_tokens, b.output_tokens), (40, 40));
    assert!(b.done_us.unwrap() > a.done_us.unwrap());
    assert_eq!(res.kv_pages_held_at_end, 0);
    assert!(res.replicas[0].peak_pages <= 4);
    // The recompute prefill covers B's prompt and the tokens it had produced: more than its 16-token prompt.
    let prefills: Vec<u64> = m
        .log
        .borrow()
        .iter()
        .filter(|e| e.0 > 0)
        .map(|e| e.0)
        .collect();
    assert!(prefills.len() >= 3, "{prefills:?}");
    assert!(prefills[2..].iter().any(|&t| t > 16), "{prefills:?}");
    // Reserving whole footprints, B (56 tokens) waits for A instead: no preemption.
    let reserve = SimConfig {
        admission: Admission::Reserve,
        ..paged(16)
    };
    let res = simulate_replicas(&[req(0, 16, 40), req(1, 16, 40)], &m, &reserve).unwrap();
    assert_eq!(res.requests[1].preemptions, 0);
    assert!(res.requests[1].first_token_us.unwrap() >= res.requests[0].done_us.unwrap());
}

#[test]
fn the_token_budget_splits_prefill_batches() {
    // Three 2,000-token prompts at once with a 4,096-token budget: prefills of 2 then 1 (4,000 <= 4,096).
    let m = Recorder {
        capacity: 1 << 20,
        log: RefCell::new(vec![]),
    };
    let reqs = [req(0, 2000, 2), req(0, 2000, 2), req(0, 2000, 2)];
    simulate_replicas(&reqs, &m, &paged(16)).unwrap();
    let prefills: Vec<u64> = m
        .log
        .borrow()
        .iter()
        .filter(|e| e.0 > 0)
        .map(|e| e.0)
        .collect();
    assert_eq!(prefills, vec![4000, 2000]);
    // A prompt longer than the budget runs alone.
    m.log.borrow_mut().clear();
    simulate_replicas(&[req(0, 5000, 2), req(0, 10, 2)], &m, &paged(16)).unwrap();
    let prefills: Vec<u64> = m
        .log
        .borrow()
        .iter()
        .filter(|e| e.0 > 0)
        .map(|e| e.0)
        .collect();
    assert_eq!(prefills, vec![5000, 10]);
}

#[test]
fn chunked_prefill_bounds_every_iteration_and_mixes_decodes() {
    let m = Recorder {
        capacity: 1 << 20,
        log: RefCell::new(vec![]),
    };
    let cfg = SimConfig {
        chunk_size: Some(256),
        ..paged(16)
    };
    // A long-running decode, then a 1,000-token prompt arriving while it decodes.
    let res = simulate_replicas(&[req(0, 10, 200), req(1_000, 1000, 5)], &m, &cfg).unwrap();
    let log = m.log.borrow();
    assert!(log.iter().all(|&(p, d)| p + d <= 256), "{log:?}");
    // The prompt went in chunks of 255 (256 less the one decode) alongside the decode: 255, 255, 255, 235.
    let chunks: Vec<(u64, u64)> = log.iter().copied().filter(|e| e.0 > 0 && e.1 > 0).collect();
    assert_eq!(
        chunks.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![255, 255, 255, 235]
    );
    assert!(res.requests.iter().all(|o| o.done_us.is_some()));
    assert_eq!(res.requests[1].output_tokens, 5);
}

#[test]
fn service_fields_choose_the_scheduler_and_cost_model_and_bad_ones_are_located() {
    use ultrasched::domain::traffic::CostModel;
    use ultrasched::input::traffic::parse_serve;
    let base = "model = \"llama-2-70b\"\n[traffic]\nkind = \"poisson\"\nrate_per_s = 1\n\
                prompt_tokens = { median = 512 }\noutput_tokens = { median = 8 }\n";
    let build = |extra: &str| {
        parse_serve(&format!("{extra}{base}"), "s.toml").and_then(|s| s.build("", "s.toml"))
    };
    let d = build("").unwrap().setup;
    assert_eq!(d.cost_model, CostModel::Operators);
    assert_eq!(d.admission, Admission::Paged);
    assert_eq!(
        (
            d.max_batch,
            d.max_tokens_in_batch,
            d.block_size,
            d.chunk_size
        ),
        (128, 4096, 16, None)
    );
    let s = build(
        "cost_model = \"profile\"\nadmission = \"paged\"\nchunk_size = 512\nmax_tokens_in_batch = 8192\n\
         block_size = 32\n",
    )
    .unwrap()
    .setup;
    assert_eq!(s.cost_model, CostModel::Profile);
    assert_eq!(
        (s.chunk_size, s.max_tokens_in_batch, s.block_size),
        (Some(512), 8192, 32)
    );
    let e = build("cost_model = \"magic\"\n").unwrap_err().to_string();
    assert!(
        e.starts_with("s.toml:1:14:") && e.contains("operators"),
        "{e}"
    );
    let e = build("admission = \"reserve\"\nchunk_size = 256\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("field `chunk_size`") && e.contains("paged"),
        "{e}"
    );
    let e = build("block_size = 0\n").unwrap_err().to_string();
    assert!(e.starts_with("s.toml:1:14:"), "{e}");
}

// ---- Prefill/decode disaggregation ----

use ultrasched::domain::traffic::PdPlacement;
use ultrasched::engine::serving::sim::{simulate_disaggregated, Disaggregation, SimResult};
use ultrasched::perf::kv_transfer::{KvLink, KvTransfer};

/// 1,000 B of KV per token over one link: NVLink 1 GB/s + 10 us, EFA 0.5 GB/s + 60 us, so 1,000 tokens
/// copy in 1,010 us inside a domain and 2,060 us across.
fn slow_link() -> KvTransfer {
    KvTransfer {
        bytes_per_token: 1000,
        links: 1,
        link: KvLink {
            nvlink_gbps_per_gpu: 1.0,
            nvlink_latency_us: 10.0,
            efa_gbps_per_gpu: 0.5,
            efa_latency_us: 60.0,
            bw_eff: 1.0,
        },
    }
}

fn split(prefill: u32, decode: u32, domains: Vec<u32>) -> SimConfig {
    SimConfig {
        replicas: prefill + decode,
        disaggregation: Some(Disaggregation {
            prefill_replicas: prefill,
            decode_replicas: decode,
            domains,
            transfer: slow_link(),
        }),
        ..paged(16)
    }
}

fn recorder() -> Recorder {
    Recorder {
        capacity: 1 << 20,
        log: RefCell::new(vec![]),
    }
}

/// A whole-lifetime disaggregated run (no session dependencies, no horizon) that must succeed.
fn run_split(requests: &[Request], p: &Recorder, d: &Recorder, cfg: &SimConfig) -> SimResult {
    simulate_disaggregated(requests, &[], u64::MAX, p, d, cfg).unwrap()
}

#[test]
fn a_disaggregated_request_waits_for_its_kv_copy_by_hand() {
    // Prompt 1,000, 10 outputs. Colocated: the prefill iteration takes 1,000 us and yields the first
    // token; 9 decode steps of 100 us follow: TTFT 1,000 us, done at 1,900 us.
    let colocated = simulate_replicas(&[req(0, 1000, 10)], &recorder(), &paged(16)).unwrap();
    assert_eq!(colocated.requests[0].first_token_us, Some(1000));
    assert_eq!(colocated.requests[0].done_us, Some(1900));
    // Disaggregated, one domain: the prompt's 1,000 KV tokens copy in 1,010 us, the decode replica then
    // streams the first token (TTFT 2,010 us) and runs the same 9 steps: done at 2,910 us.
    let (p, d) = (recorder(), recorder());
    let res = run_split(&[req(0, 1000, 10)], &p, &d, &split(1, 1, vec![0, 0]));
    let r = res.requests[0];
    assert_eq!((r.prefill_replica, r.replica), (Some(0), Some(1)));
    assert_eq!(r.kv_transfer_us, Some(1010));
    assert_eq!(r.first_token_us, Some(2010));
    assert_eq!(r.done_us, Some(2910));
    assert_eq!(r.output_tokens, 10);
    assert_eq!(res.replicas[0].kv_sent, 1);
    assert_eq!(res.replicas[1].requests, 1);
    assert_eq!(res.kv_pages_held_at_end, 0);
    // The prefill replica ran the prompt alone; the decode replica ran only the 9 decode steps.
    assert_eq!(*p.log.borrow(), vec![(1000, 0)]);
    assert_eq!(
        (res.replicas[0].prefill_us, res.replicas[0].decode_us),
        (1000, 0)
    );
    assert_eq!(
        (res.replicas[1].prefill_us, res.replicas[1].decode_us),
        (0, 900)
    );
    // Across domains the copy goes over EFA: 2,060 us, TTFT 3,060 us.
    let (p, d) = (recorder(), recorder());
    let res = run_split(&[req(0, 1000, 10)], &p, &d, &split(1, 1, vec![0, 1]));
    assert_eq!(res.requests[0].kv_transfer_us, Some(2060));
    assert_eq!(res.requests[0].first_token_us, Some(3060));
    assert_eq!(res.requests[0].done_us, Some(3960));
}

#[test]
fn a_prefill_replica_sends_one_copy_at_a_time() {
    // Two 1,000-token prompts arrive together on one prefill replica and are prefilled in one 2,000 us
    // iteration; their copies share its link: the first lands at 2,000 + 1,010, the second waits for it
    // and lands 1,010 us later (its kv_transfer_us counts the wait).
    let (p, d) = (recorder(), recorder());
    let cfg = split(1, 2, vec![0, 0, 0]);
    let res = run_split(&[req(0, 1000, 2), req(0, 1000, 2)], &p, &d, &cfg);
    let (a, b) = (res.requests[0], res.requests[1]);
    assert_eq!(*p.log.borrow(), vec![(2000, 0)]);
    assert_eq!(
        (a.kv_transfer_us, b.kv_transfer_us),
        (Some(1010), Some(2020))
    );
    assert_eq!(
        (a.first_token_us, b.first_token_us),
        (Some(3010), Some(4020))
    );
    // Each goes to the decode replica with fewer outstanding requests: one each.
    assert_eq!((a.replica, b.replica), (Some(1), Some(2)));
    assert_eq!((a.done_us, b.done_us), (Some(3110), Some(4120)));
    assert_eq!(res.kv_pages_held_at_end, 0);
}

#[test]
fn a_one_token_output_finishes_on_its_prefill_replica() {
    let (p, d) = (recorder(), recorder());
    let res = run_split(&[req(0, 500, 1)], &p, &d, &split(1, 1, vec![0, 0]));
    let r = res.requests[0];
    assert_eq!((r.prefill_replica, r.replica), (Some(0), Some(0)));
    assert_eq!(r.kv_transfer_us, None);
    assert_eq!((r.first_token_us, r.done_us), (Some(500), Some(500)));
    assert_eq!(res.replicas[0].kv_sent, 0);
    assert!(d.log.borrow().is_empty());
    assert_eq!(res.kv_pages_held_at_end, 0);
}

#[test]
fn the_decode_replica_nearest_the_prefill_replica_wins_a_tie() {
    // Decode replicas 1 (domain 1) and 2 (domain 0); prefill replica 0 is in domain 0: with both idle,
    // the copy goes to replica 2 over NVLink.
    let (p, d) = (recorder(), recorder());
    let res = run_split(&[req(0, 1000, 3)], &p, &d, &split(1, 2, vec![0, 1, 0]));
    assert_eq!(res.requests[0].replica, Some(2));
    assert_eq!(res.requests[0].kv_transfer_us, Some(1010));
}

#[test]
fn disaggregated_pools_are_packed_onto_domains_by_hand() {
    // 72-GPU domains. Together: p0 d0 p1 d1 p2 d2 ... with TP 16 prefill and TP 8 decode: a domain holds
    // p(16) d(8) p(16) d(8) p(16) = 64, then d(8) = 72; the next domain starts with p3.
    let t = Disaggregation::packed((4, 16), (4, 8), 72, PdPlacement::Together, slow_link());
    // replicas: p0 p1 p2 p3 d0 d1 d2 d3
    assert_eq!(t.domains, vec![0, 0, 0, 1, 0, 0, 0, 1]);
    // Apart: prefill replicas fill domains first (4 x 16 = 64 in domain 0), decode replicas start a new
    // domain (4 x 8 = 32 in domain 1).
    let a = Disaggregation::packed((4, 16), (4, 8), 72, PdPlacement::Apart, slow_link());
    assert_eq!(a.domains, vec![0, 0, 0, 0, 1, 1, 1, 1]);
    // A replica larger than a domain takes whole domains: TP 144 takes domains 0-1, the next starts at 2.
    let big = Disaggregation::packed((2, 144), (1, 8), 72, PdPlacement::Apart, slow_link());
    assert_eq!(big.domains, vec![0, 2, 4]);
}

#[test]
fn disaggregation_is_refused_where_it_has_no_meaning() {
    let (p, d) = (recorder(), recorder());
    let one = [req(0, 10, 2)];
    let err = |cfg: SimConfig| {
        simulate_disaggregated(&one, &[], u64::MAX, &p, &d, &cfg)
            .unwrap_err()
            .to_string()
    };
    assert!(
        err(reserve_cfg()).contains("paged"),
        "{}",
        err(reserve_cfg())
    );
    let no_decode = split(1, 0, vec![0]);
    assert!(err(no_decode).contains("decode"));
    let miscounted = SimConfig {
        replicas: 3,
        ..split(1, 1, vec![0, 0])
    };
    assert!(err(miscounted).contains("replicas"));
    let short_domains = split(1, 1, vec![0]);
    assert!(err(short_domains).contains("domain"));
    // A disaggregated config on the colocated entry point is refused too, not silently colocated.
    assert!(simulate_replicas(&one, &p, &split(1, 1, vec![0, 0])).is_err());
}

fn reserve_cfg() -> SimConfig {
    SimConfig {
        admission: Admission::Reserve,
        ..split(1, 1, vec![0, 0])
    }
}
