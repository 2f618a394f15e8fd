//! Glance's two body/query parsers fed arbitrary input: the image PATCH body (both JSON-patch
//! drafts, then applied to an image) and the image list query (then applied to an image).
//! Input: the first byte picks the draft (even: v2.1, odd: v2.0); the rest is the PATCH body
//! and, URL-decoded, the list query.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_api_openstack::image::{patch, query};
use nubis_core::catalog;
use nubis_core::images::Image;

fuzz_target!(|data: &[u8]| {
    let Some((first, rest)) = data.split_first() else {
        return;
    };
    let draft = if first % 2 == 0 { 10 } else { 4 };
    let mut img = Image {
        account: Some("a".into()),
        protected: false,
        ..Image::builtin(&catalog::IMAGES[0])
    };
    if let Ok(changes) = patch::parse(rest, draft) {
        assert!(changes.len() <= patch::MAX_CHANGES);
        let _ = patch::apply(&mut img, &changes, first & 2 == 0);
        // Whatever was applied renders.
        let _ = nubis_api_openstack::render::image(&img, "p");
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(rest)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Ok(q) = query::parse(&pairs) {
        assert!(q.limit <= query::MAX_LIMIT);
        assert!(!q.sort.is_empty());
        let seen = query::Seen {
            image: &img,
            owner: "p".into(),
            owned: true,
            membership: None,
            os_hidden: false,
        };
        let _ = q.visible(&seen, false) && q.keeps(&seen);
        let _ = q.order(&img, &img);
    }
});
