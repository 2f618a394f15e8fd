//! Alibaba RPC parameter access (`Params`: strings, bools, ints, 1-based lists, `Name.N.Field`
//! groups, JSON-array parameters) on attacker-chosen parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_api_aliyun::params::Params;
use nubis_fuzz::pairs;

fuzz_target!(|data: &[u8]| {
    let pairs = pairs(data);
    let mut names: Vec<String> = Vec::new();
    for (k, _) in &pairs {
        names.push(k.clone());
        // The list / group stem of `Name.1` and `Name.1.Field`.
        if let Some((stem, _)) = k.split_once('.') {
            names.push(stem.to_string());
        }
    }
    names.truncate(64);
    let p = Params::new(pairs);
    for n in &names {
        let _ = p.str(n);
        let _ = p.opt(n);
        let _ = p.required(n);
        let _ = p.bool(n);
        let _ = p.int(n, 0, i64::MIN, i64::MAX);
        let _ = p.int(n, 10, 1, 100);
        let _ = p.list(n);
        let _ = p.groups(n);
        let _ = p.json_list(n);
    }
});
