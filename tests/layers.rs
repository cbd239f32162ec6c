//! The house rules, as a test (like rust-analyzer's tidy tests): it reads src/ and fails naming the file,
//! the line and the `use` that breaks a rule.
//!
//! 1. Floors: a module imports only its own floor and the floors below ([`LAYERS`]).
//! 2. No import circle anywhere in src/: the graph of `crate::`/`super::` references between files is
//!    acyclic. A parent naming its own children (`pub mod x; pub use x::Y;`) is the module tree, not an
//!    import, and does not count.
//! 3. The core does no I/O and never names wgpu: below the input edge no file reads or writes, no
//!    printing; outside `kernel/` no `wgpu::`.
//! 4. File formats stop at the input edge: below it no struct derives `Deserialize` (name enums such as a
//!    policy may, so the file, the command line and the report spell them one way).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The floors, lowest first. A module's floor is that of its first path segment.
const LAYERS: &[(&str, u32, &str)] = &[
    (
        "error",
        0,
        "located input errors, a value type every validating floor returns",
    ),
    (
        "domain",
        0,
        "catalog, topology, typed workload and traffic: no file formats, no I/O",
    ),
    (
        "perf",
        1,
        "performance models: pure functions of the domain",
    ),
    (
        "kernel",
        2,
        "placement-cost and node-score kernels: CPU twins and WGSL backends",
    ),
    (
        "engine",
        3,
        "cluster engine, request-level serving, FGD study: deterministic, no I/O",
    ),
    (
        "input",
        4,
        "the input edge: file formats, parsers, trace importers",
    ),
    (
        "output",
        5,
        "the output edge: reports, pages, timelines, comparisons",
    ),
    (
        "check",
        5,
        "the independent checker of a run's files: it sees only the domain and errors (see below)",
    ),
    (
        "cli",
        6,
        "commands: the only place that prints and writes files",
    ),
];

/// The checker must judge the engine without sharing its code: these are all it may import.
const CHECK_MAY_IMPORT: &[&str] = &["check", "domain", "error"];

/// Floors below this one must not do I/O (input and above may).
const FIRST_IO_LAYER: u32 = 4;

fn layer_of(module: &[String]) -> Option<u32> {
    let first = module.first()?;
    LAYERS
        .iter()
        .find(|(name, _, _)| name == first)
        .map(|&(_, l, _)| l)
}

struct SrcFile {
    /// Module path below the crate root (`["engine", "cluster"]` for src/engine/cluster/mod.rs).
    module: Vec<String>,
    /// Path relative to the crate, for messages.
    rel: String,
    text: String,
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn collect(dir: &Path, out: &mut Vec<SrcFile>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p.strip_prefix(src_dir()).unwrap();
            let mut module: Vec<String> = rel
                .with_extension("")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if module
                .last()
                .is_some_and(|m| m == "mod" || m == "lib" || m == "main")
            {
                module.pop();
            }
            out.push(SrcFile {
                module,
                rel: format!("src/{}", rel.display()),
                text: std::fs::read_to_string(&p).unwrap(),
            });
        }
    }
}

/// Code of a line without its `//` comment (string literals containing `//` are rare enough here; a
/// doc line is skipped whole).
fn code(line: &str) -> &str {
    let t = line.trim_start();
    if t.starts_with("//") {
        return "";
    }
    match line.find("//") {
        Some(i) if !line[..i].contains('"') => &line[..i],
        _ => line,
    }
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into full paths.
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let p = tree.split(" as ").next().unwrap().trim();
        return vec![p.trim_end_matches("::self").to_string()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, ch) in inner.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| {
            expand(p).into_iter().map(move |s| {
                if s == "self" {
                    prefix.to_string()
                } else {
                    format!("{prefix}::{s}")
                }
            })
        })
        .collect()
}

