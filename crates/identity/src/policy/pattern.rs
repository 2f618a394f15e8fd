//! Wildcard patterns (`*` any run, `?` one character) as CAM and RAM use them in actions,
//! resources and `StringLike`. Matching is iterative and O(pattern × text) at worst: no
//! recursion, no backtracking blow-up on hostile patterns.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: Vec<char>,
    lower: Vec<char>,
    /// The pattern's bytes and their ASCII lower case, when it is ASCII (every action and
    /// almost every resource): matched against an ASCII text without allocating, which the
    /// authorizer does for every statement of every attached policy on every request.
    ascii: Option<Ascii>,
}

/// An ASCII pattern's bytes, as given and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Ascii {
    exact: Box<[u8]>,
    lower: Box<[u8]>,
}

impl Pattern {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.chars().collect(),
            lower: text.to_lowercase().chars().collect(),
            ascii: text.is_ascii().then(|| Ascii {
                exact: text.as_bytes().into(),
                lower: text.to_ascii_lowercase().into_bytes().into(),
            }),
        }
    }

    pub fn as_string(&self) -> String {
        self.text.iter().collect()
    }

    pub fn matches(&self, s: &str) -> bool {
        if let Some(a) = &self.ascii
            && s.is_ascii()
        {
            return glob(&a.exact, s.as_bytes(), b'*', b'?', |p, c| p == c);
        }
        let s: Vec<char> = s.chars().collect();
        glob(&self.text, &s, '*', '?', |p, c| p == c)
    }

    pub fn matches_ignore_case(&self, s: &str) -> bool {
        if let Some(a) = &self.ascii
            && s.is_ascii()
        {
            return glob(&a.lower, s.as_bytes(), b'*', b'?', |p, c| {
                p == c.to_ascii_lowercase()
            });
        }
        let s: Vec<char> = s.to_lowercase().chars().collect();
        glob(&self.lower, &s, '*', '?', |p, c| p == c)
    }
}

/// The classic greedy matcher: on a mismatch after a `*`, retry with the star taking one
/// more character. `eq(pattern_char, text_char)`.
fn glob<T: Copy + PartialEq>(p: &[T], s: &[T], star: T, one: T, eq: impl Fn(T, T) -> bool) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut resume: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(&c) if c == star => {
                resume = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == one || s.get(si).is_some_and(|&x| eq(c, x)) => {
                pi += 1;
                si += 1;
            }
            _ => match resume {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    resume = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == star))
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
        // The ASCII fast path and the general one agree, either side non-ASCII.
        for &(p, s, want) in cases {
            let p = Pattern::new(p);
            assert_eq!(
                p.matches_ignore_case(&s.to_uppercase()),
                want,
                "{p:?} ~ {s}"
            );
            assert_eq!(
                p.matches(&format!("{s}é")),
                p.matches_ignore_case(&format!("{s}é"))
            );
        }
        assert!(Pattern::new("é*").matches("éa"));
        assert!(Pattern::new("É*").matches_ignore_case("éA"));
        assert!(!Pattern::new("a?").matches("aéb"));
        assert!(Pattern::new("a?b").matches("aéb"));
    }

    #[test]
    fn hostile_pattern_is_fast() {
        let p = Pattern::new(&"*a".repeat(200));
        let s = "a".repeat(199) + "b";
        assert!(!p.matches(&s));
    }
}
