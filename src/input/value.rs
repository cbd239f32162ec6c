//! Values of the input files that are checked alone, as they are read (so the parser's error carries its
//! line and column): bounded numbers, counts, names from the catalog, a lognormal. Shared by every table of
//! a workload file ([`super::spec`], [`super::traffic`]).

use crate::domain::catalog::{self, Preset};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use std::fmt;

/// Largest GPU count anywhere (a job, a pool, the whole cluster): 2^24.
pub const MAX_GPUS: u64 = 1 << 24;
/// Largest time value, seconds (10 years).
pub const MAX_SECONDS: f64 = 10.0 * 365.0 * 86400.0;
/// Largest number of jobs a workload may hold (explicit plus generated).
pub const MAX_JOBS: u64 = 10_000_000;

/// Lognormal distribution by its median and log-space sigma, optionally clamped.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogNormalSpec {
    /// Median, seconds (> 0).
    pub median_s: Seconds,
    /// Sigma of ln(duration), 0..=5.
    #[serde(default)]
    pub sigma: Sigma,
    /// Lower clamp, seconds.
    pub min_s: Option<Seconds>,
    /// Upper clamp, seconds.
    pub max_s: Option<Seconds>,
}

// ---- Values checked as they are read -------------------------------------------------------------------

/// Reads any number (integer or float) as f64, rejecting NaN and infinities.
fn number<'de, D: Deserializer<'de>>(d: D, what: &'static str) -> Result<f64, D::Error> {
    struct V(&'static str);
    impl<'de> Visitor<'de> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(E::custom(format!(
                    "{v} is not allowed: expected {}",
                    self.0
                )))
            }
        }
    }
    d.deserialize_any(V(what))
}

/// Reads a whole number in `lo..=hi`.
fn whole<'de, D: Deserializer<'de>>(d: D, lo: u64, hi: u64) -> Result<u64, D::Error> {
    struct V(u64, u64);
    impl<'de> Visitor<'de> for V {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "a whole number from {} to {}", self.0, self.1)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            if v < 0 {
                return Err(E::custom(format!(
                    "{v} is out of range: expected a whole number from {} to {}",
                    self.0, self.1
                )));
            }
            self.visit_u64(v as u64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            if v < self.0 || v > self.1 {
                return Err(E::custom(format!(
                    "{v} is out of range: expected a whole number from {} to {}",
                    self.0, self.1
                )));
            }
            Ok(v)
        }
    }
    d.deserialize_any(V(lo, hi))
}

macro_rules! checked_number {
    ($(#[$doc:meta])* $name:ident, $what:expr, |$v:ident| $ok:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
        pub struct $name(pub f64);
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let $v = number(d, $what)?;
                if $ok {
                    Ok($name($v))
                } else {
                    Err(de::Error::custom(format!("{} is out of range: expected {}", $v, $what)))
                }
            }
        }
    };
}

checked_number!(
    /// Seconds: finite, 0 to 10 years.
    Seconds, "seconds from 0 to 315360000 (10 years)", |v| (0.0..=MAX_SECONDS).contains(&v));
checked_number!(
    /// A Poisson rate per hour: finite, > 0, at most 1e9.
    Rate, "a rate per hour above 0 and at most 1e9", |v| v > 0.0 && v <= 1e9);
checked_number!(
    /// Failures per GPU-hour: 0 to 1.
    FailureRate, "failures per GPU-hour from 0 to 1", |v| (0.0..=1.0).contains(&v));
checked_number!(
    /// A mix weight: finite, >= 0.
    Weight, "a weight from 0 to 1e12", |v| (0.0..=1e12).contains(&v));
checked_number!(
    /// Lognormal sigma: 0..=5.
    Sigma, "a sigma from 0 to 5", |v| (0.0..=5.0).contains(&v));

checked_number!(
    /// A positive number up to 1e15.
    Positive, "a number above 0 and at most 1e15", |v| v > 0.0 && v <= 1e15);
checked_number!(
    /// A fraction above 0 and at most 1.
    Fraction, "a fraction above 0 and at most 1", |v| v > 0.0 && v <= 1.0);
