//! The producer's trace context a message carries: AWS X-Ray's `AWSTraceHeader` system attribute
//! (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`) or a W3C
//! `traceparent` message attribute (`00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01`),
//! as OpenTelemetry's propagators put them on a message. Both name the same thing: a 128-bit
//! trace id and the producer's span; the consumer's work belongs to that trace, linked to that
//! span.

use std::fmt;

use aws_lambda_events::sqs::SqsMessage;

/// The system attribute SQS sets from the producer's X-Ray context.
pub const AWS_TRACE_HEADER: &str = "AWSTraceHeader";
/// The message attribute W3C trace context propagation uses.
pub const TRACEPARENT: &str = "traceparent";

/// Which header a trace context was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceSource {
    /// The `AWSTraceHeader` system attribute (X-Ray).
    XRay,
    /// A `traceparent` message attribute (W3C).
    W3c,
}

/// A producer's trace context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id, 128 bits (X-Ray's `1-{time}-{random}` is the same 128 bits).
    pub trace_id: u128,
    /// The producer's span (X-Ray's `Parent`), when the header names one.
    pub parent_span_id: Option<u64>,
    /// Whether the producer sampled the trace, when the header says.
    pub sampled: Option<bool>,
    /// Where it was read from.
    pub source: TraceSource,
}

impl TraceContext {
    /// The record's trace context: a valid `traceparent` message attribute first (what an
    /// OpenTelemetry producer sets on purpose), else a valid `AWSTraceHeader`. `None` when it
    /// carries neither, or only malformed ones (a producer's text is not trusted to be either).
    #[must_use]
    pub fn of(record: &SqsMessage) -> Option<Self> {
        let traceparent = record.message_attributes.get(TRACEPARENT).and_then(|a| a.string_value.as_deref());
        traceparent
            .and_then(Self::from_traceparent)
            .or_else(|| record.attributes.get(AWS_TRACE_HEADER).and_then(|h| Self::from_xray(h)))
    }

    /// Reads an X-Ray trace header: `Root=1-{8 hex}-{24 hex}`, optionally `Parent={16 hex}` and
    /// `Sampled=0|1`, in any order, `;`-separated.
    #[must_use]
    pub fn from_xray(header: &str) -> Option<Self> {
        let (mut root, mut parent, mut sampled) = (None, None, None);
        for part in header.split(';') {
            let (key, value) = part.trim().split_once('=')?;
            match key.trim() {
                "Root" => root = Some(value.trim()),
                "Parent" => parent = Some(hex_u64(value.trim())?),
                "Sampled" => {
                    sampled = match value.trim() {
                        "1" => Some(true),
                        "0" => Some(false),
                        _ => None,
                    }
                }
                _ => {}
            }
        }
        let mut pieces = root?.split('-');
        let (version, time, random) = (pieces.next()?, pieces.next()?, pieces.next()?);
        if version != "1" || time.len() != 8 || random.len() != 24 || pieces.next().is_some() {
            return None;
        }
        let trace_id = hex_u128(&format!("{time}{random}"))?;
        (trace_id != 0).then_some(Self {
            trace_id,
            parent_span_id: parent,
            sampled,
            source: TraceSource::XRay,
        })
    }

    /// Reads a W3C `traceparent`: `{version}-{32 hex trace id}-{16 hex parent id}-{2 hex flags}`,
    /// neither id all zeros, version `ff` refused, version `00` with exactly four parts.
    #[must_use]
    pub fn from_traceparent(header: &str) -> Option<Self> {
        let parts: Vec<&str> = header.trim().split('-').collect();
        let [version, trace, parent, flags, rest @ ..] = parts.as_slice() else { return None };
        let version = hex_u8(version)?;
        if version == 0xff
            || (version == 0 && !rest.is_empty())
            || trace.len() != 32
            || parent.len() != 16
            || flags.len() != 2
        {
            return None;
        }
        let (trace_id, parent_id) = (hex_u128(trace)?, hex_u64(parent)?);
        let flags = hex_u8(flags)?;
        (trace_id != 0 && parent_id != 0).then_some(Self {
            trace_id,
            parent_span_id: Some(parent_id),
            sampled: Some(flags & 1 == 1),
            source: TraceSource::W3c,
        })
    }

