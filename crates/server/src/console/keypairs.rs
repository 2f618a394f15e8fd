//! Key pairs: list, create (the private key shown once), import, delete.

use super::*;

pub(super) async fn keypairs(State(s): State<AppState>, Page(who): Page) -> Response {
    html(pages::keypairs(
        &who,
        &s.engine.key_pairs(&who.principal),
        None,
        None,
    ))
}

pub(super) async fn create_key(
    State(s): State<AppState>,
    Peer(peer): Peer,
    Posted { who, form: f }: Posted,
) -> Response {
    let public = Some(field(&f, "public_key").trim()).filter(|p| !p.is_empty());
    let (out, private) =
        backend::create_key(&s, &who.session, peer, field(&f, "name").trim(), public).await;
    let keys = s.engine.key_pairs(&who.principal);
    let error = out.error.as_ref().map(|e| (e, out.request_id.as_str()));
    html(pages::keypairs(&who, &keys, private.as_deref(), error))
}

pub(super) fn key_of(s: &AppState, who: &Who, id: &str) -> Option<KeyPair> {
    s.engine
        .key_pairs(&who.principal)
        .into_iter()
        .find(|k| k.id == id)
}

pub(super) async fn confirm_delete_key(
    State(s): State<AppState>,
    Page(who): Page,
    Path(id): Path<String>,
) -> Response {
    match key_of(&s, &who, &id) {
        Some(k) => html(pages::confirm_delete_key(&who, &k, None)),
        None => not_found(&who, "The key pair"),
    }
}

pub(super) async fn delete_key(
    State(s): State<AppState>,
    Peer(peer): Peer,
    Path(id): Path<String>,
    Posted { who, .. }: Posted,
) -> Response {
    let Some(k) = key_of(&s, &who, &id) else {
        return not_found(&who, "The key pair");
    };
    let out = backend::delete_key(
        &s,
        &who.session,
        peer,
        &KeyRef {
            id: k.id.clone(),
            name: k.name.clone(),
        },
    )
    .await;
    match out.error {
        None => Redirect::to("/console/keypairs").into_response(),
        Some(e) => html(pages::confirm_delete_key(
            &who,
            &k,
            Some((&e, &out.request_id)),
        )),
    }
}
