//! RPC parameters: a flat name → value map with typed, 1-based list and JSON-array access.

use crate::errors::ApiError;
use std::collections::HashMap;

pub struct Params(HashMap<String, String>);

impl Params {
    pub fn new(pairs: Vec<(String, String)>) -> Self {
        Self(pairs.into_iter().collect())
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A non-empty string.
    pub fn opt(&self, name: &str) -> Option<String> {
        self.str(name).filter(|v| !v.is_empty()).map(str::to_string)
    }

    pub fn required(&self, name: &str) -> Result<String, ApiError> {
        self.opt(name).ok_or_else(|| ApiError::missing(name))
    }

    pub fn bool(&self, name: &str) -> Result<bool, ApiError> {
        match self.str(name) {
            None | Some("") => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(ApiError::invalid(name, v)),
        }
    }

    pub fn int(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64, ApiError> {
        match self.str(name) {
            None | Some("") => Ok(default),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ApiError::invalid(name, v)),
            },
        }
    }

    /// `Name.1`, `Name.2`, … in order (repeat lists are 1-based).
    pub fn list(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}.");
        let mut items: Vec<(usize, String)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(&prefix)
                    .and_then(|n| n.parse().ok())
                    .map(|n| (n, v.clone()))
            })
            .collect();
        items.sort();
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// `Name.N.Field` groups, e.g. `Tag.1.Key`/`Tag.1.Value`, in order.
    pub fn groups(&self, name: &str) -> Vec<HashMap<String, String>> {
        let prefix = format!("{name}.");
        let mut by_index: std::collections::BTreeMap<usize, HashMap<String, String>> =
            Default::default();
        for (k, v) in &self.0 {
            if let Some(rest) = k.strip_prefix(&prefix)
                && let Some((n, field)) = rest.split_once('.')
                && let Ok(n) = n.parse::<usize>()
            {
                by_index
                    .entry(n)
                    .or_default()
                    .insert(field.to_string(), v.clone());
            }
        }
        by_index.into_values().collect()
    }

    /// A JSON array of strings sent as one parameter (`InstanceIds=["i-a","i-b"]`).
    pub fn json_list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.str(name) {
            None | Some("") => Ok(None),
            Some(v) => serde_json::from_str::<Vec<String>>(v)
                .map(Some)
                .map_err(|_| ApiError::invalid(name, "expected a JSON array of strings")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Params {
        Params::new(
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn lists_are_one_based_and_ordered() {
        let ps = p(&[
            ("InstanceId.2", "b"),
            ("InstanceId.1", "a"),
            ("InstanceId.10", "c"),
        ]);
        assert_eq!(ps.list("InstanceId"), ["a", "b", "c"]);
        let ps = p(&[("Tag.1.Key", "env"), ("Tag.1.Value", "dev")]);
        assert_eq!(ps.groups("Tag")[0]["Key"], "env");
    }

    #[test]
    fn scalars() {
        let ps = p(&[
            ("DryRun", "True"),
            ("PageSize", "101"),
            ("Ids", r#"["i-a"]"#),
            ("Bad", "[1"),
            ("Flag", "yes"),
        ]);
        assert!(ps.bool("DryRun").unwrap());
        assert!(ps.bool("Flag").is_err());
        assert!(ps.int("PageSize", 10, 1, 100).is_err());
        assert_eq!(ps.json_list("Ids").unwrap().unwrap(), ["i-a"]);
        assert!(ps.json_list("Bad").is_err());
    }
}
