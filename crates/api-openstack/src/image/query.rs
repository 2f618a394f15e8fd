//! Glance's image list query (glance/api/v2/images.py `RequestDeserializer.index` and the
//! registry's filters): parsed and checked before any image is looked at, then applied to
//! the registry's records.

use nubis_core::images::{Image, MemberStatus, Visibility};
use std::cmp::Ordering;

/// Glance's `limit_param_default`.
pub const DEFAULT_LIMIT: usize = 25;
/// Glance's `api_limit_max`.
pub const MAX_LIMIT: usize = 1000;
/// Query parameters one listing may carry (each is a filter to apply to every image).
pub const MAX_PARAMS: usize = 64;
/// Sort keys Glance accepts (`_available_sort_keys`).
pub const SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
];

/// Which visibilities a listing asks for (`visibility=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityFilter {
    /// No `visibility`: Glance's default listing.
    Default,
    All,
    Only(Visibility),
}

/// A comparison of a time filter (`created_at=gte:2020-01-01T00:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeOp {
    Eq,
    Neq,
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: usize,
    pub marker: Option<String>,
    /// (key, descending), most significant first.
    pub sort: Vec<(&'static str, bool)>,
    /// `None`: `member_status=all`.
    pub member_status: Option<MemberStatus>,
    pub visibility: VisibilityFilter,
    /// `name=` (or `name=in:a,b`).
    pub names: Option<Vec<String>>,
    /// `id=in:a,b`.
    pub ids: Option<Vec<String>>,
    pub status: Option<String>,
    pub owner: Option<String>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    pub tags: Vec<String>,
    pub protected: Option<bool>,
    pub os_hidden: bool,
    pub size: Option<u64>,
    pub size_min: Option<u64>,
    pub size_max: Option<u64>,
    /// (op, epoch ms).
    pub created_at: Vec<(TimeOp, i64)>,
    pub updated_at: Vec<(TimeOp, i64)>,
    /// Any other parameter: an additional property that must have this value.
    pub properties: Vec<(String, String)>,
}

fn list_of(v: &str) -> Vec<String> {
    v.strip_prefix("in:")
        .unwrap_or(v)
        .split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .collect()
}

fn boolean(key: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!(
            "Invalid value '{v}' for '{key}' filter. Valid values are 'true' or 'false'."
        )),
    }
}

fn sort_key(k: &str) -> Result<&'static str, String> {
    SORT_KEYS.iter().copied().find(|s| *s == k).ok_or_else(|| {
        format!(
            "Invalid sort key: {k}. It must be one of the following: {}.",
            SORT_KEYS.join(", ")
        )
    })
}

fn sort_dir(d: &str) -> Result<bool, String> {
    match d {
        "asc" => Ok(false),
        "desc" => Ok(true),
        _ => Err(format!("Invalid sort direction: {d}")),
    }
}

/// `2020-01-01T00:00:00Z` (an offset, or none: UTC) as epoch ms.
pub fn parse_time(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    let t = time::OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(&format!("{s}Z"), &Rfc3339))
        .ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

fn time_filter(key: &str, v: &str) -> Result<(TimeOp, i64), String> {
    let (op, when) = match v.split_once(':') {
        Some((op, rest)) if op.chars().all(|c| c.is_ascii_alphabetic()) => {
            let op = match op {
                "eq" => TimeOp::Eq,
                "neq" => TimeOp::Neq,
                "gt" => TimeOp::Gt,
                "gte" => TimeOp::Gte,
                "lt" => TimeOp::Lt,
                "lte" => TimeOp::Lte,
                _ => return Err(format!("Invalid operator '{op}' for '{key}'.")),
            };
            (op, rest)
        }
        _ => (TimeOp::Eq, v),
    };
    let ms = parse_time(when).ok_or_else(|| format!("Invalid time format for {key}."))?;
    Ok((op, ms))
}

fn size(key: &str, v: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .map_err(|_| format!("Invalid value for {key}: {v}. It must be a non-negative integer."))
}

