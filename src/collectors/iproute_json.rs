//! Reads the JSON that `ip -j addr show`, `ip -j rule show` and `ip -j route show table
//! all` print, into the same facts the netlink client produces. Fixture trees carry these
//! captures, and a test compares both paths on the live host.

use super::netlink::TABLE_LOCAL;
use crate::model::net::{AddressFamily, IpAddress, Route, RoutingFacts, RoutingRule};
use serde_json::Value;
use std::net::IpAddr;

type JsonError = (&'static str, String);

pub fn table_id(v: &Value) -> Option<u32> {
    match v {
        Value::String(s) => match s.as_str() {
            "local" => Some(255),
            "main" => Some(254),
            "default" => Some(253),
            "unspec" => Some(0),
            n => n.parse().ok(),
        },
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        _ => None,
    }
}

/// An address as the file spells it, checked: the error names the file and the value.
fn ip(file: &'static str, what: &str, s: &str) -> Result<IpAddr, JsonError> {
    s.parse()
        .map_err(|_| (file, format!("{what} `{s}` is not an IP address")))
}

/// `addr/len` (or `addr` with `len`, or a host prefix), checked and spelled canonically.
fn prefix(file: &'static str, what: &str, s: &str, len: Option<u64>) -> Result<String, JsonError> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (
            a,
            Some(
                l.parse::<u64>()
                    .map_err(|_| (file, format!("{what} `{s}` has a bad prefix length")))?,
            ),
        ),
        None => (s, len),
    };
    let addr = ip(file, what, a)?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let l = l.unwrap_or(max);
    if l > max {
        return Err((file, format!("{what} `{s}` has prefix length {l} > {max}")));
    }
    Ok(format!("{addr}/{l}"))
}

fn array<'a>(v: &'a Value, file: &'static str) -> Result<&'a Vec<Value>, JsonError> {
    v.as_array()
        .ok_or((file, "expected a JSON array, as `ip -j` prints".to_string()))
}

