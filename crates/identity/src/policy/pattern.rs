//! Wildcard patterns (`*` any run, `?` one character) as CAM and RAM use them in actions,
//! resources and `StringLike`. Matching is iterative and O(pattern × text) at worst: no
//! recursion, no backtracking blow-up on hostile patterns.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: Vec<char>,
    lower: Vec<char>,
}

impl Pattern {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.chars().collect(),
            lower: text.to_lowercase().chars().collect(),
        }
    }

    pub fn as_string(&self) -> String {
        self.text.iter().collect()
    }

    pub fn matches(&self, s: &str) -> bool {
        let s: Vec<char> = s.chars().collect();
        glob(&self.text, &s)
    }

    pub fn matches_ignore_case(&self, s: &str) -> bool {
        let s: Vec<char> = s.to_lowercase().chars().collect();
        glob(&self.lower, &s)
    }
}

/// The classic greedy matcher: on a mismatch after a `*`, retry with the star taking one
/// more character.
fn glob(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == '?' || s.get(si) == Some(&c) => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("cvm:Describe*", "cvm:DescribeInstances", true),
            ("cvm:Describe*", "cvm:RebootInstances", false),
            ("ecs:Start*", "ecs:StartInstance", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("", "", true),
            ("", "x", false),
            ("x", "", false),
            ("**", "abc", true),
            (
                "acs:ecs:*:*:instance/*",
                "acs:ecs:cn-hangzhou:123:instance/i-1",
                true,
            ),
            (
                "acs:ecs:*:*:instance/*",
                "acs:ecs:cn-hangzhou:123:keypair/k",
                false,
            ),
            ("*a", "bbbba", true),
            ("*a", "bbbbab", false),
        ];
        for &(p, s, want) in cases {
            assert_eq!(Pattern::new(p).matches(s), want, "{p} ~ {s}");
        }
        assert!(Pattern::new("cvm:describe*").matches_ignore_case("CVM:DescribeZones"));
        assert!(!Pattern::new("cvm:describe*").matches("cvm:DescribeZones"));
    }

    #[test]
    fn hostile_pattern_is_fast() {
        let p = Pattern::new(&"*a".repeat(200));
        let s = "a".repeat(199) + "b";
        assert!(!p.matches(&s));
    }
}
