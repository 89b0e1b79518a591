//! Host lists in the pdsh / Slurm syntax: `axon[001-200]`, `node[1-4,7],gpu[01-08]`,
//! `rack[1-2]-n[01-04]`. The one parser every part of axon uses (agent peers, console
//! inventory, CLI verbs), and its inverse for compact display of node sets.

use std::fmt::Write as _;

/// Refuse to expand lists that would allocate absurd amounts: a typo such as
/// `n[1-99999999]` must be an error, not an out-of-memory. The count is of every name the
/// list writes, duplicates included (`a[1-60000],a[1-60000]` is 120,000), and it is made
/// from the ranges alone, before a single name is allocated.
pub const MAX_HOSTS: usize = 100_000;

/// Longest host list accepted, in bytes (64 KiB: 1,000 nodes written out one by one with
/// 60-character names still fit). Parsing and counting are linear in the input, so with
/// both caps an expansion costs at most a few tens of milliseconds and MAX_HOSTS names.
pub const MAX_LIST_LEN: usize = 64 * 1024;

/// Longest host name a list may produce: a DNS name is at most 253 characters.
pub const MAX_NAME_LEN: usize = 253;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostlistError {
    #[error("hostlist `{list}`: unbalanced brackets at `{part}` — every `[` needs a `]`")]
    Unbalanced { list: String, part: String },
    #[error("hostlist `{list}`: `{range}` is not a number or range like 01-08")]
    BadRange { list: String, range: String },
    #[error("hostlist `{list}`: range `{range}` ends before it starts")]
    Backwards { list: String, range: String },
    #[error(
        "hostlist `{list}` names {} hosts, more than the limit of {MAX_HOSTS} — split it into smaller lists",
        count_text(*count)
    )]
    TooMany { list: String, count: u64 },
    #[error(
        "hostlist `{list}` is {len} bytes long, more than the limit of {MAX_LIST_LEN} bytes — split it into smaller lists"
    )]
    TooLong { list: String, len: usize },
    #[error(
        "hostlist `{list}`: `{part}` makes host names of {len} characters, more than the limit of {MAX_NAME_LEN}"
    )]
    NameTooLong {
        list: String,
        part: String,
        len: usize,
    },
    #[error("hostlist `{list}` contains an empty host name")]
    Empty { list: String },
    #[error("hostlist `{list}`: `{name}` has characters a host name cannot have")]
    BadName { list: String, name: String },
}

fn count_text(count: u64) -> String {
    if count == u64::MAX {
        "more than 18446744073709551614".to_string()
    } else {
        count.to_string()
    }
}