/// Parse a listing's query as Glance does; the error is the 400's explanation.
pub fn parse(q: &[(String, String)]) -> Result<ListQuery, String> {
    if q.len() > MAX_PARAMS {
        return Err(format!(
            "Too many query parameters: at most {MAX_PARAMS} are accepted."
        ));
    }
    let mut out = ListQuery {
        limit: DEFAULT_LIMIT,
        marker: None,
        sort: Vec::new(),
        member_status: Some(MemberStatus::Accepted),
        visibility: VisibilityFilter::Default,
        names: None,
        ids: None,
        status: None,
        owner: None,
        disk_format: None,
        container_format: None,
        tags: Vec::new(),
        protected: None,
        os_hidden: false,
        size: None,
        size_min: None,
        size_max: None,
        created_at: Vec::new(),
        updated_at: Vec::new(),
        properties: Vec::new(),
    };
    let has = |k: &str| q.iter().any(|(n, _)| n == k);
    let (mut keys, mut dirs) = (Vec::new(), Vec::new());
    if has("sort") && (has("sort_key") || has("sort_dir")) {
        return Err("Old and new sorting syntax cannot be combined".into());
    }
    for (k, v) in q {
        match k.as_str() {
            "limit" => {
                let n: i64 = v
                    .trim()
                    .parse()
                    .map_err(|_| "limit param must be an integer".to_string())?;
                if n < 0 {
                    return Err("limit param must be positive".into());
                }
                out.limit = usize::try_from(n).unwrap_or(usize::MAX).min(MAX_LIMIT);
            }
            "marker" => out.marker = Some(v.clone()),
            "member_status" => {
                out.member_status = match v.as_str() {
                    "all" => None,
                    s => Some(
                        MemberStatus::from_glance(s)
                            .ok_or_else(|| format!("Invalid status: {s}"))?,
                    ),
                }
            }
            "visibility" => {
                out.visibility = match v.as_str() {
                    "all" => VisibilityFilter::All,
                    s => VisibilityFilter::Only(
                        Visibility::from_glance(s)
                            .ok_or_else(|| format!("Invalid visibility value: {s}"))?,
                    ),
                }
            }
            "changes-since" => {
                return Err("The \"changes-since\" filter is no longer available on v2.".into());
            }
            "sort" => {
                for part in v.trim().split(',') {
                    let (key, dir) = part.split_once(':').unwrap_or((part, "desc"));
                    keys.push(sort_key(key.trim())?);
                    dirs.push(sort_dir(dir.trim())?);
                }
            }
            "sort_key" => keys.push(sort_key(v.trim())?),
            "sort_dir" => dirs.push(sort_dir(v.trim())?),
            "name" => out.names = Some(list_of(v)),
            "id" => out.ids = Some(list_of(v)),
            "status" => out.status = Some(v.clone()),
            "owner" => out.owner = Some(v.clone()),
            "disk_format" => out.disk_format = Some(v.clone()),
            "container_format" => out.container_format = Some(v.clone()),
            "tag" => out.tags.push(v.trim().to_string()),
            "protected" => out.protected = Some(boolean("protected", v)?),
            "os_hidden" => out.os_hidden = boolean("os_hidden", v)?,
            "size" => out.size = Some(size("size", v)?),
            "size_min" => out.size_min = Some(size("size_min", v)?),
            "size_max" => out.size_max = Some(size("size_max", v)?),
            "created_at" => out.created_at.push(time_filter("created_at", v)?),
            "updated_at" => out.updated_at.push(time_filter("updated_at", v)?),
            _ => out.properties.push((k.clone(), v.clone())),
        }
    }
    if !has("sort") && dirs.len() > 1 && dirs.len() != keys.len() {
        return Err("Number of sort dirs does not match the number of sort keys".into());
    }
    if keys.is_empty() {
        keys.push("created_at");
    }
    let dir_of = |i: usize| {
        dirs.get(i)
            .or(if dirs.len() == 1 { dirs.first() } else { None })
            .copied()
            .unwrap_or(true)
    };
    out.sort = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (*k, dir_of(i)))
        .collect();
    Ok(out)
}

/// What the filters need of an image beyond its record: its rendered owner and whether the
/// caller owns it or is one of its members (and what it answered).
pub struct Seen<'a> {
    pub image: &'a Image,
    pub owner: String,
    pub owned: bool,
    pub membership: Option<MemberStatus>,
    pub os_hidden: bool,
}

fn time_ok(filters: &[(TimeOp, i64)], t: i64) -> bool {
    // Glance compares at second precision.
    let t = t / 1000;
    filters.iter().all(|(op, ms)| {
        let w = ms / 1000;
        match op {
            TimeOp::Eq => t == w,
            TimeOp::Neq => t != w,
            TimeOp::Gt => t > w,
            TimeOp::Gte => t >= w,
            TimeOp::Lt => t < w,
            TimeOp::Lte => t <= w,
        }
    })
}

