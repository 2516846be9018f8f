//! Usage errors: caught before anything runs, exit status 2, a message naming the flag.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_local-runner"))
        .args(args)
        .env_remove("SQS_QUEUE")
        .output()
        .expect("run local-runner");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_missing_queue_flag_is_a_usage_error() {
    let (code, stderr) = run(&[]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--queue"), "{stderr}");
}

#[test]
fn a_batch_size_above_ten_is_a_usage_error() {
    let (code, stderr) = run(&["--queue", "q", "--batch-size", "11"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--batch-size"), "{stderr}");
}

#[test]
fn an_unknown_flag_is_a_usage_error() {
    let (code, stderr) = run(&["--queue", "q", "--frobnicate"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--frobnicate"), "{stderr}");
}

#[test]
fn an_endpoint_without_a_scheme_is_a_usage_error() {
    let (code, stderr) = run(&["--queue", "q", "--endpoint-url", "localhost:4566"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--endpoint-url"), "{stderr}");
}

/// The rows of the flag table of docs/local-runner.md: (flags of the first column, the env column).
fn readme_flag_table() -> Vec<(Vec<String>, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/local-runner.md"))
        .expect("docs/local-runner.md");
    let table = readme
        .split("| flag | env | default | meaning |")
        .nth(1)
        .expect("the flag table of docs/local-runner.md");
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            // `\|` is a bar inside a cell (`<NAME\|URL>`), not a cell's end.
            let line = line.replace("\\|", "/");
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let flags = cells[1]
                .split(['`', ' ', ','])
                .filter(|word| word.starts_with("--"))
                .map(|word| word.split(['<', '[', '=']).next().unwrap_or(word).to_owned())
                .collect();
            (flags, cells[2].trim_matches('`').to_owned())
        })
        .collect()
}

#[test]
fn the_readmes_flag_table_and_help_list_the_same_flags_and_environment_variables() {
    let output = Command::new(env!("CARGO_BIN_EXE_local-runner")).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    let rows = readme_flag_table();
    assert!(rows.len() > 20, "the table was found: {rows:?}");
    let documented: Vec<&String> = rows.iter().flat_map(|(flags, _)| flags).collect();
    for (flags, env) in &rows {
        for flag in flags {
            assert!(
                help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
                "--help lacks {flag}"
            );
        }
        if !env.is_empty() && !flags.is_empty() {
            assert!(help.contains(&format!("[env: {env}=")), "--help does not say {flags:?} reads {env}");
        }
    }
    let options = help.split("Options:").nth(1).expect("an options section");
    for line in options.lines().map(str::trim_start).filter(|l| l.starts_with("--") || l.starts_with("-h")) {
        let flag = line.split([' ', '=']).next().unwrap_or(line);
        if matches!(flag, "--help" | "-h," | "--version" | "-V,") {
            continue;
        }
        assert!(
            documented.iter().any(|d| *d == flag),
            "{flag} is in --help but not in the flag table of docs/local-runner.md"
        );
    }
}

fn template_file(text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("check-{}-{}", std::process::id(), text.len()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("template.yaml");
    std::fs::write(&path, text).expect("write the template");
    path
}

#[test]
fn check_passes_a_template_that_keeps_every_rule() {
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/templates/standard.yaml");
    let output = Command::new(env!("CARGO_BIN_EXE_local-runner"))
        .args(["check", "--template", template])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stdout));
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok (TestFunction)"));
}

#[test]
fn check_fails_a_broken_template_with_one_line_per_broken_rule() {
    let repo = include_str!("../../tests/templates/standard.yaml");
    let broken = repo
        .replace("VisibilityTimeout: 190", "VisibilityTimeout: 60")
        .replace("            FunctionResponseTypes:\n              - ReportBatchItemFailures\n", "");
    let path = template_file(&broken);
    let output = Command::new(env!("CARGO_BIN_EXE_local-runner"))
        .args(["check", "--template", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines.iter().any(|l| l.contains("[visibility-timeout]")), "{stdout}");
    assert!(lines.iter().any(|l| l.contains("[report-batch-item-failures]")), "{stdout}");
}

#[test]
fn lambda_mode_without_the_binary_is_a_usage_error_that_says_how_to_build_it() {
    let (code, stderr) = run(&["--queue", "q", "--lambda", "/nonexistent/bootstrap"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cargo build -p handler --bin bootstrap"), "{stderr}");
}

#[test]
fn a_flag_of_the_in_process_mode_beside_lambda_is_a_usage_error_naming_it() {
    for flag in [&["--no-heartbeat"][..], &["--batch-size", "5"]] {
        let (code, stderr) = run(&[&["--queue", "q", "--lambda", "bootstrap"], flag].concat());
        assert_eq!(code, Some(2), "{stderr}");
        assert!(stderr.contains(flag[0]) && stderr.contains("--lambda"), "{stderr}");
    }
}

#[test]
fn the_installed_command_without_a_handler_says_in_one_line_how_to_get_the_in_process_mode() {
    let output = Command::new(env!("CARGO_BIN_EXE_local-runner"))
        .args(["--queue", "orders"])
        .env_remove("SQS_QUEUE")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("no handler compiled in") && stderr.contains("--lambda PATH"), "{stderr}");
}

#[test]
fn the_installed_command_runs_the_subcommands_that_need_no_handler() {
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/templates/standard.yaml");
    let output = Command::new(env!("CARGO_BIN_EXE_local-runner"))
        .args(["check", "--template", template])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("ok (TestFunction)"), "check ran and passed");
}