pub fn routing_from_ip_json(
    addr: &Value,
    rule: &Value,
    route: &Value,
) -> Result<RoutingFacts, JsonError> {
    let mut facts = RoutingFacts::default();
    for link in array(addr, "ip-addr.json")? {
        let name = link
            .get("ifname")
            .and_then(Value::as_str)
            .ok_or(("ip-addr.json", "an interface without `ifname`".to_string()))?;
        for a in link
            .get("addr_info")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (Some(fam), Some(local), Some(len)) = (
                a.get("family").and_then(Value::as_str),
                a.get("local").and_then(Value::as_str),
                a.get("prefixlen").and_then(Value::as_u64),
            ) else {
                return Err((
                    "ip-addr.json",
                    format!("{name}: addr_info entry without family/local/prefixlen"),
                ));
            };
            let family = match fam {
                "inet" => AddressFamily::Ipv4,
                "inet6" => AddressFamily::Ipv6,
                _ => continue,
            };
            let what = format!("{name}: address");
            let cidr = prefix("ip-addr.json", &what, local, Some(len))?;
            if ip("ip-addr.json", &what, local)?.is_ipv4() != (family == AddressFamily::Ipv4) {
                return Err((
                    "ip-addr.json",
                    format!("{what} `{local}` does not match its family {fam}"),
                ));
            }
            facts.addresses.push((
                name.to_string(),
                IpAddress {
                    cidr: cidr.into(),
                    family,
                },
            ));
        }
    }
    for r in array(rule, "ip-rule.json")? {
        let priority = r
            .get("priority")
            .and_then(Value::as_u64)
            .ok_or(("ip-rule.json", "a rule without `priority`".to_string()))?
            as u32;
        let from = match r.get("src").and_then(Value::as_str) {
            None | Some("all") => None,
            Some(s) => Some(prefix(
                "ip-rule.json",
                &format!("rule {priority}: src"),
                s,
                r.get("srclen").and_then(Value::as_u64),
            )?),
        };
        let table = r.get("table").and_then(table_id).unwrap_or(0);
        facts.rules.push(RoutingRule {
            priority,
            from: from.map(Into::into),
            iif: r.get("iif").and_then(Value::as_str).map(Into::into),
            oif: r.get("oif").and_then(Value::as_str).map(Into::into),
            table,
        });
    }
    for r in array(route, "ip-route.json")? {
        let table = r
            .get("table")
            .map(|t| table_id(t).ok_or(("ip-route.json", format!("unknown table {t}"))))
            .transpose()?
            .unwrap_or(254);
        if table == TABLE_LOCAL {
            continue;
        }
        let dst = r
            .get("dst")
            .and_then(Value::as_str)
            .ok_or(("ip-route.json", "a route without `dst`".to_string()))?;
        // IPv6 routes are out of scope (SBR is checked for IPv4), as in the netlink dump.
        if dst.contains(':') {
            continue;
        }
        let addr_of = |key: &str| {
            r.get(key)
                .and_then(Value::as_str)
                .map(|a| {
                    ip("ip-route.json", &format!("route to {dst}: {key}"), a)
                        .map(|a| compact_str::ToCompactString::to_compact_string(&a))
                })
                .transpose()
        };
        facts.routes.push(Route {
            table,
            dst: if dst == "default" {
                dst.into()
            } else {
                prefix("ip-route.json", "route dst", dst, None)?.into()
            },
            dev: r.get("dev").and_then(Value::as_str).map(Into::into),
            gateway: addr_of("gateway")?,
            src: addr_of("prefsrc")?,
        });
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_ip_json_like_iproute2_prints_it() {
        let addr = json!([{"ifindex":3,"ifname":"ens1f0np0","addr_info":[{"family":"inet","local":"10.10.1.11","prefixlen":24}]}]);
        let rule = json!([{"priority":0,"src":"all","table":"local"},{"priority":32000,"src":"10.10.1.11","table":"101"},{"priority":32766,"src":"all","table":"main"}]);
        let route = json!([{"dst":"default","gateway":"10.10.1.1","dev":"ens1f0np0","table":"101"},{"dst":"10.10.1.0/24","dev":"ens1f0np0","prefsrc":"10.10.1.11"},{"type":"local","dst":"10.10.1.11","table":"local","dev":"ens1f0np0"}]);
        let f = routing_from_ip_json(&addr, &rule, &route).unwrap();
        assert_eq!(f.addresses[0].1.cidr, "10.10.1.11/24");
        assert_eq!(f.rules[1].from.as_deref(), Some("10.10.1.11/32"));
        assert_eq!(f.rules[1].table, 101);
        assert_eq!(f.rules[2].table, 254);
        assert_eq!(f.routes.len(), 2, "local table skipped");
        assert_eq!(f.routes[1].table, 254);
    }

    #[test]
    fn addresses_are_parsed_and_a_bad_one_names_the_file_and_value() {
        let addr = |local: &str| json!([{"ifname":"ens1","addr_info":[{"family":"inet","local":local,"prefixlen":24}]}]);
        let ok = routing_from_ip_json(&addr("10.10.1.254"), &json!([]), &json!([])).unwrap();
        assert_eq!(ok.addresses[0].1.cidr, "10.10.1.254/24");
        for bad in ["10.10.1.354", "10.10.1", "fe80::1", "nonsense"] {
            let e = routing_from_ip_json(&addr(bad), &json!([]), &json!([])).unwrap_err();
            assert_eq!(e.0, "ip-addr.json", "{bad}");
            assert!(e.1.contains(&format!("`{bad}`")), "{bad}: {}", e.1);
        }
        let rule = json!([{"priority":32000,"src":"10.10.1.300","table":"101"}]);
        let e = routing_from_ip_json(&json!([]), &rule, &json!([])).unwrap_err();
        assert_eq!(e.0, "ip-rule.json");
        assert!(
            e.1.contains("`10.10.1.300` is not an IP address"),
            "{}",
            e.1
        );
        let route = json!([{"dst":"default","gateway":"10.10.1.256","dev":"ens1"}]);
        let e = routing_from_ip_json(&json!([]), &json!([]), &route).unwrap_err();
        assert_eq!(e.0, "ip-route.json");
        assert!(e.1.contains("gateway `10.10.1.256`"), "{}", e.1);
        let route = json!([{"dst":"10.10.1.0/33","dev":"ens1"}]);
        assert!(routing_from_ip_json(&json!([]), &json!([]), &route).is_err());
    }

    #[test]
    fn malformed_json_names_the_file() {
        let e = routing_from_ip_json(&json!({}), &json!([]), &json!([])).unwrap_err();
        assert_eq!(e.0, "ip-addr.json");
        let e = routing_from_ip_json(&json!([]), &json!([{"src":"all"}]), &json!([])).unwrap_err();
        assert_eq!(e.0, "ip-rule.json");
    }
}
