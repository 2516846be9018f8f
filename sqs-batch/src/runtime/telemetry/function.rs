//! What every line of a Lambda function carries about the function, as Powertools' logger adds
//! it (`cold_start`, `function_name`, `function_memory_size`, `function_version`, and
//! `sampling_rate` when sampling is on), and Powertools' debug sampling: a share of the
//! invocations logged at `debug` whatever the level, so that a quiet function still shows, now
//! and then, everything it does.
//!
//! Nothing here is set unless [`crate::lambda::run`] sets it: `local-runner`'s own lines carry
//! none of it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// Powertools' log level variable: `TRACE`, `DEBUG`, `INFO`, `WARN` (or `WARNING`), `ERROR`,
/// `CRITICAL`, `SILENT`.
pub const LOG_LEVEL_VAR: &str = "POWERTOOLS_LOG_LEVEL";
/// Powertools' debug sampling rate: the share of invocations, from 0 to 1, logged at `debug`.
pub const SAMPLE_RATE_VAR: &str = "POWERTOOLS_LOGGER_SAMPLE_RATE";

/// The function, as Lambda's environment names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    pub name: String,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB.
    pub memory_size: Option<u32>,
    /// `AWS_LAMBDA_FUNCTION_VERSION` (`$LATEST`, or a published version's number).
    pub version: String,
    /// [`SAMPLE_RATE_VAR`]: 0 when unset.
    pub sample_rate: f64,
}

impl Function {
    /// From variables looked up with `var`.
    ///
    /// # Errors
    /// The one line to show when [`SAMPLE_RATE_VAR`] is not a number from 0 to 1.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let sample_rate = match var(SAMPLE_RATE_VAR).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
            None => 0.0,
            Some(text) => {
                text.parse::<f64>().ok().filter(|rate| (0.0..=1.0).contains(rate)).ok_or_else(|| {
                    format!("{SAMPLE_RATE_VAR}={text}: expected a share from 0 to 1, such as 0.1")
                })?
            }
        };
        Ok(Self {
            name: var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
            memory_size: var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE").and_then(|m| m.trim().parse().ok()),
            version: var("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_default(),
            sample_rate,
        })
    }

    /// The fields every JSON line gets, but `cold_start`, as `,"name":value` pairs.
    fn json_fields(&self) -> String {
        let text = |value: &str| serde_json::Value::String(value.to_owned()).to_string();
        let mut fields = format!(",\"function_name\":{}", text(&self.name));
        if let Some(memory) = self.memory_size {
            fields.push_str(&format!(",\"function_memory_size\":{memory}"));
        }
        fields.push_str(&format!(",\"function_version\":{}", text(&self.version)));
        if self.sample_rate > 0.0 {
            fields.push_str(&format!(",\"sampling_rate\":{}", self.sample_rate));
        }
        fields
    }
}

/// The level Powertools' `level` names, as a filter directive.
///
/// # Errors
/// The one line to show for a level Powertools does not name.
pub fn powertools_level(level: &str) -> Result<String, String> {
    let directive = match level.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" | "WARNING" => "warn",
        "ERROR" | "CRITICAL" | "FATAL" => "error",
        "SILENT" => "off",
        _ => {
            return Err(format!(
                "{LOG_LEVEL_VAR}={level}: expected TRACE, DEBUG, INFO, WARN, ERROR, CRITICAL or SILENT"
            ));
        }
    };
    Ok(directive.to_owned())
}

/// The function's fields, with their JSON text made once.
struct Installed {
    function: Function,
    json: String,
}

static FUNCTION: OnceLock<Installed> = OnceLock::new();
static COLD: AtomicBool = AtomicBool::new(true);
/// Switches the log filter between the function's level (`false`) and `debug` (`true`).
type Sampler = Box<dyn Fn(bool) + Send + Sync>;
static SAMPLER: OnceLock<Sampler> = OnceLock::new();

/// Makes `function`'s fields part of every JSON line from now on. Once per process.
pub(crate) fn install(function: Function) {
    let json = function.json_fields();
    let _ = FUNCTION.set(Installed { function, json });
}

/// The switch that sampling turns, given by the log setup when it can sample.
pub(super) fn install_sampler(sampler: Sampler) {
    let _ = SAMPLER.set(sampler);
}

/// The rate set, for the log setup to know whether to give a switch.
pub(super) fn sample_rate() -> f64 {
    FUNCTION.get().map_or(0.0, |installed| installed.function.sample_rate)
}

/// Whether this is the execution environment's first invocation (or its init, before it).
#[must_use]
pub fn cold_start() -> bool {
    COLD.load(Ordering::Relaxed)
}

/// An invocation starts: whether it is sampled, and if so, its lines are logged at `debug`.
pub(crate) fn invocation_started() -> bool {
    let rate = sample_rate();
    let sampled = rate > 0.0 && fastrand::f64() < rate;
    if sampled && let Some(sampler) = SAMPLER.get() {
        sampler(true);
    }
    sampled
}

/// The invocation ended: the next is warm, and the level is the function's again.
pub(crate) fn invocation_ended(sampled: bool) {
    COLD.store(false, Ordering::Relaxed);
    if sampled && let Some(sampler) = SAMPLER.get() {
        sampler(false);
    }
}

/// Appends the function's fields to a JSON line's object (`object` is the line without its
/// closing brace); nothing when no function is installed.
pub(super) fn write_json_fields(writer: &mut impl std::fmt::Write) -> std::fmt::Result {
    let Some(installed) = FUNCTION.get() else { return Ok(()) };
    write!(writer, ",\"cold_start\":{}{}", cold_start(), installed.json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn lambdas_variables_name_the_function_and_the_sampling_rate() {
        let function = Function::from_vars(vars(&[
            ("AWS_LAMBDA_FUNCTION_NAME", "orders"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            (SAMPLE_RATE_VAR, "0.25"),
        ]))
        .unwrap();
        assert_eq!(function.memory_size, Some(256));
        assert_eq!(function.sample_rate, 0.25);
        let line: serde_json::Value =
            serde_json::from_str(&format!("{{\"a\":1{}}}", function.json_fields())).unwrap();
        assert_eq!(
            (
                line["function_name"].as_str(),
                line["function_version"].as_str(),
                line["sampling_rate"].as_f64()
            ),
            (Some("orders"), Some("$LATEST"), Some(0.25))
        );
    }

    #[test]
    fn a_sampling_rate_outside_zero_to_one_is_refused_in_one_line() {
        for bad in ["1.5", "-0.1", "ten", "NaN"] {
            let pairs: &'static [(&str, &str)] = Box::leak(Box::new([(SAMPLE_RATE_VAR, bad)]));
            let error = Function::from_vars(vars(pairs)).unwrap_err();
            assert!(error.starts_with(SAMPLE_RATE_VAR) && !error.contains('\n'), "{error}");
        }
        assert_eq!(Function::from_vars(vars(&[])).unwrap().sample_rate, 0.0);
    }

    #[test]
    fn powertools_levels_map_to_filter_directives() {
        assert_eq!(powertools_level("WARNING").unwrap(), "warn");
        assert_eq!(powertools_level("critical").unwrap(), "error");
        assert_eq!(powertools_level("SILENT").unwrap(), "off");
        assert!(powertools_level("LOUD").unwrap_err().contains(LOG_LEVEL_VAR));
    }
}
