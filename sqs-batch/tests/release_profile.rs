//! The batch core catches a handler's panic and fails that message alone: only in a binary that
//! unwinds. cargo-lambda (which `sam build` runs) builds with `panic = "abort"` unless the
//! workspace's release profile says otherwise, so the setting must stay. (scripts/sam-local.sh
//! proves it on the artifact `sam build` makes: a panicking message fails alone.)

#[test]
fn the_release_profile_unwinds_on_panic() {
    let manifest = include_str!("../../Cargo.toml");
    let release = manifest.split("[profile.release]").nth(1).expect("the workspace has a [profile.release]");
    let section = release.split("\n[").next().unwrap_or_default();
    let panic = section
        .lines()
        .filter_map(|line| line.split_once('='))
        .find(|(key, _)| key.trim() == "panic")
        .map(|(_, value)| value.trim().trim_matches('"'));
    assert_eq!(panic, Some("unwind"), "[profile.release] must set panic = \"unwind\"");
}
