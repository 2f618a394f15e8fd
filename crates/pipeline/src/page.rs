//! Listings rendered in slices. A page of 100 instances is ~150 KB of JSON and ~0.3 ms of
//! one core; written in one go, every lookup queued behind a few pages on the same runtime
//! thread waits for all of them (bench/RESULTS.md, "Lookups beside listings"). Rendered a
//! few items at a time with a yield between, a short request waits for a slice, not a page.

use serde::Serialize;

/// Items rendered between two yields: ~25 µs of work.
const SLICE: usize = 8;

/// A rendered item's usual size, to size the buffer once (an instance: ~1.5 KB).
const ITEM_BYTES: usize = 2048;

/// Appends `items` to `out` as a JSON array, rendered `SLICE` at a time with a yield to the
/// runtime between slices, into one buffer sized up front.
pub async fn push_array<T: Serialize>(out: &mut String, items: Vec<T>) {
    let mut buf = std::mem::take(out).into_bytes();
    buf.reserve(2 + items.len().saturating_mul(ITEM_BYTES));
    buf.push(b'[');
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            buf.push(b',');
            if n % SLICE == 0 {
                tokio::task::yield_now().await;
            }
        }
        serde_json::to_writer(&mut buf, item).expect("records serialize");
    }
    buf.push(b']');
    *out = String::from_utf8(buf).expect("JSON is UTF-8");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_array_of_every_item_in_order() {
        for n in [0, 1, SLICE - 1, SLICE, SLICE + 1, 3 * SLICE, 100] {
            let items: Vec<serde_json::Value> = (0..n)
                .map(|i| serde_json::json!({"Id": i, "Name": format!("a\"b{i}")}))
                .collect();
            let mut out = String::from("{\"Set\":");
            push_array(&mut out, items.clone()).await;
            out.push('}');
            let back: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(back, serde_json::json!({ "Set": items }), "{n} items");
        }
    }
}