/// Input as error messages quote it: whole when short, else its start and its length, so
/// a 64 KiB list does not become a 64 KiB error (or gRPC status).
fn shown(s: &str) -> String {
    const KEEP: usize = 60;
    if s.len() <= KEEP + 20 {
        return s.to_string();
    }
    let mut end = KEEP;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// One `lo-hi` of a bracket, with the zero-padding width of its first bound.
#[derive(Debug, Clone, Copy)]
struct Range {
    lo: u64,
    hi: u64,
    width: usize,
}

impl Range {
    fn len(&self) -> u64 {
        (self.hi - self.lo).saturating_add(1)
    }
    /// Characters of the longest number this range writes.
    fn max_chars(&self) -> usize {
        let digits = self.hi.checked_ilog10().unwrap_or(0) as usize + 1;
        digits.max(self.width)
    }
}

enum Segment<'a> {
    Text(&'a str),
    /// The ranges of one bracket, in order; a name takes one number from them.
    Numbers(Vec<Range>),
}

/// Expands a host list into host names, in the order written, without duplicates.
///
/// Cheap and bounded whatever the input: the list is refused beyond `MAX_LIST_LEN` bytes,
/// then parsed and counted (linear in its length) and refused if it names more than
/// `MAX_HOSTS` hosts or names longer than `MAX_NAME_LEN`, all before any name is built.
/// At most `MAX_HOSTS` names of at most `MAX_NAME_LEN` bytes are then allocated.
pub fn expand(list: &str) -> Result<Vec<String>, HostlistError> {
    let list_s = list.trim();
    if list_s.len() > MAX_LIST_LEN {
        return Err(HostlistError::TooLong {
            list: shown(list_s),
            len: list_s.len(),
        });
    }
    let parts = split_top_level(list_s).map_err(|part| HostlistError::Unbalanced {
        list: shown(list_s),
        part: shown(&part),
    })?;
    // Parse and count everything first.
    let mut parsed: Vec<Vec<Segment>> = Vec::new();
    let mut total: u64 = 0;
    for part in parts {
        let part = part.trim();
        if part.is_empty() {
            if list_s.is_empty() {
                continue;
            }
            return Err(HostlistError::Empty {
                list: shown(list_s),
            });
        }
        let segments = parse_part(list_s, part)?;
        let mut count: u64 = 1;
        let mut name_len = 0usize;
        for s in &segments {
            match s {
                Segment::Text(t) => name_len = name_len.saturating_add(t.len()),
                Segment::Numbers(ranges) => {
                    let n = ranges.iter().fold(0u64, |n, r| n.saturating_add(r.len()));
                    count = count.saturating_mul(n);
                    let w = ranges.iter().map(Range::max_chars).max().unwrap_or(0);
                    name_len = name_len.saturating_add(w);
                }
            }
        }
        if name_len > MAX_NAME_LEN {
            return Err(HostlistError::NameTooLong {
                list: shown(list_s),
                part: shown(part),
                len: name_len,
            });
        }
        total = total.saturating_add(count);
        parsed.push(segments);
    }
    if total > MAX_HOSTS as u64 {
        return Err(HostlistError::TooMany {
            list: shown(list_s),
            count: total,
        });
    }
    // At most MAX_HOSTS names now: build them.
    let mut names: Vec<String> = Vec::with_capacity(total as usize);
    for segments in &parsed {
        expand_part(segments, &mut names);
    }
    // Duplicates go, the first of each stays where it was written.
    let mut seen = std::collections::HashSet::with_capacity(names.len());
    let keep: Vec<bool> = names.iter().map(|n| seen.insert(n.as_str())).collect();
    drop(seen);
    Ok(names
        .into_iter()
        .zip(keep)
        .filter_map(|(n, k)| k.then_some(n))
        .collect())
}

/// Splits one comma-separated part (`rack[1-2]-n[01-04]`) into text and bracket segments,
/// checking every character of the text and every range.
fn parse_part<'a>(list: &str, part: &'a str) -> Result<Vec<Segment<'a>>, HostlistError> {
    let mut segments = Vec::new();
    let mut rest = part;
    while !rest.is_empty() {
        let (text, bracket) = match rest.find('[') {
            None => (rest, None),
            Some(open) => {
                let close = rest[open..].find(']').map(|c| c + open).ok_or_else(|| {
                    HostlistError::Unbalanced {
                        list: shown(list),
                        part: shown(part),
                    }
                })?;
                (&rest[..open], Some((open, close)))
            }
        };
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | ':'))
        {
            return Err(HostlistError::BadName {
                list: shown(list),
                name: shown(part),
            });
        }
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        match bracket {
            None => rest = "",
            Some((open, close)) => {
                segments.push(Segment::Numbers(parse_brackets(
                    list,
                    &rest[open + 1..close],
                )?));
                rest = &rest[close + 1..];
            }
        }
    }
    Ok(segments)
}

fn parse_brackets(list: &str, body: &str) -> Result<Vec<Range>, HostlistError> {
    let mut out = Vec::new();
    for range in body.split(',') {
        let range = range.trim();
        let bad = || HostlistError::BadRange {
            list: shown(list),
            range: shown(range),
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
                list: shown(list),
                range: shown(range),
            });
        }
        // Zero padding follows the width of the first bound, as pdsh and Slurm do.
        let width = if a.len() > 1 && a.starts_with('0') {
            a.len()
        } else {
            0
        };
        out.push(Range { lo, hi, width });
    }
    Ok(out)
}