impl ListQuery {
    /// Is the image in this listing for a caller (`admin`: Glance's admin sees every image)?
    pub fn visible(&self, s: &Seen<'_>, admin: bool) -> bool {
        let member_ok = |m: Option<MemberStatus>| match (m, self.member_status) {
            (Some(_), None) => true,
            (Some(have), Some(want)) => have == want,
            (None, _) => false,
        };
        let vis = s.image.visibility;
        let shared_ok = s.owned || admin || member_ok(s.membership);
        match self.visibility {
            VisibilityFilter::Default => match vis {
                Visibility::Public => true,
                Visibility::Private => s.owned || admin,
                Visibility::Community => s.owned || admin,
                Visibility::Shared => shared_ok,
            },
            VisibilityFilter::All => match vis {
                Visibility::Public | Visibility::Community => true,
                Visibility::Private => s.owned || admin,
                Visibility::Shared => shared_ok,
            },
            VisibilityFilter::Only(want) => {
                want == vis
                    && match vis {
                        Visibility::Public | Visibility::Community => true,
                        Visibility::Private => s.owned || admin,
                        Visibility::Shared => shared_ok,
                    }
            }
        }
    }

    /// Do the listing's filters keep the image?
    pub fn keeps(&self, s: &Seen<'_>) -> bool {
        let i = s.image;
        let size = i.data.as_ref().map(|d| d.size);
        self.names.as_ref().is_none_or(|n| n.contains(&i.name))
            && self
                .ids
                .as_ref()
                .is_none_or(|n| n.contains(&i.uuid.to_string()))
            && self
                .status
                .as_ref()
                .is_none_or(|st| st == i.status.glance())
            && self.owner.as_ref().is_none_or(|o| *o == s.owner)
            && self
                .disk_format
                .as_ref()
                .is_none_or(|f| Some(f) == i.disk_format.as_ref())
            && self
                .container_format
                .as_ref()
                .is_none_or(|f| Some(f) == i.container_format.as_ref())
            && self.tags.iter().all(|t| i.tags.contains(t))
            && self.protected.is_none_or(|p| p == i.protected)
            // Glance compares: `os_hidden=true` lists the hidden images only.
            && self.os_hidden == s.os_hidden
            && self.size.is_none_or(|m| size == Some(m))
            && self
                .size_min
                .is_none_or(|m| size.is_some_and(|s| s >= m))
            && self
                .size_max
                .is_none_or(|m| size.is_some_and(|s| s <= m))
            && time_ok(&self.created_at, i.created_ms)
            && time_ok(&self.updated_at, i.updated_ms)
            && self
                .properties
                .iter()
                .all(|(k, v)| i.properties.get(k) == Some(v))
    }

