//! The design, as the folders of `src/` show it: each folder is one concern, and dependencies
//! between them point one way. A `use crate::<folder>` that breaks the table below fails here,
//! and so does an import through the crate's root (`crate::RunnerError`): items are imported
//! from the module that defines them (`crate::error::RunnerError`), so no arrow runs back up
//! through `lib.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Which folders each folder may use. Read top-down: nothing lower uses anything higher.
const ALLOWED: &[(&str, &[&str])] = &[
    ("cli", &["consumer", "lambda", "tools", "template", "observe", "aws"]),
    ("lambda", &["consumer", "template", "observe", "aws"]),
    ("tools", &["template", "observe", "aws"]),
    ("consumer", &["observe", "template", "aws"]),
    ("observe", &["aws"]),
    ("template", &[]),
    ("aws", &[]),
];

/// Modules of the crate's root that are files, not folders: any folder may use them.
const ROOT_FILES: &[&str] = &["error"];

/// Folders of `src/` that are not modules: the binaries, which use the crate by its name.
const NOT_MODULES: &[&str] = &["bin"];

/// The first segment of every `crate::` path in the files of `folder` and its subfolders.
fn uses(folder: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(folder).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            found.extend(uses(&path));
        } else {
            found.extend(crate_paths(&std::fs::read_to_string(&path).expect("a source file")));
        }
    }
    found
}

/// The first segment of every `crate::` path in `text`, grouped imports included:
/// `crate::{aws::Sqs, observe}` names `aws` and `observe`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let ident = |rest: &str| -> String {
        rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
    };
    let mut found = BTreeSet::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let Some(group) = rest.strip_prefix('{') else {
            found.insert(ident(rest));
            continue;
        };
        // Each item at the group's own depth starts after the `{` or a `,`.
        let mut depth = 1;
        let mut item_starts = true;
        for (index, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                ',' if depth == 1 => item_starts = true,
                c if c.is_whitespace() => {}
                _ if item_starts && depth == 1 => {
                    found.insert(ident(&group[index..]));
                    item_starts = false;
                }
                _ => {}
            }
        }
    }
    found.remove("");
    found
}

#[test]
fn a_grouped_import_names_every_folder_in_it() {
    let text = "use crate::{aws::{Connection, Sqs}, observe::Stats,\n    template};\nuse crate::lambda::X;";
    let found: Vec<String> = crate_paths(text).into_iter().collect();
    assert_eq!(found, ["aws", "lambda", "observe", "template"]);
}

#[test]
fn every_folder_uses_only_the_folders_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut folders = BTreeSet::new();
    for entry in std::fs::read_dir(&src).expect("src/") {
        let path = entry.expect("an entry").path();
        if !path.is_dir() {
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).expect("a folder name").to_owned();
        if NOT_MODULES.contains(&name.as_str()) {
            continue;
        }
        let may =
            allowed.get(name.as_str()).unwrap_or_else(|| panic!("src/{name}/ is not in the layout table"));
        for used in uses(&path) {
            let is_folder = allowed.contains_key(used.as_str());
            assert!(
                is_folder || ROOT_FILES.contains(&used.as_str()),
                "src/{name}/ uses crate::{used}: import from the module that defines it, not through lib.rs"
            );
            assert!(
                !is_folder || used == name || may.contains(&used.as_str()),
                "src/{name}/ uses crate::{used}"
            );
        }
        folders.insert(name);
    }
    assert_eq!(folders.len(), ALLOWED.len(), "every folder of the table exists");
}

#[test]
fn the_layout_has_no_cycles() {
    // Each folder may only use folders listed after it: the table is a topological order.
    for (position, (folder, may)) in ALLOWED.iter().enumerate() {
        for used in *may {
            let at = ALLOWED.iter().position(|(name, _)| name == used).expect("a known folder");
            assert!(at > position, "{folder} uses {used}, which comes before it");
        }
    }
}
