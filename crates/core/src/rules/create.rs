//! The plan of a create: which image, type and zone, whether the login fits the image, which
//! keys the guest gets, and the provisioning operation each new instance runs.

use super::action::Plan;
use super::table::keys_unsupported;
use crate::catalog::{self, InstanceType};
use crate::error::{DomainError, ResourceKind};
use crate::images::ImageFacts;
use crate::limits::MAX_LAUNCH_COUNT;
use crate::op::{Settle, Step};
use crate::password;
use crate::request::{CreateSpec, PublicKey};
use crate::state::{Action, InstanceState};

/// An accepted create, before the password is hashed and the instances get their IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePlan {
    pub image: ImageFacts,
    pub instance_type: InstanceType,
    /// The key pairs the guests get, with their public keys.
    pub keys: Vec<PublicKey>,
    /// Boot once provisioned.
    pub start: bool,
}

impl CreatePlan {
    /// The operation each new instance runs: provision (then boot, unless the create leaves
    /// it stopped), shown as Pending throughout.
    pub fn plan(&self, password_hash: Option<String>) -> Plan {
        let provision = Step::Provision {
            image_id: self.image.id.clone(),
            user: self.image.default_user.clone(),
            password_hash,
            keys: self.keys.iter().map(|k| k.key.clone()).collect(),
            guest: Default::default(),
        };
        Plan {
            action: Action::Create,
            steps: std::iter::once(provision)
                .chain(self.start.then_some(Step::PowerOn))
                .collect(),
            display: Some(InstanceState::Pending),
            effects: Vec::new(),
            accept: crate::op::Accept::Operation,
            supersedes: false,
            settle: Settle::for_action(Action::Create),
        }
    }
}

/// Does instance type `ty` have the memory image `image` needs (Glance `min_ram`)? Nova
/// checks it at create, rebuild and resize (compute/api.py `_validate_flavor_image_nostatus`).
pub fn fits_image(image: &ImageFacts, ty: &InstanceType) -> Result<(), DomainError> {
    if ty.memory_mib < image.min_ram_mib {
        return Err(DomainError::ImageNeedsMemory {
            image: image.id.clone(),
            instance_type: ty.name.to_string(),
            memory_mib: ty.memory_mib,
            min_ram_mib: image.min_ram_mib,
        });
    }
    Ok(())
}

