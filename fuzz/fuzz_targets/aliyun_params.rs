//! Alibaba RPC parameter access (`Params`: strings, bools, ints, 1-based lists, `Name.N.Field`
//! groups, JSON-array parameters) on attacker-chosen parameters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_api_aliyun::params::{self as ap, Params};
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
        let _ = p.max_index(n);
        let _ = p.list(n);
        let _ = p.groups(n);
        let _ = p.json_list(n);
    }
    // The documented limits (one table), on whatever values the input gave those names.
    for c in [
        &ap::INSTANCE_NAME,
        &ap::HOST_NAME_LINUX,
        &ap::HOST_NAME_WINDOWS,
        &ap::DESCRIPTION,
        &ap::CLIENT_TOKEN,
        &ap::KEY_PAIR_NAME,
        &ap::TAG_KEY,
        &ap::TAG_VALUE,
    ] {
        let _ = p.text(c);
        let _ = ap::check_text(c, c.param, p.str(c.param));
    }
    for c in [
        &ap::AMOUNT,
        &ap::BANDWIDTH_OUT,
        &ap::DATA_DISK_SIZE,
        &ap::SYSTEM_DISK_SIZE,
        &ap::PAGE_NUMBER,
        &ap::PAGE_SIZE_100,
        &ap::PAGE_SIZE_50,
        &ap::MAX_RESULTS,
    ] {
        let _ = p.int(c, 1);
    }
    for c in [
        &ap::DATA_DISKS,
        &ap::TAGS,
        &ap::INSTANCE_IDS,
        &ap::KEY_PAIR_INSTANCE_IDS,
        &ap::KEY_PAIR_NAMES,
    ] {
        let _ = ap::check_count(c, p.max_index(c.param.trim_end_matches(".N")));
    }
});