checked_number!(
    /// Money per GPU-hour: 0 to 1e6.
    Money, "USD per GPU-hour from 0 to 1000000", |v| (0.0..=1e6).contains(&v));
checked_number!(
    /// Power per GPU: 0 to 100 kW.
    Watts, "watts from 0 to 100000", |v| (0.0..=1e5).contains(&v));
checked_number!(
    /// A Weibull shape: 0.1 to 10.
    WeibullShape, "a Weibull shape from 0.1 to 10", |v| (0.1..=10.0).contains(&v));
checked_number!(
    /// A site's power cap: above 0, at most 100,000 MW.
    Megawatts, "megawatts above 0 and at most 100000", |v| v > 0.0 && v <= 1e5);
checked_number!(
    /// Power usage effectiveness: 1 to 3.
    Pue, "a PUE from 1 to 3", |v| (1.0..=3.0).contains(&v));
checked_number!(
    /// A rate per second (inference traffic): finite, > 0, at most 1e6.
    RatePerSecond, "a rate per second above 0 and at most 1000000", |v| v > 0.0 && v <= 1e6);
checked_number!(
    /// A size such as a token or turn count: finite, 1 to 10^7.
    Size, "a number from 1 to 10000000", |v| (1.0..=1e7).contains(&v));

impl Default for Sigma {
    fn default() -> Self {
        Sigma(0.0)
    }
}

/// GPUs: a whole number from 1 to 2^24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gpus(pub u32);
impl<'de> Deserialize<'de> for Gpus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole(d, 1, MAX_GPUS).map(|v| Gpus(v as u32))
    }
}

/// Tokens: a whole number from 1 to 2^24.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tokens(pub u32);
impl<'de> Deserialize<'de> for Tokens {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole(d, 1, MAX_GPUS).map(|v| Tokens(v as u32))
    }
}

/// A count: a whole number from 1 to 10^7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub u32);
impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        whole(d, 1, MAX_JOBS).map(|v| Count(v as u32))
    }
}

/// A catalog preset, by name.
#[derive(Debug, Clone, Copy)]
pub struct PresetName(pub &'static Preset);
impl<'de> Deserialize<'de> for PresetName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        catalog::preset(&s).map(PresetName).ok_or_else(|| {
            de::Error::custom(format!(
                "unknown preset `{s}`; allowed: {}",
                catalog::preset_names()
            ))
        })
    }
}

/// A catalog GPU model, by id.
#[derive(Debug, Clone, Copy)]
pub struct GpuModelName(pub usize);
impl<'de> Deserialize<'de> for GpuModelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        catalog::gpu_model_index(&s)
            .map(GpuModelName)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "unknown gpu_model `{s}`; allowed: {}",
                    catalog::gpu_model_names()
                ))
            })
    }
}

/// The first id that repeats an earlier one: `(earlier, later)` positions, `later` smallest. Hashes ids to
/// 64 bits (FxHash) so a million ids cost a million integer inserts, not a million string copies; a
/// position whose hash was seen is compared by string, and a (never yet seen) 64-bit collision of two
/// different ids falls back to an exact check.
pub fn first_duplicate<'a>(ids: impl Iterator<Item = &'a str> + Clone) -> Option<(usize, usize)> {
    use std::hash::{BuildHasher, BuildHasherDefault};
    let hasher = BuildHasherDefault::<rustc_hash::FxHasher>::default();
    let (lower, _) = ids.clone().size_hint();
    let mut seen: rustc_hash::FxHashMap<u64, usize> = rustc_hash::FxHashMap::default();
    seen.reserve(lower);
    let mut collided = false;
    let all: Vec<&str> = ids.collect();
    for (i, id) in all.iter().enumerate() {
        match seen.entry(hasher.hash_one(id)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                if all[*o.get()] == *id {
                    return Some((*o.get(), i));
                }
                collided = true;
            }
        }
    }
    if collided {
        let mut exact: rustc_hash::FxHashMap<&str, usize> = rustc_hash::FxHashMap::default();
        for (i, id) in all.iter().enumerate() {
            if let Some(&e) = exact.get(id) {
                return Some((e, i));
            }
            exact.insert(id, i);
        }
    }
    None
}
