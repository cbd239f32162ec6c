//! `ultrasched replay-inference`: replays a request trace on LLM serving replicas and prints latency, SLO
//! attainment and throughput.

use crate::domain::catalog::{gpu_model_index, gpu_model_names, GPU_MODELS};
use crate::domain::llm::ModelSpec;
use crate::domain::traffic::{Admission, CostModel, PdPlacement, ReplicaSetup, Router, Slo};
use crate::engine::serving::sim::{self, Autoscale, Disaggregation, SimConfig, Summary};
use crate::error::{InputError, Location};
use crate::input::requests::{self as trace, TraceFormat};
use crate::perf::inference::Efficiency;
use serde::Serialize;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// Output format of `replay-inference`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayFormat {
    /// A readable summary.
    Table,
    /// One JSON object on stdout.
    Json,
}

/// Arguments of `replay-inference`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The trace: azure:PATH (Azure LLM inference 2023 CSV) or mooncake:PATH (Mooncake JSONL).
    #[arg(long, value_name = "FORMAT:PATH")]
    pub trace: String,
    /// Model: llama-2-70b, llama-3-8b, llama-3-70b, or a .toml/.json file with a model spec.
    #[arg(long)]
    pub model: String,
    /// GPU model id from the catalog (see `ultrasched presets`).
    #[arg(long)]
    pub gpu: String,
    /// GPUs per replica (tensor-parallel degree).
    #[arg(long, default_value_t = 8)]
    pub tp: u32,
    /// Replicas (the minimum when --max-replicas turns on autoscaling).
    #[arg(long, default_value_t = 1)]
    pub replicas: u32,
    /// How requests are spread over replicas.
    #[arg(long, value_enum, default_value_t = Router::RoundRobin)]
    pub router: Router,
    /// Most requests in one replica's batch (vLLM's batch cap; 128 as Vidur runs vLLM).
    #[arg(long, default_value_t = ReplicaSetup::default().max_batch)]
    pub max_batch: u32,
    /// What an iteration costs: the per-operator model, measured operator times (bundled Vidur profile:
    /// llama-2-70b on h100), or the first-order roofline.
    #[arg(long, value_enum, default_value_t = CostModel::Operators)]
    pub cost_model: CostModel,
    /// KV allocation: vLLM's paged KV with preemption and recomputation, or the whole footprint reserved
    /// at admission.
    #[arg(long, value_enum, default_value_t = Admission::Paged)]
    pub admission: Admission,
    /// Most prompt tokens prefilled in one iteration (vLLM's max_num_batched_tokens).
    #[arg(long, default_value_t = ReplicaSetup::default().max_tokens_in_batch)]
    pub max_tokens_in_batch: u32,
    /// Tokens per KV page.
    #[arg(long, default_value_t = ReplicaSetup::default().block_size)]
    pub block_size: u32,
    /// Fraction of KV pages a new request must leave free (vLLM's watermark).
    #[arg(long, default_value_t = SimConfig::default().watermark)]
    pub watermark: f64,
    /// Chunked prefill (Sarathi): tokens per iteration, decodes and prompt chunks together.
    #[arg(long)]
    pub chunk_size: Option<u32>,
    /// Time-to-first-token target, seconds.
    #[arg(long, default_value_t = 2.0)]
    pub ttft_slo_s: f64,
    /// Time-per-output-token target, seconds.
    #[arg(long, default_value_t = 0.1)]
    pub tpot_slo_s: f64,
    /// Roofline only: prefill model-FLOPs utilisation (fraction of BF16 peak).
    #[arg(long, default_value_t = Efficiency::default().prefill_mfu)]
    pub prefill_mfu: f64,
    /// Roofline only: fraction of HBM bandwidth a decode step reaches.
    #[arg(long, default_value_t = Efficiency::default().decode_bw_eff)]
    pub decode_bw_eff: f64,
    /// Do not keep prompt blocks for reuse (the prefix cache).
    #[arg(long)]
    pub no_prefix_cache: bool,
    /// Autoscale between --replicas and this many replicas.
    #[arg(long)]
    pub max_replicas: Option<u32>,
    /// Autoscaling: outstanding requests per replica that start another one.
    #[arg(long, default_value_t = 32)]
    pub target_outstanding: u32,
    /// Autoscaling: seconds from the decision until a new replica serves.
    #[arg(long, default_value_t = 60.0)]
    pub scale_up_delay_s: f64,
    /// Prefill/decode disaggregation: replicas that only run prompts (with --decode-replicas, instead of
    /// --replicas).
    #[arg(long, requires = "decode_replicas", conflicts_with_all = ["replicas", "max_replicas"])]
    pub prefill_replicas: Option<u32>,
    /// Disaggregation: replicas that only produce output tokens, fed the KV of finished prompts.
    #[arg(long, requires = "prefill_replicas")]
    pub decode_replicas: Option<u32>,
    /// Disaggregation: GPUs per prefill replica (default --tp).
    #[arg(long, requires = "prefill_replicas")]
    pub prefill_tp: Option<u32>,
    /// Disaggregation: GPUs per decode replica (default --tp).
    #[arg(long, requires = "prefill_replicas")]
    pub decode_tp: Option<u32>,
    /// Disaggregation: where the pools sit on the GPU's NVLink domains (together: pairs share a domain,
    /// KV over NVLink; apart: separate domains, KV over EFA).
    #[arg(long, value_enum, default_value_t = PdPlacement::Together, requires = "prefill_replicas")]
    pub pd_placement: PdPlacement,
    /// Also write one CSV row per request (times, replicas, KV copy) to FILE.
    #[arg(long, value_name = "FILE")]
    pub requests_csv: Option<PathBuf>,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = ReplayFormat::Table)]
    pub format: ReplayFormat,
}

