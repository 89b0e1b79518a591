//! Host lists in the pdsh / Slurm syntax: `axon[001-200]`, `node[1-4,7],gpu[01-08]`,
//! `rack[1-2]-n[01-04]`. The one parser every part of axon uses (agent peers, console
//! inventory, CLI verbs), and its inverse for compact display of node sets.

use std::fmt::Write as _;

/// Refuse to expand lists that would allocate absurd amounts: a typo such as
/// `n[1-99999999]` must be an error, not an out-of-memory.
pub const MAX_HOSTS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostlistError {
    #[error("hostlist `{list}`: unbalanced brackets at `{part}` — every `[` needs a `]`")]
    Unbalanced { list: String, part: String },
    #[error("hostlist `{list}`: `{range}` is not a number or range like 01-08")]
    BadRange { list: String, range: String },
    #[error("hostlist `{list}`: range `{range}` ends before it starts")]
    Backwards { list: String, range: String },
    #[error("hostlist `{list}` expands to more than {MAX_HOSTS} hosts")]
    TooMany { list: String },
    #[error("hostlist `{list}` contains an empty host name")]
    Empty { list: String },
    #[error("hostlist `{list}`: `{name}` has characters a host name cannot have")]
    BadName { list: String, name: String },
}

/// Expands a host list into host names, in the order written, without duplicates.
pub fn expand(list: &str) -> Result<Vec<String>, HostlistError> {
    let list_s = list.trim();
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for part in split_top_level(list_s).map_err(|part| HostlistError::Unbalanced {
        list: list_s.to_string(),
        part,
    })? {
        let part = part.trim();
        if part.is_empty() {
            if list_s.is_empty() {
                continue;
            }
            return Err(HostlistError::Empty {
                list: list_s.to_string(),
            });
        }
        let mut names = vec![String::new()];
        let mut rest = part;
        while !rest.is_empty() {
            match rest.find('[') {
                None => {
                    for n in &mut names {
                        n.push_str(rest);
                    }
                    rest = "";
                }
                Some(open) => {
                    let prefix = &rest[..open];
                    let close = rest[open..].find(']').map(|c| c + open).ok_or_else(|| {
                        HostlistError::Unbalanced {
                            list: list_s.to_string(),
                            part: part.to_string(),
                        }
                    })?;
                    let body = &rest[open + 1..close];
                    let suffixes = expand_brackets(list_s, body)?;
                    let mut next = Vec::with_capacity(names.len() * suffixes.len());
                    for n in &names {
                        for s in &suffixes {
                            next.push(format!("{n}{prefix}{s}"));
                            if next.len() > MAX_HOSTS {
                                return Err(HostlistError::TooMany {
                                    list: list_s.to_string(),
                                });
                            }
                        }
                    }
                    names = next;
                    rest = &rest[close + 1..];
                }
            }
        }
        for n in names {
            if n.is_empty() {
                return Err(HostlistError::Empty {
                    list: list_s.to_string(),
                });
            }
            if !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
            {
                return Err(HostlistError::BadName {
                    list: list_s.to_string(),
                    name: n,
                });
            }
            if seen.insert(n.clone()) {
                out.push(n);
                if out.len() > MAX_HOSTS {
                    return Err(HostlistError::TooMany {
                        list: list_s.to_string(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Splits on commas that are not inside brackets.
fn split_top_level(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '[' => {
                depth += 1;
                if depth > 1 {
                    return Err(s.to_string());
                }
            }
            ']' => {
                depth -= 1;
                if depth < 0 {
                    return Err(s[start..=i].to_string());
                }
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(s[start..].to_string());
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn expand_brackets(list: &str, body: &str) -> Result<Vec<String>, HostlistError> {
    let mut out = Vec::new();
    for range in body.split(',') {
        let range = range.trim();
        let bad = || HostlistError::BadRange {
            list: list.to_string(),
            range: range.to_string(),
        };
        let (a, b) = match range.split_once('-') {
            Some((a, b)) => (a, b),
            None => (range, range),
        };
        if a.is_empty() || b.is_empty() || !a.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        if !b.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let lo: u64 = a.parse().map_err(|_| bad())?;
        let hi: u64 = b.parse().map_err(|_| bad())?;
        if hi < lo {
            return Err(HostlistError::Backwards {
                list: list.to_string(),
                range: range.to_string(),
            });
        }
        if (hi - lo) as usize >= MAX_HOSTS {
            return Err(HostlistError::TooMany {
                list: list.to_string(),
            });
        }
        // Zero padding follows the width of the first bound, as pdsh and Slurm do.
        let width = if a.len() > 1 && a.starts_with('0') {
            a.len()
        } else {
            0
        };
        for v in lo..=hi {
            out.push(format!("{v:0width$}"));
        }
    }
    Ok(out)
}

/// Compresses host names back into the bracket syntax: `axon001,axon002,axon003,axon007`
/// becomes `axon[001-003,007]`. Names are grouped by prefix and number width and sorted.
pub fn compress<S: AsRef<str>>(hosts: &[S]) -> String {
    use std::collections::BTreeMap;
    // (prefix, width, suffix) -> numbers
    let mut groups: BTreeMap<(String, usize, String), Vec<u64>> = BTreeMap::new();
    let mut plain: Vec<String> = Vec::new();
    for h in hosts {
        let h = h.as_ref();
        // The last run of digits is the index: `rack2-n07` -> prefix `rack2-n`, `07`.
        let bytes = h.as_bytes();
        let end = bytes
            .iter()
            .rposition(|b| b.is_ascii_digit())
            .map(|e| e + 1);
        match end {
            Some(end) => {
                let start = bytes[..end]
                    .iter()
                    .rposition(|b| !b.is_ascii_digit())
                    .map(|s| s + 1)
                    .unwrap_or(0);
                let digits = &h[start..end];
                match digits.parse::<u64>() {
                    Ok(n) if digits.len() <= 18 => {
                        let width = if digits.len() > 1 && digits.starts_with('0') {
                            digits.len()
                        } else {
                            0
                        };
                        groups
                            .entry((h[..start].to_string(), width, h[end..].to_string()))
                            .or_default()
                            .push(n);
                    }
                    _ => plain.push(h.to_string()),
                }
            }
            None => plain.push(h.to_string()),
        }
    }
    let mut parts: Vec<String> = Vec::new();
    for ((prefix, width, suffix), mut nums) in groups {
        nums.sort_unstable();
        nums.dedup();
        if nums.len() == 1 {
            parts.push(format!("{prefix}{:0width$}{suffix}", nums[0]));
            continue;
        }
        let mut body = String::new();
        let mut i = 0;
        while i < nums.len() {
            let start = nums[i];
            let mut end = start;
            while i + 1 < nums.len() && nums[i + 1] == end + 1 {
                i += 1;
                end = nums[i];
            }
            if !body.is_empty() {
                body.push(',');
            }
            if start == end {
                let _ = write!(body, "{start:0width$}");
            } else {
                let _ = write!(body, "{start:0width$}-{end:0width$}");
            }
            i += 1;
        }
        parts.push(format!("{prefix}[{body}]{suffix}"));
    }
    plain.sort();
    parts.extend(plain);
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_zero_padded_ranges() {
        let h = expand("axon[001-200]").unwrap();
        assert_eq!(h.len(), 200);
        assert_eq!(h[0], "axon001");
        assert_eq!(h[199], "axon200");
    }

    #[test]
    fn expands_lists_and_several_groups() {
        assert_eq!(
            expand("node[1-4,7],gpu[01-02]").unwrap(),
            vec![
                "node1", "node2", "node3", "node4", "node7", "gpu01", "gpu02"
            ]
        );
        assert_eq!(
            expand("rack[1-2]-n[01-02]").unwrap(),
            vec!["rack1-n01", "rack1-n02", "rack2-n01", "rack2-n02"]
        );
        assert_eq!(expand("a, b ,a").unwrap(), vec!["a", "b"]);
        assert_eq!(expand("127.0.1.1").unwrap(), vec!["127.0.1.1"]);
        assert!(expand("").unwrap().is_empty());
    }

    #[test]
    fn bad_hostlists_name_the_offending_part() {
        let e = expand("axon[001-010").unwrap_err();
        assert!(e.to_string().contains("unbalanced"), "{e}");
        let e = expand("axon[a-b]").unwrap_err();
        assert!(e.to_string().contains("`a-b`"), "{e}");
        let e = expand("axon[10-1]").unwrap_err();
        assert!(matches!(e, HostlistError::Backwards { .. }));
        let e = expand("n[1-99999999]").unwrap_err();
        assert!(matches!(e, HostlistError::TooMany { .. }));
        let e = expand("a,,b").unwrap_err();
        assert!(matches!(e, HostlistError::Empty { .. }));
        let e = expand("a b").unwrap_err();
        assert!(matches!(e, HostlistError::BadName { .. }));
        assert!(expand("a]").is_err());
        assert!(expand("a[[1-2]]").is_err());
    }

    #[test]
    fn compress_inverts_expand() {
        for list in ["axon[001-003,007]", "gpu[01-08],node[1-4,7]", "login"] {
            let hosts = expand(list).unwrap();
            assert_eq!(compress(&hosts), list);
        }
        assert_eq!(compress(&["axon5"]), "axon5");
    }
}
