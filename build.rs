//! Build script: tells the test suite whether this machine can have a GPU adapter at all, so that GPU tests
//! show as `ignored` (counted in cargo's summary) instead of a silent `ok` when it cannot. The check is a
//! cheap one, no device is opened: a Vulkan driver manifest (ICD) in the loader's standard directories, or
//! one named by `VK_ICD_FILENAMES` / `VK_DRIVER_FILES`. Without one, and without
//! `ULTRASCHED_REQUIRE_GPU=1`, the cfg `no_gpu_adapter` is set; with `ULTRASCHED_REQUIRE_GPU=1` GPU tests
//! always run, and fail when no adapter is found. Where a manifest exists but no adapter opens, the tests'
//! helpers still skip at run time with a message (tests/common/mod.rs). After installing a Vulkan driver on
//! a machine that had none of these directories, `touch build.rs` (or set `ULTRASCHED_REQUIRE_GPU=1`).

use std::path::Path;

const ICD_DIRS: [&str; 4] = [
    "/usr/share/vulkan/icd.d",
    "/usr/local/share/vulkan/icd.d",
    "/etc/vulkan/icd.d",
    "/usr/local/etc/vulkan/icd.d",
];

fn has_manifest(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "json"))
    })
}

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_gpu_adapter)");
    println!("cargo::rerun-if-changed=build.rs");
    for var in [
        "ULTRASCHED_REQUIRE_GPU",
        "VK_ICD_FILENAMES",
        "VK_DRIVER_FILES",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    // Only directories that exist: Cargo reruns a build script on every build for a missing path.
    for dir in ICD_DIRS.iter().filter(|d| Path::new(d).is_dir()) {
        println!("cargo::rerun-if-changed={dir}");
    }
    let required = std::env::var("ULTRASCHED_REQUIRE_GPU").as_deref() == Ok("1");
    let named = ["VK_ICD_FILENAMES", "VK_DRIVER_FILES"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    let found = named || ICD_DIRS.iter().any(|d| has_manifest(Path::new(d)));
    if !required && !found {
        println!("cargo::rustc-cfg=no_gpu_adapter");
    }
}