/// Every `crate::`/`super::`/`self::` path a file names, with its 1-based line and the statement.
fn references(text: &str) -> Vec<(usize, String, String)> {
    let mut out = Vec::new();
    // A module's own unit tests may build fixtures with any floor: stop at `#[cfg(test)]`.
    let text = text.split("\n#[cfg(test)]").next().unwrap_or("");
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let c = code(lines[i]);
        let t = c.trim_start();
        let t = t
            .strip_prefix("pub(crate) ")
            .or(t.strip_prefix("pub "))
            .unwrap_or(t);
        if let Some(rest) = t.strip_prefix("use ") {
            // A use statement may span lines: gather it up to the `;`.
            let mut stmt = rest.to_string();
            let first = i;
            while !stmt.contains(';') && i + 1 < lines.len() {
                i += 1;
                stmt.push_str(code(lines[i]));
            }
            let stmt = stmt.split(';').next().unwrap().to_string();
            for p in expand(&stmt) {
                if p.starts_with("crate::") || p.starts_with("super::") || p.starts_with("self::") {
                    out.push((first + 1, p, format!("use {};", stmt.trim())));
                }
            }
        } else {
            // Paths written inline in code.
            for start in ["crate::", "super::"] {
                let mut from = 0;
                while let Some(k) = c[from..].find(start) {
                    let k = from + k;
                    let before = c[..k].chars().next_back();
                    from = k + start.len();
                    if before.is_some_and(|b| b.is_alphanumeric() || b == '_' || b == ':') {
                        continue;
                    }
                    let path: String = c[k..]
                        .chars()
                        .take_while(|ch| ch.is_alphanumeric() || *ch == '_' || *ch == ':')
                        .collect();
                    out.push((
                        i + 1,
                        path.trim_end_matches(':').to_string(),
                        c.trim().to_string(),
                    ));
                }
            }
        }
        i += 1;
    }
    out
}

/// The deepest file module a path names, given where it is written.
fn resolve(
    path: &str,
    from: &SrcFile,
    is_dir_module: bool,
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let mut segs: Vec<&str> = path.split("::").collect();
    let mut base: Vec<String> = match segs[0] {
        "crate" => Vec::new(),
        "self" => {
            let mut m = from.module.clone();
            if !is_dir_module {
                m.pop();
                m.extend(from.module.last().cloned());
            }
            m
        }
        "super" => {
            let mut m = from.module.clone();
            // `super` of src/a/b.rs is `a`; of src/a/b/mod.rs it is `a` too (the module is `a::b`).
            m.pop();
            let mut k = 1;
            while segs.get(k) == Some(&"super") {
                m.pop();
                k += 1;
            }
            segs.drain(..k - 1);
            m
        }
        _ => return None,
    };
    for s in &segs[1..] {
        let mut next = base.clone();
        next.push(s.to_string());
        if modules.contains(&next) {
            base = next;
        } else {
            break;
        }
    }
    Some(base)
}

/// Module path -> the module paths it imports.
type Graph = BTreeMap<Vec<String>, BTreeSet<Vec<String>>>;

fn graph(files: &[SrcFile]) -> (Graph, Vec<String>) {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut edges: Graph = BTreeMap::new();
    let mut violations = Vec::new();
    let mut seen = BTreeSet::new();
    for f in files {
        if f.module.is_empty() {
            continue; // lib.rs / main.rs: the root declares the floors.
        }
        let is_dir = f.rel.ends_with("mod.rs");
        let Some(own) = layer_of(&f.module) else {
            violations.push(format!(
                "{}: module `{}` is on no floor; add its top folder to LAYERS in tests/layers.rs",
                f.rel,
                f.module.join("::")
            ));
            continue;
        };
        for (line, path, stmt) in references(&f.text) {
            let Some(target) = resolve(&path, f, is_dir, &modules) else {
                continue;
            };
            if target.is_empty() || target == f.module {
                continue;
            }
            // A parent naming its children is the module tree.
            if target.starts_with(&f.module) {
                continue;
            }
            if let Some(l) = layer_of(&target) {
                let key = format!("{}:{line}:{}", f.rel, target.join("::"));
                if l > own && seen.insert(key) {
                    violations.push(format!(
                        "{}:{line}: `{stmt}` imports `{}` (floor {l}) from floor {own} ({}); move the item down \
                         or the caller up",
                        f.rel,
                        target.join("::"),
                        f.module[0]
                    ));
                }
            }
            edges.entry(f.module.clone()).or_default().insert(target);
        }
    }
    (edges, violations)
}

