//! The documentation holds together: every relative link of the README and of the documents it
//! leads to names a file that exists and, with a `#fragment`, a heading of that file; and the
//! README stays a newcomer's read (the reference lives in `docs/`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The Markdown files a reader reaches from the README.
fn documents() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files: Vec<PathBuf> =
        ["README.md", "CONTRIBUTING.md", "RELIABILITY.md", "BENCHMARKS.md", "CHANGELOG.md"]
            .iter()
            .map(|name| root.join(name))
            .collect();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The lines of `text` outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// A heading's anchor as GitHub makes it: lower case, spaces to `-`, punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .iter()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|h| slug(h.trim_start_matches('#')))
        .collect()
}

/// Every `](target)` of `text`'s prose whose target is not a URL.
fn relative_links(text: &str) -> Vec<String> {
    let mut links = Vec::new();
    for line in prose(text) {
        for (at, _) in line.match_indices("](") {
            let rest = &line[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                links.push(target.to_owned());
            }
        }
    }
    links
}

fn broken_links(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("a document");
    let dir = file.parent().expect("a folder");
    let mut broken = Vec::new();
    for link in relative_links(&text) {
        let (path, fragment) = link.split_once('#').map_or((link.as_str(), None), |(p, f)| (p, Some(f)));
        let target = if path.is_empty() { file.to_path_buf() } else { dir.join(path) };
        if !target.exists() {
            broken.push(format!("{}: {link}: no such file", file.display()));
            continue;
        }
        if let Some(fragment) = fragment
            && target.extension().is_some_and(|ext| ext == "md")
        {
            let headings = anchors(&std::fs::read_to_string(&target).expect("a document"));
            if !headings.contains(fragment) {
                broken.push(format!("{}: {link}: no such heading", file.display()));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_of_the_docs_names_a_file_and_a_heading_that_exist() {
    let broken: Vec<String> = documents().iter().flat_map(|file| broken_links(file)).collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn a_link_to_a_missing_file_or_heading_is_reported() {
    let dir = std::env::temp_dir().join(format!("docs-links-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a folder");
    let file = dir.join("a.md");
    std::fs::write(
        &file,
        "# A\n\n## Two words\n\n[ok](a.md#two-words) [self](#a) [gone](b.md) [no heading](a.md#three)\n\n```\n[in code](c.md)\n```\n",
    )
    .expect("a document");
    let broken = broken_links(&file);
    std::fs::remove_dir_all(&dir).expect("cleaned up");
    assert_eq!(broken.len(), 2, "{broken:?}");
    assert!(broken[0].ends_with("b.md: no such file") && broken[1].ends_with("a.md#three: no such heading"));
}

#[test]
fn the_readme_is_a_newcomers_read_of_at_most_300_lines() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("the README");
    let lines = readme.lines().count();
    assert!(lines <= 300, "the README has {lines} lines: move reference to docs/");
}
