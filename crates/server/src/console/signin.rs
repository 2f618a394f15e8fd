//! Sign-in and sign-out (docs/console.md, "Sign-in and sessions").

use super::*;

pub(super) async fn login_page() -> Response {
    html(pages::login(None))
}

/// Failed access key sign-ins, per key ID and per source.
pub(super) fn key_logins() -> &'static nubis_auth::login::LoginThrottle {
    static T: std::sync::OnceLock<nubis_auth::login::LoginThrottle> = std::sync::OnceLock::new();
    T.get_or_init(Default::default)
}

pub(super) async fn login(
    State(s): State<AppState>,
    axum::Extension(set): axum::Extension<Settings>,
    Peer(peer): Peer,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-site sign-in refused\n").into_response();
    }
    let refused = |code: &str, message: &str| {
        (
            StatusCode::UNAUTHORIZED,
            html(pages::login(Some((code.to_string(), message.to_string())))),
        )
            .into_response()
    };
    let session = match field(&f, "method") {
        "keystone" => {
            let (user, password) = (field(&f, "user"), field(&f, "password"));
            let project = match field(&f, "project") {
                "" => user,
                p => p,
            };
            let domain = match field(&f, "domain") {
                "" => "Default",
                d => d,
            };
            match backend::keystone_login(&s, peer, user, password, project, domain).await {
                Ok(token) => match s.openstack.session(&token).await {
                    Some((_, t)) => Session::new(Kind::Keystone, token, t.expires_at * 1000),
                    None => return refused("401", "The token Keystone issued is not valid."),
                },
                Err(out) => {
                    let (code, msg) = out.error.unwrap_or_default();
                    return refused(&code, &msg);
                }
            }
        }
        "access_key" => {
            let (id, secret) = (field(&f, "key_id").trim(), field(&f, "key_secret"));
            let throttle = key_logins();
            if let Err(wait) = throttle.attempt(id, peer) {
                return refused(
                    "RequestLimitExceeded",
                    &format!(
                        "Too many failed sign-ins: try again in {} s.",
                        wait.0.as_secs()
                    ),
                );
            }
            let ok = s.engine.access_key(id).is_some_and(|(_, real)| {
                use subtle::ConstantTimeEq;
                bool::from(real.as_bytes().ct_eq(secret.as_bytes()))
            });
            if !ok {
                return refused(
                    "AuthFailure.SignatureFailure",
                    "The SecretId is unknown or disabled, or the SecretKey is wrong.",
                );
            }
            throttle.succeed(id, peer);
            Session::new(
                Kind::AccessKey,
                id.to_string(),
                now_ms() + session::KEY_SESSION_SECS * 1000,
            )
        }
        _ => return refused("MissingParameter", "Choose how to sign in."),
    };
    let max_age = (session.expires_ms - now_ms()) / 1000;
    let cookie = session::set_cookie(&session.seal(&s.engine), max_age, set.secure);
    (
        [(header::SET_COOKIE, cookie)],
        Redirect::to("/console/fleet"),
    )
        .into_response()
}

pub(super) async fn logout(
    State(s): State<AppState>,
    axum::Extension(set): axum::Extension<Settings>,
    Peer(peer): Peer,
    Posted { who, .. }: Posted,
) -> Response {
    backend::revoke(&s, &who.session, peer).await;
    (
        [(header::SET_COOKIE, session::clear_cookie(set.secure))],
        Redirect::to("/console/login"),
    )
        .into_response()
}