fn find_cycle(edges: &Graph) -> Option<Vec<Vec<String>>> {
    // Iterative DFS with colours; returns the first cycle found, in order.
    let mut colour: BTreeMap<&Vec<String>, u8> = BTreeMap::new();
    for start in edges.keys() {
        if colour.get(start).copied().unwrap_or(0) != 0 {
            continue;
        }
        let mut stack: Vec<(&Vec<String>, Vec<&Vec<String>>)> =
            vec![(start, edges[start].iter().collect())];
        colour.insert(start, 1);
        while let Some((node, rest)) = stack.last_mut() {
            let node = *node;
            if let Some(next) = rest.pop() {
                match colour.get(next).copied().unwrap_or(0) {
                    0 => {
                        colour.insert(next, 1);
                        let succ = edges
                            .get(next)
                            .map(|s| s.iter().collect())
                            .unwrap_or_default();
                        stack.push((next, succ));
                    }
                    1 => {
                        let pos = stack.iter().position(|(n, _)| *n == next).unwrap();
                        let mut cyc: Vec<Vec<String>> =
                            stack[pos..].iter().map(|(n, _)| (*n).clone()).collect();
                        cyc.push(next.clone());
                        return Some(cyc);
                    }
                    _ => {}
                }
            } else {
                colour.insert(node, 2);
                stack.pop();
            }
        }
    }
    None
}

fn files() -> Vec<SrcFile> {
    let mut files = Vec::new();
    collect(&src_dir(), &mut files);
    assert!(files.len() > 20, "expected the crate's sources under src/");
    files
}

#[test]
fn every_import_points_down() {
    let (_, violations) = graph(&files());
    assert!(
        violations.is_empty(),
        "imports that break the floors (lowest first: {}):\n{}",
        LAYERS
            .iter()
            .map(|(n, l, _)| format!("{n}={l}"))
            .collect::<Vec<_>>()
            .join(", "),
        violations.join("\n")
    );
}

#[test]
fn the_schedule_checker_shares_no_code_with_the_engine() {
    let files = files();
    let (edges, _) = graph(&files);
    let mut bad = Vec::new();
    for (from, tos) in &edges {
        if from.first().map(String::as_str) != Some("check") {
            continue;
        }
        for to in tos {
            let top = to.first().map(String::as_str).unwrap_or("");
            if !CHECK_MAY_IMPORT.contains(&top) {
                bad.push(format!("{} -> {}", from.join("::"), to.join("::")));
            }
        }
    }
    assert!(
        edges
            .keys()
            .any(|m| m.first().map(String::as_str) == Some("check")),
        "no check module found: the test proves nothing"
    );
    assert!(
        bad.is_empty(),
        "the checker may import only {CHECK_MAY_IMPORT:?}:\n{}",
        bad.join("\n")
    );
}

#[test]
fn no_import_circle() {
    let files = files();
    let (edges, _) = graph(&files);
    if let Some(cyc) = find_cycle(&edges) {
        let name = |m: &Vec<String>| {
            files
                .iter()
                .find(|f| &f.module == m)
                .map_or(m.join("::"), |f| f.rel.clone())
        };
        // Name the import behind each step of the circle.
        let steps: Vec<String> = cyc
            .windows(2)
            .map(|w| {
                let f = files.iter().find(|f| f.module == w[0]).unwrap();
                let modules: BTreeSet<Vec<String>> =
                    files.iter().map(|f| f.module.clone()).collect();
                let is_dir = f.rel.ends_with("mod.rs");
                let (line, _, stmt) = references(&f.text)
                    .into_iter()
                    .find(|(_, p, _)| resolve(p, f, is_dir, &modules).as_ref() == Some(&w[1]))
                    .unwrap();
                format!("  {}:{line}: {stmt}  -> {}", f.rel, name(&w[1]))
            })
            .collect();
        panic!("import circle:\n{}", steps.join("\n"));
    }
}

