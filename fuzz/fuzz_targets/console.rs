//! The web console (`/console/…`) through the router: without a session, or (mode bit 0)
//! with a real one signed in with the harness's key and its CSRF token added to the form —
//! paths, queries, cookies, form bodies, the login form itself.
//! Input: a mode byte, method line, path line (after `/console`), header lines, an empty
//! line, the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nubis_fuzz::{KEY_ID, SECRET, check_reply, headers, line, router, runtime, serve};
use std::sync::OnceLock;

/// A session (cookie, CSRF token) signed in once per process.
fn session() -> &'static (String, String) {
    static S: OnceLock<(String, String)> = OnceLock::new();
    S.get_or_init(|| {
        use axum::http::{Request, header};
        use tower::ServiceExt as _;
        // Built outside the runtime's block_on (building it blocks on the engine's start).
        let app = router();
        runtime().block_on(async {
            let login = Request::post("/console/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(format!(
                    "method=access_key&key_id={KEY_ID}&key_secret={SECRET}"
                )))
                .unwrap();
            let r = app.clone().oneshot(login).await.unwrap();
            let cookie = r.headers()[header::SET_COOKIE]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string();
            let page = Request::get("/console/keypairs")
                .header(header::COOKIE, &cookie)
                .body(axum::body::Body::empty())
                .unwrap();
            let r = app.oneshot(page).await.unwrap();
            let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            let text = String::from_utf8_lossy(&body);
            let csrf = text
                .split("name=\"csrf\" value=\"")
                .nth(1)
                .and_then(|t| t.split('"').next())
                .unwrap()
                .to_string();
            (cookie, csrf)
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    let (method, rest) = line(data);
    let (path, rest) = line(rest);
    let (mut hdrs, body) = headers(rest);
    let mut body = body.to_vec();
    if mode & 1 == 1 {
        // The live streams never end: not for a fuzzer to wait on.
        let p = String::from_utf8_lossy(path);
        if p.contains("events") || p.contains("serial") {
            return;
        }
        let (cookie, csrf) = session();
        hdrs.push(("cookie".into(), cookie.clone()));
        body.extend_from_slice(format!("&csrf={csrf}").as_bytes());
    }
    if mode & 2 == 2 {
        hdrs.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    let mut uri = b"/console".to_vec();
    uri.extend_from_slice(path);
    if let Some((status, ct, out)) = serve(method, &uri, &hdrs, body) {
        check_reply("console", status, ct.as_deref(), &out);
    }
});