/// The disaggregated pools of a replay.
#[derive(Debug, Serialize)]
struct Pools {
    prefill_replicas: u32,
    prefill_tp: u32,
    decode_replicas: u32,
    decode_tp: u32,
    placement: PdPlacement,
    /// Decode replicas' KV budget, tokens.
    decode_kv_budget_tokens: u64,
    /// Which model produced the decode replicas' times.
    decode_cost_model: String,
    /// Prefill replicas sharing an NVLink domain with at least one decode replica.
    prefill_replicas_beside_decode: u32,
}

/// What `replay-inference --format json` prints.
#[derive(Debug, Serialize)]
struct ReplayReport<'a> {
    trace: &'a str,
    model: &'a str,
    gpu: &'a str,
    tp: u32,
    replicas: u32,
    router: Router,
    max_batch: u32,
    /// Which model produced the iteration times.
    cost_model: String,
    admission: Admission,
    max_tokens_in_batch: u32,
    block_size: u32,
    chunk_size: Option<u32>,
    kv_budget_tokens: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    disaggregation: Option<Pools>,
    #[serde(flatten)]
    summary: &'a Summary,
    run: RunInfo,
}

#[derive(Debug, Serialize)]
struct RunInfo {
    version: &'static str,
    /// Load + simulate, seconds.
    wall_s: f64,
    /// Simulation alone, seconds.
    sim_wall_s: f64,
}

fn seconds_to_us(flag: &str, s: f64) -> Result<u64, InputError> {
    if !(s.is_finite() && (0.0..=3.2e8).contains(&s)) {
        return Err(InputError::new(
            flag,
            Location::File,
            format!("expected a number of seconds >= 0, found {s}"),
        ));
    }
    Ok((s * 1e6).round() as u64)
}

