//! The design as `src/` shows it: the crate's modules depend on each other one way (no circle,
//! so each can be read knowing only those below it), and an item is imported from the module
//! that defines it (`crate::error::Error`), never through the crate's root (`crate::Error`),
//! which is the public face, not a way around the layering. Test code may use anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The module a file belongs to: its top-level module, and `runtime`'s own modules apart (the
/// runtime's facade re-exports from above; its modules sit at every height).
fn unit_of(relative: &Path) -> String {
    let parts: Vec<String> =
        relative.with_extension("").iter().map(|p| p.to_string_lossy().into_owned()).collect();
    match parts.as_slice() {
        [runtime, module, ..] if runtime == "runtime" && module != "mod" => format!("runtime::{module}"),
        [first, ..] => first.clone(),
        [] => String::new(),
    }
}

/// The code of a file without its tests: a file of tests alone is empty, and the rest is cut at
/// its `#[cfg(test)] mod`.
fn without_tests(path: &Path, text: &str) -> String {
    let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if name == "tests" || name.ends_with("_tests") {
        return String::new();
    }
    let mut code = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && lines.peek().is_some_and(|next| next.trim_start().starts_with("mod "))
        {
            break;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// Every `crate::` path of `code`, groups spread (`crate::{a::B, c}` is `a::B` and `c`), comments
/// left out.
fn crate_paths(code: &str) -> Vec<String> {
    let code: String = code
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(|line| format!("{line}\n"))
        .collect();
    let mut paths = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        spread(&code[at + "crate::".len()..], "", &mut paths);
    }
    paths
}

/// The paths `text` (what follows `prefix::`) names, one or a group.
fn spread(text: &str, prefix: &str, paths: &mut Vec<String>) {
    if let Some(group) = text.strip_prefix('{') {
        return spread_group(group, prefix, paths);
    }
    let segment: String = text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if segment.is_empty() {
        return;
    }
    let joined = if prefix.is_empty() { segment.clone() } else { format!("{prefix}::{segment}") };
    match text[segment.len()..].strip_prefix("::") {
        Some(more) => spread(more, &joined, paths),
        None => paths.push(joined),
    }
}

/// The paths of a group's items, `group` being what follows its `{`.
fn spread_group(group: &str, prefix: &str, paths: &mut Vec<String>) {
    let mut depth = 0;
    let mut start = 0;
    for (index, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                spread(group[start..index].trim(), prefix, paths);
                return;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                spread(group[start..index].trim(), prefix, paths);
                start = index + 1;
            }
            _ => {}
        }
    }
}

/// The module a path leads into: its first segment, and `runtime`'s own modules apart.
fn target_of(path: &str) -> String {
    let mut segments = path.split("::");
    let first = segments.next().unwrap_or_default();
    match (first, segments.next()) {
        ("runtime", Some(module))
            if src().join("runtime").join(format!("{module}.rs")).is_file()
                || src().join("runtime").join(module).is_dir() =>
        {
            format!("runtime::{module}")
        }
        _ => first.to_owned(),
    }
}

/// The modules of the crate: each file and folder of `src/` but `lib.rs`.
fn modules() -> BTreeSet<String> {
    std::fs::read_dir(src())
        .expect("src/")
        .filter_map(|entry| {
            let path = entry.expect("an entry").path();
            let name = path.file_stem()?.to_string_lossy().into_owned();
            (name != "lib").then_some(name)
        })
        .collect()
}

/// Each file of `src/` but `lib.rs`, as (path relative to `src/`, text).
fn files(folder: &Path, found: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(folder).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            let relative = path.strip_prefix(src()).expect("under src/").to_path_buf();
            if relative != Path::new("lib.rs") {
                found.push((relative, std::fs::read_to_string(&path).expect("a source file")));
            }
        }
    }
}

/// Which module uses which (test code left out), each arrow with a place that draws it.
fn arrows() -> BTreeMap<(String, String), String> {
    let mut sources = Vec::new();
    files(&src(), &mut sources);
    let mut arrows = BTreeMap::new();
    for (relative, text) in sources {
        let from = unit_of(&relative);
        for path in crate_paths(&without_tests(&relative, &text)) {
            let to = target_of(&path);
            if to != from && !to.is_empty() {
                arrows
                    .entry((from.clone(), to))
                    .or_insert_with(|| format!("{} (crate::{path})", relative.display()));
            }
        }
    }
    arrows
}

/// A circle of `arrows`, if there is one, as the modules along it.
fn circle(arrows: &BTreeMap<(String, String), String>) -> Option<Vec<String>> {
    let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, to) in arrows.keys() {
        next.entry(from.as_str()).or_default().push(to.as_str());
    }
    fn visit<'a>(
        node: &'a str,
        next: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut found: Vec<String> = path[at..].iter().map(|n| (*n).to_owned()).collect();
            found.push(node.to_owned());
            return Some(found);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for to in next.get(node).into_iter().flatten() {
            if let Some(found) = visit(to, next, path, done) {
                return Some(found);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    let starts: Vec<&str> = next.keys().copied().collect();
    starts.into_iter().find_map(|start| visit(start, &next, &mut Vec::new(), &mut done))
}

#[test]
fn the_modules_depend_on_each_other_one_way() {
    let arrows = arrows();
    assert!(arrows.len() > 20, "the arrows were found: {arrows:?}");
    if let Some(found) = circle(&arrows) {
        let places: Vec<String> = found
            .windows(2)
            .map(|w| format!("  {} -> {}: {}", w[0], w[1], arrows[&(w[0].clone(), w[1].clone())]))
            .collect();
        panic!("a circle: {}\n{}", found.join(" -> "), places.join("\n"));
    }
}

#[test]
fn every_item_is_imported_from_its_module_not_through_the_crate_root() {
    let modules = modules();
    let mut sources = Vec::new();
    files(&src(), &mut sources);
    let mut through_root = Vec::new();
    for (relative, text) in sources {
        for path in crate_paths(&text) {
            let first = path.split("::").next().unwrap_or_default();
            if !modules.contains(first) {
                through_root.push(format!("{}: crate::{path}", relative.display()));
            }
        }
    }
    assert!(through_root.is_empty(), "imported through the crate's root:\n{}", through_root.join("\n"));
}

#[test]
fn a_circle_and_a_root_import_are_found_where_they_are() {
    let code =
        "use crate::{a::B, c::{D, e::F}};\nfn f() -> crate::Error { crate::g::h() }\n// crate::comment\n";
    assert_eq!(crate_paths(code), ["a::B", "c::D", "c::e::F", "Error", "g::h"]);
    let arrow = |from: &str, to: &str| ((from.to_owned(), to.to_owned()), String::new());
    let one_way: BTreeMap<_, _> = [arrow("a", "b"), arrow("b", "c"), arrow("a", "c")].into_iter().collect();
    assert_eq!(circle(&one_way), None);
    let round: BTreeMap<_, _> = [arrow("a", "b"), arrow("b", "c"), arrow("c", "a")].into_iter().collect();
    assert_eq!(circle(&round), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    assert_eq!(unit_of(Path::new("runtime/telemetry/mod.rs")), "runtime::telemetry");
    assert_eq!(unit_of(Path::new("batch/lane.rs")), "batch");
    assert!(
        without_tests(Path::new("x.rs"), "a\n#[cfg(test)]\nmod tests {\nuse crate::Z;\n}\n").trim() == "a"
    );
}