    /// The trace id as W3C and OpenTelemetry write it: 32 lowercase hex digits.
    #[must_use]
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The trace id as X-Ray writes it: `1-{8 hex}-{24 hex}`.
    #[must_use]
    pub fn xray_trace_id(&self) -> String {
        let hex = self.trace_id_hex();
        format!("1-{}-{}", &hex[..8], &hex[8..])
    }
}

impl fmt::Display for TraceContext {
    /// The trace id, as [`TraceContext::trace_id_hex`] writes it: what log lines carry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.trace_id)
    }
}

/// Two hex digits, and nothing else (`from_str_radix` alone would take a sign).
fn hex_u8(text: &str) -> Option<u8> {
    (text.len() == 2 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u8::from_str_radix(text, 16).ok())
        .flatten()
}

fn hex_u128(text: &str) -> Option<u128> {
    text.bytes().all(|b| b.is_ascii_hexdigit()).then(|| u128::from_str_radix(text, 16).ok()).flatten()
}

fn hex_u64(text: &str) -> Option<u64> {
    (text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(text, 16).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::record;

    #[test]
    fn an_xray_header_gives_the_trace_id_the_parent_and_sampling_in_any_order() {
        let trace = TraceContext::from_xray(
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
        )
        .expect("a valid header");
        assert_eq!(trace.trace_id_hex(), "5759e988bd862e3fe1be46a994272793");
        assert_eq!(trace.xray_trace_id(), "1-5759e988-bd862e3fe1be46a994272793");
        assert_eq!((trace.parent_span_id, trace.sampled), (Some(0x5399_5c3f_42cd_8ad8), Some(true)));
        let reordered =
            TraceContext::from_xray("Sampled=0;Lineage=a:1;Root=1-5759e988-bd862e3fe1be46a994272793")
                .unwrap();
        assert_eq!(
            (reordered.trace_id, reordered.parent_span_id, reordered.sampled),
            (trace.trace_id, None, Some(false))
        );
    }

    #[test]
    fn a_w3c_traceparent_gives_the_trace_id_the_parent_and_the_sampled_flag() {
        let trace = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .unwrap();
        assert_eq!(trace.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            (trace.parent_span_id, trace.sampled, trace.source),
            (Some(0x00f0_67aa_0ba9_02b7), Some(true), TraceSource::W3c)
        );
        assert!(
            TraceContext::from_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-future")
                .is_some()
        );
    }

    #[test]
    fn malformed_or_zero_headers_are_no_trace_context() {
        for header in [
            "",
            "Root=",
            "Root=2-5759e988-bd862e3fe1be46a994272793",
            "Root=1-5759e98-bd862e3fe1be46a994272793",
            "Root=1-5759e988-bd862e3fe1be46a99427279z",
            "Root=1-00000000-000000000000000000000000",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=xyz",
            "\u{1b}[31m",
        ] {
            assert_eq!(TraceContext::from_xray(header), None, "{header:?}");
        }
        for header in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "+0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::from_traceparent(header), None, "{header:?}");
        }
    }

    #[test]
    fn a_record_with_both_headers_follows_the_traceparent_and_a_bad_one_falls_back() {
        let xray = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
        let both = record("{}")
            .trace_header(xray)
            .message_attribute(TRACEPARENT, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .build();
        assert_eq!(TraceContext::of(&both).map(|t| t.source), Some(TraceSource::W3c));
        let bad_w3c = record("{}").trace_header(xray).message_attribute(TRACEPARENT, "garbage").build();
        assert_eq!(TraceContext::of(&bad_w3c).map(|t| t.source), Some(TraceSource::XRay));
        assert_eq!(TraceContext::of(&record("{}").build()), None);
    }
}