#[test]
fn the_core_does_no_io_and_never_names_wgpu() {
    const IO: &[&str] = &[
        "std::fs",
        "fs::read",
        "fs::write",
        "File::",
        "std::io::stdout",
        "std::io::stderr",
        "println!",
        "eprintln!",
        "print!(",
        "eprint!(",
        "std::env::var",
    ];
    let mut bad = Vec::new();
    for f in files() {
        let Some(l) = layer_of(&f.module) else {
            continue;
        };
        let in_kernel = f.module.first().is_some_and(|m| m == "kernel");
        let mut in_tests = false;
        for (i, line) in f.text.lines().enumerate() {
            if line.starts_with("#[cfg(test)]") {
                in_tests = true; // test modules may read fixtures
            }
            let c = code(line);
            if l < FIRST_IO_LAYER && !in_tests {
                // The kernel layer reads the wgpu adapter environment (WGPU_*), which is how wgpu is configured.
                for pat in IO {
                    if c.contains(pat) && !(in_kernel && *pat == "std::env::var") {
                        bad.push(format!(
                            "{}:{}: `{}` does I/O below the input edge",
                            f.rel,
                            i + 1,
                            c.trim()
                        ));
                    }
                }
            }
            if !in_kernel && c.contains("wgpu::") {
                bad.push(format!(
                    "{}:{}: `{}` names wgpu outside kernel/",
                    f.rel,
                    i + 1,
                    c.trim()
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn file_format_structs_stop_at_the_input_edge() {
    let mut bad = Vec::new();
    for f in files() {
        let Some(l) = layer_of(&f.module) else {
            continue;
        };
        if l >= FIRST_IO_LAYER {
            continue;
        }
        let lines: Vec<&str> = f.text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let c = code(line);
            if c.contains("#[derive(") && c.contains("Deserialize") || c.trim() == "Deserialize," {
                // The item this derive is on: the next line starting with `pub struct`/`struct`/`enum`.
                let item = lines[i..]
                    .iter()
                    .find(|l| {
                        let t = l.trim_start().trim_start_matches("pub ");
                        t.starts_with("struct ") || t.starts_with("enum ")
                    })
                    .map(|l| l.trim())
                    .unwrap_or("");
                if item.trim_start_matches("pub ").starts_with("struct ") {
                    bad.push(format!(
                        "{}:{}: `{item}` derives Deserialize below the input edge; put its file form in input/",
                        f.rel,
                        i + 1
                    ));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The rule checker itself, on small cases: a rule that cannot fail checks nothing.
#[test]
fn the_checker_sees_violations_and_circles() {
    let file = |m: &[&str], rel: &str, text: &str| SrcFile {
        module: m.iter().map(|s| s.to_string()).collect(),
        rel: rel.into(),
        text: text.into(),
    };
    let files = vec![
        file(
            &["domain"],
            "src/domain/mod.rs",
            "pub mod a;\npub use a::X;\n",
        ),
        file(
            &["domain", "a"],
            "src/domain/a.rs",
            "use crate::engine::{b::Y, b::Z};\n",
        ),
        file(&["engine"], "src/engine/mod.rs", "pub mod b;\n"),
        file(
            &["engine", "b"],
            "src/engine/b.rs",
            "use super::super::domain::a;\nfn f() { crate::domain::a::g() }\n",
        ),
        file(
            &["cli"],
            "src/cli/mod.rs",
            "use crate::{domain::a::X, engine::b as bee};\n",
        ),
    ];
    let (edges, violations) = graph(&files);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].starts_with("src/domain/a.rs:1:"),
        "{}",
        violations[0]
    );
    let cyc = find_cycle(&edges).expect("domain::a <-> engine::b is a circle");
    assert_eq!(cyc.first(), cyc.last());
    assert_eq!(cyc.len(), 3, "{cyc:?}");
    // The parent re-exporting its child is not an edge.
    assert!(!edges
        .get(&vec!["domain".to_string()])
        .is_some_and(|s| s.contains(&vec!["domain".to_string(), "a".to_string()])));
    assert_eq!(
        expand("crate::{domain::a::X, engine::{b as bee, self}}"),
        vec!["crate::domain::a::X", "crate::engine::b", "crate::engine"]
    );
}