/// Runs `replay-inference`.
pub fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let trace_arg = trace::parse_trace_arg(&args.trace)?;
    let model: ModelSpec = crate::input::llm::resolve(&args.model)?;
    let gpu = gpu_model_index(&args.gpu)
        .map(|i| GPU_MODELS[i])
        .ok_or_else(|| {
            InputError::new(
                "--gpu",
                Location::File,
                format!("unknown GPU `{}`; known: {}", args.gpu, gpu_model_names()),
            )
        })?;
    let eff = Efficiency {
        prefill_mfu: args.prefill_mfu,
        decode_bw_eff: args.decode_bw_eff,
    };
    eff.validate()?;
    let domain_gpus = crate::perf::cost_model::default_domain_gpus(&gpu);
    let build = |tp: u32, flag: &str| {
        if tp == 0 {
            return Err(InputError::new(flag, Location::File, "must be at least 1"));
        }
        crate::perf::cost_model::build(
            args.cost_model,
            &model,
            &gpu,
            tp,
            tp.div_ceil(domain_gpus),
            eff,
        )
        .map_err(|e| match e.file.as_str() {
            "cost_model" => InputError::new("--cost-model", e.location, e.message),
            _ => e,
        })
    };
    let prefill_tp = args.prefill_tp.unwrap_or(args.tp);
    let decode_tp = args.decode_tp.unwrap_or(args.tp);
    let service = build(prefill_tp, "--prefill-tp")?;
    let slo = Slo {
        ttft_us: seconds_to_us("--ttft-slo-s", args.ttft_slo_s)?,
        tpot_us: seconds_to_us("--tpot-slo-s", args.tpot_slo_s)?,
    };
    let autoscale = match args.max_replicas {
        None => None,
        Some(max) => Some(Autoscale {
            min_replicas: args.replicas,
            max_replicas: max,
            target_outstanding: args.target_outstanding,
            scale_up_delay_us: seconds_to_us("--scale-up-delay-s", args.scale_up_delay_s)?,
        }),
    };
    let pools = match (args.prefill_replicas, args.decode_replicas) {
        (Some(p), Some(d)) => {
            let n = u64::from(p) + u64::from(d);
            if n > sim::MAX_DISAGGREGATED_REPLICAS {
                return Err(InputError::new(
                    "--decode-replicas",
                    Location::File,
                    format!(
                        "prefill + decode replicas must be at most {}, found {n}",
                        sim::MAX_DISAGGREGATED_REPLICAS
                    ),
                )
                .into());
            }
            let transfer =
                crate::perf::kv_transfer::KvTransfer::new(&model, &gpu, prefill_tp, decode_tp);
            let dis = Disaggregation::packed(
                (p, prefill_tp),
                (d, decode_tp),
                domain_gpus,
                args.pd_placement,
                transfer,
            );
            Some((dis, build(decode_tp, "--decode-tp")?))
        }
        _ => None,
    };
    let replicas = pools.as_ref().map_or(args.replicas, |(d, _)| {
        d.prefill_replicas + d.decode_replicas
    });
    let cfg = SimConfig {
        replicas,
        router: args.router,
        max_batch: args.max_batch,
        prefix_caching: !args.no_prefix_cache,
        autoscale,
        admission: args.admission,
        max_tokens_in_batch: args.max_tokens_in_batch,
        block_size: args.block_size,
        watermark: args.watermark,
        chunk_size: args.chunk_size,
        disaggregation: pools.as_ref().map(|(d, _)| d.clone()),
        ..SimConfig::default()
    };
    cfg.validate()?;
    let requests = trace::load(&trace_arg)?;
    let sim_started = Instant::now();
    let result = match &pools {
        None => sim::simulate_replicas(&requests, service.as_ref(), &cfg)?,
        Some((_, decode)) => sim::simulate_disaggregated(
            &requests,
            &[],
            u64::MAX,
            service.as_ref(),
            decode.as_ref(),
            &cfg,
        )?,
    };
    let summary = sim::summarize(&result, slo);
    let run = RunInfo {
        version: env!("CARGO_PKG_VERSION"),
        wall_s: started.elapsed().as_secs_f64(),
        sim_wall_s: sim_started.elapsed().as_secs_f64(),
    };
    let disaggregation = pools.as_ref().map(|(d, decode)| {
        let p = d.prefill_replicas as usize;
        Pools {
            prefill_replicas: d.prefill_replicas,
            prefill_tp,
            decode_replicas: d.decode_replicas,
            decode_tp,
            placement: args.pd_placement,
            decode_kv_budget_tokens: decode.kv_capacity_tokens(),
            decode_cost_model: decode.describe(),
            prefill_replicas_beside_decode: d.domains[..p]
                .iter()
                .filter(|&&x| d.domains[p..].contains(&x))
                .count() as u32,
        }
    });
    let report = ReplayReport {
        trace: &args.trace,
        model: &model.name,
        gpu: gpu.id,
        tp: prefill_tp,
        replicas,
        router: args.router,
        max_batch: args.max_batch,
        cost_model: service.describe(),
        admission: args.admission,
        max_tokens_in_batch: args.max_tokens_in_batch,
        block_size: args.block_size,
        chunk_size: args.chunk_size,
        kv_budget_tokens: service.kv_capacity_tokens(),
        disaggregation,
        summary: &summary,
        run,
    };
    if let Some(path) = &args.requests_csv {
        super::write_atomically(path, &requests_csv(&result))?;
    }
    let text = match args.format {
        ReplayFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
        ReplayFormat::Table => table(&report, trace_arg.format),
    };
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(())
}