/// Decide a create. Order: image (`image`: the registry's facts of the spec's image if the
/// caller may boot it) → instance type (`instance_type`: the spec's type as the engine resolved
/// it from the built-in catalogue and the created types the caller may use; `None`: not found)
/// → region → zone → password → key pairs (`public_keys` resolves the spec's key-pair IDs to
/// public keys, in order, or refuses with NotFound) → key pairs on the image's OS → key types.
/// Shapes and documented limits were checked by the dialect.
pub fn plan_create(
    spec: &CreateSpec,
    image: Option<ImageFacts>,
    instance_type: Option<&InstanceType>,
    public_keys: impl FnOnce(&[String]) -> Result<Vec<String>, DomainError>,
) -> Result<CreatePlan, DomainError> {
    if spec.count > MAX_LAUNCH_COUNT {
        return Err(DomainError::TooMany {
            name: "count".into(),
            max: MAX_LAUNCH_COUNT as usize,
            got: spec.count as usize,
        });
    }
    let image = image.ok_or_else(|| DomainError::NotFound {
        kind: ResourceKind::Image,
        id: spec.image_id.clone(),
    })?;
    let instance_type = instance_type
        .filter(|t| t.name == spec.instance_type)
        .cloned()
        .ok_or_else(|| DomainError::NotFound {
            kind: ResourceKind::InstanceType,
            id: spec.instance_type.clone(),
        })?;
    fits_image(&image, &instance_type)?;
    let region = catalog::region(&spec.region)
        .ok_or_else(|| DomainError::UnsupportedRegion(spec.region.clone()))?;
    if !region.zones.iter().any(|z| z.id == spec.zone) {
        return Err(DomainError::InvalidZone(spec.zone.clone()));
    }
    if let Some(pw) = &spec.password {
        password::check(spec.rule, pw, image.os, &[image.default_user.as_str()])
            .map_err(DomainError::InvalidPassword)?;
    }
    let keys: Vec<PublicKey> = spec
        .key_ids
        .iter()
        .cloned()
        .zip(public_keys(&spec.key_ids)?)
        .map(|(id, key)| PublicKey { id, key })
        .collect();
    if !keys.is_empty()
        && let Some(why) = keys_unsupported(image.os)
    {
        return Err(DomainError::Unsupported {
            id: spec.image_id.clone(),
            why,
        });
    }
    crate::keys::check_injectable(&keys)?;
    Ok(CreatePlan {
        image,
        instance_type,
        keys,
        start: spec.start,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Unsupported;
    use crate::rules::fixture::spec;

    const ED: &str = "ssh-ed25519 AAAA";

    /// The plan with the built-in catalogue as the image registry.
    fn plan_create(
        s: &CreateSpec,
        instance_type: Option<&InstanceType>,
        keys: impl FnOnce(&[String]) -> Result<Vec<String>, DomainError>,
    ) -> Result<CreatePlan, DomainError> {
        super::plan_create(
            s,
            crate::images::builtin_facts(&s.image_id),
            instance_type,
            keys,
        )
    }

    fn keys_ok(ids: &[String]) -> Result<Vec<String>, DomainError> {
        Ok(ids.iter().map(|_| ED.to_string()).collect())
    }

    fn no_keys(ids: &[String]) -> Result<Vec<String>, DomainError> {
        match ids.first() {
            Some(id) => Err(DomainError::NotFound {
                kind: ResourceKind::KeyPair,
                id: id.clone(),
            }),
            None => Ok(vec![]),
        }
    }

    /// Each refusal, in the order the checks run: every case is refused by the first check
    /// it fails, so a spec wrong in two ways gets the earlier error.
    #[test]
    fn refusals_in_order() {
        type Edit = fn(&mut CreateSpec);
        type Expect = fn(&DomainError) -> bool;
        let cases: &[(&str, Edit, Expect)] = &[
            (
                "count",
                |s| s.count = MAX_LAUNCH_COUNT + 1,
                |e| matches!(e, DomainError::TooMany { .. }),
            ),
            (
                "private image",
                |s| {
                    s.image_id = catalog::RESCUE_IMAGE.into();
                    s.instance_type = "NOPE".into();
                },
                |e| {
                    matches!(
                        e,
                        DomainError::NotFound {
                            kind: ResourceKind::Image,
                            ..
                        }
                    )
                },
            ),
            (
                "type",
                |s| {
                    s.instance_type = "NOPE".into();
                    s.region = "nowhere".into();
                },
                |e| {
                    matches!(
                        e,
                        DomainError::NotFound {
                            kind: ResourceKind::InstanceType,
                            ..
                        }
                    )
                },
            ),
            (
                "region",
                |s| {
                    s.region = "nowhere".into();
                    s.zone = "nowhere-z".into();
                },
                |e| matches!(e, DomainError::UnsupportedRegion(_)),
            ),
            (
                "zone",
                |s| {
                    s.zone = "nowhere-z".into();
                    s.password = Some("short".into());
                },
                |e| matches!(e, DomainError::InvalidZone(_)),
            ),
            (
                "password for the image's OS",
                |s| {
                    // Fine for Linux, too short for Windows.
                    s.image_id = "img-win22x64".into();
                    s.password = Some("Abcdef1!".into());
                    s.key_ids = vec!["skey-1".into()];
                },
                |e| matches!(e, DomainError::InvalidPassword(_)),
            ),
            (
                "keys on Windows",
                |s| {
                    s.image_id = "img-win22x64".into();
                    s.password = Some("Abcdefgh12!x".into());
                    s.key_ids = vec!["skey-1".into()];
                },
                |e| {
                    matches!(
                        e,
                        DomainError::Unsupported {
                            why: Unsupported::WindowsOs,
                            ..
                        }
                    )
                },
            ),
        ];
        for (what, edit, expected) in cases {
            let mut s = spec();
            edit(&mut s);
            let e = plan_create(&s, catalog::instance_type(&s.instance_type), keys_ok).unwrap_err();
            assert!(expected(&e), "{what}: {e:?}");
        }
        // An unknown key pair is refused before the OS rule and the key type.
        let mut s = spec();
        s.key_ids = vec!["skey-404".into()];
        assert!(matches!(
            plan_create(&s, catalog::instance_type(&s.instance_type), no_keys),
            Err(DomainError::NotFound {
                kind: ResourceKind::KeyPair,
                ..
            })
        ));
        assert_eq!(
            plan_create(&s, catalog::instance_type(&s.instance_type), |_| Ok(vec![
                "ssh-dss AAAA".into()
            ])),
            Err(DomainError::KeyPairNotSupported("skey-404".into()))
        );
    }

    #[test]
    fn an_image_needing_more_memory_than_the_type_is_refused() {
        let ty = catalog::instance_type("S5.MEDIUM4").unwrap();
        let mut image = ImageFacts {
            id: "img-x".into(),
            os: crate::model::OsFamily::Linux,
            os_name: "Linux".into(),
            default_user: "root".into(),
            size_gib: 20,
            min_ram_mib: ty.memory_mib,
        };
        assert_eq!(fits_image(&image, ty), Ok(()));
        image.min_ram_mib += 1;
        assert_eq!(
            fits_image(&image, ty),
            Err(DomainError::ImageNeedsMemory {
                image: "img-x".into(),
                instance_type: "S5.MEDIUM4".into(),
                memory_mib: ty.memory_mib,
                min_ram_mib: ty.memory_mib + 1,
            })
        );
    }

    #[test]
    fn the_operation_provisions_then_boots_unless_left_stopped() {
        let mut s = spec();
        s.key_ids = vec!["skey-1".into()];
        let cp = plan_create(&s, catalog::instance_type(&s.instance_type), keys_ok).unwrap();
        let p = cp.plan(Some("$6$h".into()));
        assert_eq!(p.action, Action::Create);
        assert_eq!(p.shows(InstanceState::Pending), InstanceState::Pending);
        assert_eq!(
            p.steps,
            vec![
                Step::Provision {
                    image_id: "img-tos31x64".into(),
                    user: "root".into(),
                    password_hash: Some("$6$h".into()),
                    keys: vec![ED.into()],
                    guest: Default::default(),
                },
                Step::PowerOn
            ]
        );
        assert_eq!(
            p.settle
                .state(false, Some(InstanceState::Running), InstanceState::Pending),
            InstanceState::LaunchFailed
        );
        s.start = false;
        let p = plan_create(&s, catalog::instance_type(&s.instance_type), keys_ok)
            .unwrap()
            .plan(None);
        assert_eq!(p.steps.len(), 1);
    }
}