/// Appends every name of one parsed part, the last bracket varying fastest. The caller has
/// counted them.
fn expand_part(segments: &[Segment], out: &mut Vec<String>) {
    // One odometer wheel per bracket: (index of its current range, current number).
    let mut wheels: Vec<(usize, u64)> = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Numbers(r) => r.first().map(|r| (0, r.lo)),
            Segment::Text(_) => None,
        })
        .collect();
    let brackets: Vec<&[Range]> = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Numbers(r) => Some(r.as_slice()),
            Segment::Text(_) => None,
        })
        .collect();
    if wheels.len() != brackets.len() {
        return; // an empty bracket cannot be parsed; nothing to write
    }
    loop {
        let mut name = String::new();
        let mut w = 0;
        for s in segments {
            match s {
                Segment::Text(t) => name.push_str(t),
                Segment::Numbers(ranges) => {
                    let (ri, v) = wheels[w];
                    let width = ranges[ri].width;
                    let _ = write!(name, "{v:0width$}");
                    w += 1;
                }
            }
        }
        out.push(name);
        // Advance the last wheel, carrying into the ones before it.
        let mut i = wheels.len();
        loop {
            if i == 0 {
                return;
            }
            i -= 1;
            let (ri, v) = wheels[i];
            let ranges = brackets[i];
            if v < ranges[ri].hi {
                wheels[i].1 = v + 1;
                break;
            }
            if ri + 1 < ranges.len() {
                wheels[i] = (ri + 1, ranges[ri + 1].lo);
                break;
            }
            wheels[i] = (0, ranges[0].lo);
        }
    }
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
    fn hosts_are_counted_in_total_across_the_list() {
        assert_eq!(expand("a[1-100000]").unwrap().len(), MAX_HOSTS);
        let e = expand("a[1-100000],b").unwrap_err();
        assert_eq!(
            e,
            HostlistError::TooMany {
                list: "a[1-100000],b".into(),
                count: 100_001
            }
        );
        // Duplicates count: the list writes 120,000 names even if only 60,000 differ.
        let e = expand("a[1-60000],a[1-60000]").unwrap_err();
        assert!(
            matches!(e, HostlistError::TooMany { count: 120_000, .. }),
            "{e}"
        );
        let e = expand("a[1-1000][1-1000][1-1000][1-1000][1-1000][1-1000][1-1000]").unwrap_err();
        assert!(
            e.to_string().contains(
                "names more than 18446744073709551614 hosts, more than the limit of 100000"
            ),
            "{e}"
        );
    }

    #[test]
    fn bracket_products_expand_in_written_order() {
        assert_eq!(
            expand("r[1-2]n[8-9,01]").unwrap(),
            vec!["r1n8", "r1n9", "r1n01", "r2n8", "r2n9", "r2n01"]
        );
        assert_eq!(expand("x[007]").unwrap(), vec!["x007"]);
        assert_eq!(expand("[1-3]").unwrap(), vec!["1", "2", "3"]);
        assert_eq!(
            expand(&format!("n[{}-{}]", u64::MAX - 1, u64::MAX)).unwrap(),
            vec![format!("n{}", u64::MAX - 1), format!("n{}", u64::MAX)]
        );
    }

    #[test]
    fn long_lists_and_names_are_refused_and_errors_stay_short() {
        let long = "a,".repeat(MAX_LIST_LEN / 2 + 1);
        let e = expand(&long).unwrap_err();
        assert!(matches!(e, HostlistError::TooLong { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("more than the limit of 65536 bytes") && msg.len() < 300,
            "{msg}"
        );
        let e = expand(&format!("{}[1-2]", "n".repeat(300))).unwrap_err();
        assert!(
            matches!(e, HostlistError::NameTooLong { len: 301, .. }),
            "{e}"
        );
        let e = expand(&format!("n[{}1-2]", "0".repeat(300))).unwrap_err();
        assert!(e.to_string().contains("more than the limit of 253"), "{e}");
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