    /// Order images by the listing's sort keys (then by ID, in the last key's direction).
    pub fn order(&self, a: &Image, b: &Image) -> Ordering {
        for (key, desc) in &self.sort {
            let o = compare(key, a, b);
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        let o = a.uuid.cmp(&b.uuid);
        if self.sort.last().is_some_and(|(_, d)| *d) {
            o.reverse()
        } else {
            o
        }
    }
}

fn compare(key: &str, a: &Image, b: &Image) -> Ordering {
    match key {
        "name" => a.name.cmp(&b.name),
        "status" => a.status.glance().cmp(b.status.glance()),
        "container_format" => a.container_format.cmp(&b.container_format),
        "disk_format" => a.disk_format.cmp(&b.disk_format),
        "size" => a
            .data
            .as_ref()
            .map(|d| d.size)
            .cmp(&b.data.as_ref().map(|d| d.size)),
        "id" => a.uuid.cmp(&b.uuid),
        "updated_at" => a.updated_ms.cmp(&b.updated_ms),
        _ => a.created_ms.cmp(&b.created_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_glances() {
        let l = parse(&[]).unwrap();
        assert_eq!(l.limit, DEFAULT_LIMIT);
        assert_eq!(l.sort, vec![("created_at", true)]);
        assert_eq!(l.member_status, Some(MemberStatus::Accepted));
        assert_eq!(l.visibility, VisibilityFilter::Default);
        assert!(!l.os_hidden);
    }

    #[test]
    fn sorting_both_syntaxes() {
        let l = parse(&q(&[("sort", "name:asc,size")])).unwrap();
        assert_eq!(l.sort, vec![("name", false), ("size", true)]);
        let l = parse(&q(&[
            ("sort_key", "name"),
            ("sort_key", "id"),
            ("sort_dir", "asc"),
        ]))
        .unwrap();
        assert_eq!(l.sort, vec![("name", false), ("id", false)]);
        assert_eq!(
            parse(&q(&[("sort", "name"), ("sort_key", "id")])).unwrap_err(),
            "Old and new sorting syntax cannot be combined"
        );
        assert!(
            parse(&q(&[("sort_key", "bogus")]))
                .unwrap_err()
                .starts_with("Invalid sort key: bogus. It must be one of the following: name,")
        );
        assert_eq!(
            parse(&q(&[("sort_dir", "up")])).unwrap_err(),
            "Invalid sort direction: up"
        );
        assert!(
            parse(&q(&[
                ("sort_key", "name"),
                ("sort_dir", "asc"),
                ("sort_dir", "desc"),
                ("sort_key", "id"),
                ("sort_key", "size")
            ]))
            .is_err()
        );
    }

    #[test]
    fn bad_values_are_refused_with_glances_words() {
        assert_eq!(
            parse(&q(&[("limit", "x")])).unwrap_err(),
            "limit param must be an integer"
        );
        assert_eq!(
            parse(&q(&[("limit", "-1")])).unwrap_err(),
            "limit param must be positive"
        );
        assert_eq!(parse(&q(&[("limit", "5000")])).unwrap().limit, MAX_LIMIT);
        assert_eq!(
            parse(&q(&[("visibility", "secret")])).unwrap_err(),
            "Invalid visibility value: secret"
        );
        assert_eq!(
            parse(&q(&[("member_status", "maybe")])).unwrap_err(),
            "Invalid status: maybe"
        );
        assert_eq!(
            parse(&q(&[("protected", "yes")])).unwrap_err(),
            "Invalid value 'yes' for 'protected' filter. Valid values are 'true' or 'false'."
        );
        assert!(parse(&q(&[("size_min", "-3")])).is_err());
        assert!(parse(&q(&[("created_at", "gt:yesterday")])).is_err());
        assert!(parse(&q(&[("created_at", "bogus:2020-01-01T00:00:00Z")])).is_err());
        let many: Vec<(String, String)> = (0..=MAX_PARAMS)
            .map(|i| (format!("p{i}"), "v".to_string()))
            .collect();
        assert!(parse(&many).is_err());
    }

    #[test]
    fn filters_keep_what_they_name() {
        let mut img = Image::builtin(&nubis_core::catalog::IMAGES[0]);
        img.tags = vec!["a".into(), "b".into()];
        img.created_ms = 1_600_000_000_000;
        img.properties.insert("os_distro".into(), "debian".into());
        fn seen(i: &Image) -> Seen<'_> {
            Seen {
                image: i,
                owner: "p".into(),
                owned: false,
                membership: None,
                os_hidden: false,
            }
        }
        let keeps = |pairs: &[(&str, &str)]| parse(&q(pairs)).unwrap().keeps(&seen(&img));
        assert!(keeps(&[("tag", "a"), ("tag", "b")]));
        assert!(!keeps(&[("tag", "a"), ("tag", "c")]));
        assert!(keeps(&[("name", &format!("in:x,{}", img.name))]));
        assert!(keeps(&[("os_distro", "debian")]));
        assert!(!keeps(&[("os_distro", "ubuntu")]));
        assert!(keeps(&[("created_at", "gte:2020-09-13T12:26:40Z")]));
        assert!(!keeps(&[("created_at", "gt:2020-09-13T12:26:40Z")]));
        assert!(keeps(&[("protected", "true")]));
        assert!(keeps(&[("owner", "p"), ("status", "active")]));
        assert!(keeps(&[("size_min", "1")]));
        assert!(!keeps(&[("size_max", "1")]));
    }

    #[test]
    fn visibility_listing_rules() {
        let mut img = Image::builtin(&nubis_core::catalog::IMAGES[0]);
        img.visibility = Visibility::Shared;
        let s = |membership| Seen {
            image: &img,
            owner: "o".into(),
            owned: false,
            membership,
            os_hidden: false,
        };
        let dflt = parse(&[]).unwrap();
        assert!(!dflt.visible(&s(Some(MemberStatus::Pending)), false));
        assert!(dflt.visible(&s(Some(MemberStatus::Accepted)), false));
        let pending = parse(&q(&[
            ("member_status", "pending"),
            ("visibility", "shared"),
        ]))
        .unwrap();
        assert!(pending.visible(&s(Some(MemberStatus::Pending)), false));
        assert!(!pending.visible(&s(None), false));
        let all = parse(&q(&[("member_status", "all")])).unwrap();
        assert!(all.visible(&s(Some(MemberStatus::Rejected)), false));
        let public_only = parse(&q(&[("visibility", "public")])).unwrap();
        assert!(!public_only.visible(&s(Some(MemberStatus::Accepted)), false));
    }
}
