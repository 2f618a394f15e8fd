//! Tencent's form/query decoding and unflattening (`a.0.b=x` → nested JSON), and the lenient
//! scalars, on attacker bytes: everything that runs on parameters before the signature check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_api_tencent::decode_pairs;
use nubis_api_tencent::wire::{Bool, Int, unflatten};

fuzz_target!(|data: &[u8]| {
    let pairs = decode_pairs(data);
    if let Ok(map) = unflatten(&pairs) {
        // What unflatten builds must serialize and parse back (bounded depth included).
        let text = serde_json::to_string(&map).expect("serialize");
        let _: serde_json::Value = serde_json::from_str(&text).expect("parse back");
    }
    let _ = serde_json::from_slice::<Int>(data);
    let _ = serde_json::from_slice::<Bool>(data);
});
