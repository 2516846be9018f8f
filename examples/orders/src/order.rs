//! An order: integer ids, and lines with a quantity and a unit price in cents.

use serde::{Deserialize, Deserializer};

/// An order as the shop sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Order {
    /// The shop's order number.
    pub order_id: u64,
    /// Who ordered.
    pub customer_id: u64,
    /// What was ordered: at least one line.
    #[serde(deserialize_with = "at_least_one_line")]
    pub lines: Vec<Line>,
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Line {
    /// The product.
    pub sku: String,
    /// How many: at least 1.
    #[serde(deserialize_with = "positive")]
    pub quantity: u32,
    /// The price of one, in cents.
    pub unit_price_cents: u64,
}

impl Order {
    /// The order's total in cents; `None` if it does not fit in 64 bits.
    #[must_use]
    pub fn total_cents(&self) -> Option<u64> {
        self.lines.iter().try_fold(0u64, |total, line| {
            total.checked_add(line.unit_price_cents.checked_mul(u64::from(line.quantity))?)
        })
    }
}

fn at_least_one_line<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Line>, D::Error> {
    let lines = Vec::<Line>::deserialize(deserializer)?;
    if lines.is_empty() {
        return Err(serde::de::Error::custom("an order needs at least one line"));
    }
    Ok(lines)
}

fn positive<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    match u32::deserialize(deserializer)? {
        0 => Err(serde::de::Error::custom("must be at least 1")),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use sqs_batch::Error;

    use super::*;

    fn parse(body: &str) -> Result<Order, Error> {
        sqs_batch::json::parse_str(body)
    }

    #[test]
    fn an_order_adds_up_its_lines() {
        let order = parse(
            r#"{"order_id":7,"customer_id":3,"lines":[{"sku":"a","quantity":2,"unit_price_cents":150},{"sku":"b","quantity":1,"unit_price_cents":99}]}"#,
        )
        .unwrap();
        assert_eq!(order.total_cents(), Some(399));
    }

    #[test]
    fn a_total_that_overflows_is_none() {
        let order = parse(&format!(
            r#"{{"order_id":1,"customer_id":1,"lines":[{{"sku":"a","quantity":4294967295,"unit_price_cents":{}}}]}}"#,
            u64::MAX
        ))
        .unwrap();
        assert_eq!(order.total_cents(), None);
    }

    #[test]
    fn a_line_of_nothing_and_an_order_of_no_lines_name_their_field() {
        let zero = parse(
            r#"{"order_id":1,"customer_id":1,"lines":[{"sku":"a","quantity":0,"unit_price_cents":1}]}"#,
        );
        assert!(matches!(zero, Err(Error::InvalidBody { field: Some(f), .. }) if f == "lines[0].quantity"));
        let empty = parse(r#"{"order_id":1,"customer_id":1,"lines":[]}"#);
        assert!(matches!(empty, Err(Error::InvalidBody { field: Some(f), .. }) if f == "lines"));
        let text_id = parse(r#"{"order_id":"seven","customer_id":1,"lines":[]}"#);
        assert!(matches!(text_id, Err(Error::InvalidBody { field: Some(f), .. }) if f == "order_id"));
    }
}
