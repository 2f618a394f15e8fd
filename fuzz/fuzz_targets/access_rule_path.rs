//! Keystone access-rule path templates (`engine/src/keystone/access_rules.rs`) against request
//! paths, both arbitrary: no panic, and the matcher's laws — a template without `*`, `{` or
//! `}` matches exactly itself, `**` matches anything, a `/**` suffix matches every extension.
//! Input: template and path split at the first NUL byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_engine::keystone::access_rules::path_matches;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (template, path) = text.split_once('\0').unwrap_or((&text, ""));
    let matched = path_matches(template, path);
    if !template.contains(['*', '{', '}']) {
        assert_eq!(matched, template == path);
        assert!(path_matches(template, template));
        assert!(path_matches(
            &format!("{template}/**"),
            &format!("{template}/{path}")
        ));
    }
    assert!(path_matches("**", path));
});
