//! Nova microversions: `OpenStack-API-Version: compute X.Y` (wins) or the legacy
//! `X-OpenStack-Nova-API-Version: X.Y`; none → 2.1; `latest` → the maximum.

use crate::errors::Fault;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u16, pub u16);

impl Version {
    pub const MIN: Version = Version(2, 1);
    /// openstacksdk's server ceiling: 2.97 (server shares), 2.98 (image properties in the
    /// server), 2.99 (the spice-direct console type; nubis serves no remote consoles) and
    /// 2.100 (scheduler hints in the server). 2.101–2.104 are not served (docs/nova-servers.md).
    pub const MAX: Version = Version(2, 100);

    pub fn at_least(self, minor: u16) -> bool {
        self >= Version(2, minor)
    }

    fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("latest") {
            return Some(Self::MAX);
        }
        let (a, b) = s.split_once('.')?;
        let ok = |x: &str| !x.is_empty() && x.len() <= 4 && x.bytes().all(|c| c.is_ascii_digit());
        if !ok(a) || !ok(b) {
            return None;
        }
        Some(Version(a.parse().ok()?, b.parse().ok()?))
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The version a request asks for. `header` looks a (lower-case) header up.
pub fn requested<'a>(header: impl Fn(&str) -> Option<&'a str>) -> Result<Version, Fault> {
    let raw = header("openstack-api-version")
        .and_then(|v| {
            // A comma-separated list of "<service> <version>".
            v.split(',').find_map(|item| {
                let mut parts = item.split_whitespace();
                match (parts.next(), parts.next()) {
                    (Some(svc), Some(ver)) if svc.eq_ignore_ascii_case("compute") => Some(ver),
                    _ => None,
                }
            })
        })
        .or_else(|| header("x-openstack-nova-api-version"));
    let Some(raw) = raw else {
        return Ok(Version::MIN);
    };
    let v = Version::parse(raw).ok_or_else(|| {
        Fault::bad_request(format!(
            "API Version String {} is of invalid format. Must be of format MajorNum.MinorNum.",
            raw.trim()
        ))
    })?;
    if v < Version::MIN || v > Version::MAX {
        return Err(Fault::new(
            406,
            format!(
                "Version {v} is not supported by the API. Minimum is {} and maximum is {}.",
                Version::MIN,
                Version::MAX
            ),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(h: &[(&str, &str)]) -> Result<Version, Fault> {
        requested(|name| h.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
    }

    #[test]
    fn headers() {
        assert_eq!(ask(&[]).unwrap(), Version(2, 1));
        assert_eq!(
            ask(&[("x-openstack-nova-api-version", "2.10")]).unwrap(),
            Version(2, 10)
        );
        assert_eq!(
            ask(&[
                ("openstack-api-version", "compute 2.61"),
                ("x-openstack-nova-api-version", "2.2")
            ])
            .unwrap(),
            Version(2, 61)
        );
        assert_eq!(
            ask(&[("openstack-api-version", "image 2.5, compute latest")]).unwrap(),
            Version::MAX
        );
        for (value, status) in [
            ("2.200", 406),
            ("2.0", 406),
            ("3.1", 406),
            ("two", 400),
            ("2.", 400),
        ] {
            let got = ask(&[("x-openstack-nova-api-version", value)]);
            assert_eq!(got.unwrap_err().status, status, "{value}");
        }
        assert!(Version(2, 47).at_least(47) && !Version(2, 46).at_least(47));
        assert!(Version(2, 100) > Version(2, 96));
    }
}
