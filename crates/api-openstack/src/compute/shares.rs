//! Server shares (2.97+, `/servers/{id}/shares`): Manila file shares mounted in a guest over
//! virtiofs. nubis runs no file-share service and its guests have no file-backed memory, so a
//! server never has a share: the list is empty, show and detach find none, and attach is
//! refused after the state check as Nova refuses it on an instance not configured for
//! shares (docs/nova-servers.md, "Shares").

use super::{Nova, Res, check_keys, json_body, opt_str};
use crate::Reply;
use crate::errors::Fault;
use crate::state::nova_state;
use nubis_core::Instance;
use serde_json::{Value, json};

/// The first microversion with the shares API.
const MIN_MINOR: u16 = 97;

/// Nova's `ForbiddenSharesNotConfiguredCorrectly`, which the attach answers 409.
const NOT_CONFIGURED: &str =
    "Feature not supported because either compute or instance are not configured correctly.";

impl Nova<'_> {
    /// Nova's share actions need the server stopped (detach also takes ERROR).
    async fn share_state(
        &self,
        inst: &Instance,
        action: &str,
        error_too: bool,
    ) -> Result<(), Fault> {
        let vm_state = nova_state(inst.state, self.extra(inst).await).vm_state;
        if vm_state == "stopped" || (error_too && vm_state == "error") {
            return Ok(());
        }
        Err(Fault::conflict(format!(
            "Cannot '{action}' instance {} while it is in vm_state {vm_state}",
            inst.uuid
        )))
    }

    pub(super) fn shares_list(&self, id: &str) -> Res {
        self.since(MIN_MINOR)?;
        self.server(id)?;
        Ok(Reply::json(200, &json!({ "shares": [] })))
    }

    pub(super) fn shares_show(&self, id: &str, share: &str) -> Res {
        self.since(MIN_MINOR)?;
        self.server(id)?;
        Err(no_share(share))
    }

    /// `POST /servers/{id}/shares` `{"share": {"share_id", "tag"?}}`.
    pub(super) async fn shares_attach(&self, id: &str) -> Res {
        self.since(MIN_MINOR)?;
        let body = json_body(self.req.body)?;
        share_body(&body)?;
        let inst = self.server(id)?;
        self.share_state(&inst, "create share", false).await?;
        Err(Fault::conflict(NOT_CONFIGURED))
    }

    pub(super) async fn shares_detach(&self, id: &str, share: &str) -> Res {
        self.since(MIN_MINOR)?;
        let inst = self.server(id)?;
        self.share_state(&inst, "delete share", true).await?;
        Err(no_share(share))
    }
}

fn no_share(share: &str) -> Fault {
    Fault::not_found(format!("Share {share} could not be found."))
}

/// Nova's `server_shares.create` schema: `share_id` (required, a string of at most 255) and
/// `tag` (1–255 of `[a-zA-Z0-9_-]`), nothing else.
fn share_body(body: &Value) -> Result<(), Fault> {
    let top = body
        .as_object()
        .ok_or_else(|| Fault::bad_request("The request body is not an object."))?;
    check_keys(top, &["share"])?;
    let share = top
        .get("share")
        .ok_or_else(|| {
            Fault::bad_request(
                "Invalid input for field/attribute share. 'share' is a required property",
            )
        })?
        .as_object()
        .ok_or_else(|| {
            Fault::bad_request("Invalid input for field/attribute share. Value is not an object.")
        })?;
    check_keys(share, &["share_id", "tag"])?;
    match opt_str(share, "share_id")? {
        Some(s) if !s.is_empty() && s.len() <= 255 => {}
        Some(s) => return Err(super::invalid_value("share_id", s)),
        None => {
            return Err(Fault::bad_request(
                "Invalid input for field/attribute share. 'share_id' is a required property",
            ));
        }
    }
    if let Some(tag) = opt_str(share, "tag")? {
        let ok = (1..=255).contains(&tag.len())
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(super::invalid_value("tag", tag));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attach_body_is_checked_before_anything_else() {
        let ok =
            json!({"share": {"share_id": "e8debdc0-447a-4376-a10a-4cd9122d7986", "tag": "data_1"}});
        assert!(share_body(&ok).is_ok());
        for bad in [
            json!([]),
            json!({}),
            json!({"share": "x"}),
            json!({"share": {}}),
            json!({"share": {"share_id": 7}}),
            json!({"share": {"share_id": ""}}),
            json!({"share": {"share_id": "a".repeat(256)}}),
            json!({"share": {"share_id": "a", "tag": ""}}),
            json!({"share": {"share_id": "a", "tag": "has space"}}),
            json!({"share": {"share_id": "a", "extra": 1}}),
            json!({"share": {"share_id": "a"}, "more": 1}),
        ] {
            let f = share_body(&bad).expect_err(&bad.to_string());
            assert_eq!(f.status, 400, "{bad}");
        }
    }
}