/// One row per request of the trace, in trace order: seconds, empty where undefined.
fn requests_csv(res: &sim::SimResult) -> String {
    let s = |us: Option<u64>| us.map_or_else(String::new, |us| format!("{:.6}", us as f64 / 1e6));
    let n = |x: Option<u32>| x.map_or_else(String::new, |x| x.to_string());
    let mut out = String::from(
        "request,arrival_s,prompt_tokens,output_tokens,cached_tokens,replica,prefill_replica,\
         ttft_s,tpot_s,e2e_s,kv_transfer_s,preemptions\n",
    );
    for (i, o) in res.requests.iter().enumerate() {
        out += &format!(
            "{i},{:.6},{},{},{},{},{},{},{},{},{},{}\n",
            o.arrival_us as f64 / 1e6,
            o.prompt_tokens,
            o.output_tokens,
            o.cached_tokens,
            n(o.replica),
            n(o.prefill_replica),
            s(o.ttft_us()),
            o.tpot_us()
                .map_or_else(String::new, |us| format!("{:.6}", us / 1e6)),
            s(o.e2e_us()),
            s(o.kv_transfer_us),
            o.preemptions
        );
    }
    out
}

fn table(r: &ReplayReport, format: TraceFormat) -> String {
    let s = r.summary;
    let row = |name: &str, st: &crate::engine::cluster::metrics::Stats| {
        format!(
            "{name:<8} {:>10.4} {:>10.4} {:>10.4} {:>10.4} {:>10.4}\n",
            st.mean, st.p50, st.p90, st.p99, st.max
        )
    };
    let mut t = format!(
        "trace      {} ({})\nserving    {} on {} x {} (TP), {} replica(s), router {}, max batch {}, KV budget {} tokens\n",
        r.trace,
        match format {
            TraceFormat::Azure => "Azure LLM 2023; Patel et al., Splitwise, ISCA 2024",
            TraceFormat::Mooncake => "Mooncake; Qin et al., FAST 2025",
        },
        r.model,
        r.tp,
        r.gpu,
        r.replicas,
        clap::ValueEnum::to_possible_value(&r.router)
            .map_or_else(String::new, |v| v.get_name().to_string()),
        r.max_batch,
        r.kv_budget_tokens
    );
    t += &format!(
        "scheduler  {}, {} prompt tokens per iteration{}\ncost model {}\n",
        match r.admission {
            Admission::Paged => format!("vLLM, paged KV ({}-token pages)", r.block_size),
            Admission::Reserve => "KV reserved whole at admission".to_string(),
        },
        r.max_tokens_in_batch,
        r.chunk_size
            .map_or_else(String::new, |c| format!(", chunked prefill of {c} tokens")),
        r.cost_model
    );
    if let Some(p) = &r.disaggregation {
        t += &format!(
            "pools      {} prefill x {} GPUs + {} decode x {} GPUs (KV budget {} tokens), placed {} ({} of {} prefill \
             replicas share a domain with decode replicas)\n",
            p.prefill_replicas,
            p.prefill_tp,
            p.decode_replicas,
            p.decode_tp,
            p.decode_kv_budget_tokens,
            p.placement.as_str(),
            p.prefill_replicas_beside_decode,
            p.prefill_replicas
        );
    }
    t += &format!(
        "requests   {} ({} completed, {} rejected, {} preemptions) over {:.1} s\n\n",
        s.requests, s.completed, s.rejected, s.preemptions, s.duration_s
    );
    t += &format!(
        "{:<8} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
        "seconds", "mean", "p50", "p90", "p99", "max"
    );
    t += &row("ttft", &s.ttft_s);
    t += &row("tpot", &s.tpot_s);
    t += &row("e2e", &s.e2e_s);
    if let Some(kv) = &s.kv_transfer_s {
        t += &row("kv copy", kv);
    }
    t += &format!(
        "\nSLO        TTFT <= {} s and TPOT <= {} s: {:.2} % of requests, goodput {:.3} req/s\n",
        s.slo.ttft_s,
        s.slo.tpot_s,
        100.0 * s.slo_attainment,
        s.goodput_rps
    );
    t += &format!(
        "throughput {:.1} output tokens/s; prefix cache hit {:.1} % of prompt tokens\n",
        s.output_tokens_per_s,
        100.0 * s.prefix_hit_rate
    );
    t += &format!(
        "cost       {:.0} GPU-s, {:.2} kWh, peak {} replica(s)\nwall       {:.2} s\n",
        s.gpu_seconds, s.energy_kwh, s.peak_replicas, r.run.wall_s
    );
    t
}
