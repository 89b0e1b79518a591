//! A minimal rtnetlink client: dumps links, addresses, IPv4 policy rules and IPv4 routes.
//! The decoders are pure functions over the kernel's message bytes, tested on messages
//! built in the tests and cross-checked against `ip -j` on the live host.

use super::error::CollectError;
use crate::model::net::{AddressFamily, IpAddress, Route, RoutingFacts, RoutingRule};
use compact_str::format_compact;
use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
pub const RTM_NEWLINK: u16 = 16;
const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
pub const RTM_NEWRULE: u16 = 32;
const RTM_GETRULE: u16 = 34;

const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;

/// The kernel's local table holds only local/broadcast routes; it is never an SBR table.
pub const TABLE_LOCAL: u32 = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("netlink message {kind}: {detail}")]
pub struct DecodeError {
    pub kind: &'static str,
    pub detail: String,
}

fn derr(kind: &'static str, detail: impl Into<String>) -> DecodeError {
    DecodeError {
        kind,
        detail: detail.into(),
    }
}

/// (message type, payload) pairs.
pub type Messages = Vec<(u16, Vec<u8>)>;

/// Splits a netlink byte stream into messages; the flag says NLMSG_DONE was seen.
pub fn split_messages(mut buf: &[u8]) -> Result<(Messages, bool), DecodeError> {
    let mut out = Vec::new();
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes(buf[0..4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(buf[4..6].try_into().unwrap());
        if len < 16 || len > buf.len() {
            return Err(derr(
                "header",
                format!("length {len} with {} bytes left", buf.len()),
            ));
        }
        match ty {
            NLMSG_DONE => return Ok((out, true)),
            NLMSG_ERROR => {
                let code = if len >= 20 {
                    i32::from_ne_bytes(buf[16..20].try_into().unwrap())
                } else {
                    0
                };
                if code != 0 {
                    return Err(derr(
                        "error",
                        io::Error::from_raw_os_error(-code).to_string(),
                    ));
                }
            }
            _ => out.push((ty, buf[16..len].to_vec())),
        }
        let aligned = (len + 3) & !3;
        buf = &buf[aligned.min(buf.len())..];
    }
    Ok((out, false))
}

/// Iterates route attributes (`struct rtattr`) after a fixed header of `hdr_len` bytes.
fn attrs(payload: &[u8], hdr_len: usize) -> Result<Vec<(u16, &[u8])>, DecodeError> {
    if payload.len() < hdr_len {
        return Err(derr(
            "attributes",
            format!(
                "payload of {} bytes shorter than its {hdr_len}-byte header",
                payload.len()
            ),
        ));
    }
    let mut out = Vec::new();
    let mut b = &payload[hdr_len..];
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            return Err(derr(
                "attributes",
                format!("attribute length {len} with {} bytes left", b.len()),
            ));
        }
        out.push((ty, &b[4..len]));
        let aligned = (len + 3) & !3;
        b = &b[aligned.min(b.len())..];
    }
    Ok(out)
}

fn ip_string(family: u8, data: &[u8]) -> Result<String, DecodeError> {
    match (family, data.len()) {
        (AF_INET, 4) => Ok(Ipv4Addr::new(data[0], data[1], data[2], data[3]).to_string()),
        (AF_INET6, 16) => {
            let a: [u8; 16] = data.try_into().unwrap();
            Ok(Ipv6Addr::from(a).to_string())
        }
        _ => Err(derr(
            "address",
            format!("family {family} with {} bytes", data.len()),
        )),
    }
}

fn u32_attr(data: &[u8]) -> Option<u32> {
    data.get(0..4)
        .map(|b| u32::from_ne_bytes(b.try_into().unwrap()))
}

fn str_attr(data: &[u8]) -> String {
    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

pub fn decode_link(payload: &[u8]) -> Result<(u32, String), DecodeError> {
    if payload.len() < 16 {
        return Err(derr("link", "shorter than ifinfomsg"));
    }
    let index = u32::from_ne_bytes(payload[4..8].try_into().unwrap());
    let name = attrs(payload, 16)?
        .into_iter()
        .find(|(t, _)| *t == 3) // IFLA_IFNAME
        .map(|(_, d)| str_attr(d))
        .ok_or_else(|| derr("link", format!("index {index} has no name")))?;
    Ok((index, name))
}

pub fn decode_addr(
    payload: &[u8],
    names: &HashMap<u32, String>,
) -> Result<Option<(String, IpAddress)>, DecodeError> {
    if payload.len() < 8 {
        return Err(derr("address", "shorter than ifaddrmsg"));
    }
    let family = payload[0];
    let prefix = payload[1];
    let index = u32::from_ne_bytes(payload[4..8].try_into().unwrap());
    let a = attrs(payload, 8)?;
    // For IPv4 IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer on
    // point-to-point links); IPv6 only sends IFA_ADDRESS.
    let local = a
        .iter()
        .find(|(t, _)| *t == 2)
        .or_else(|| a.iter().find(|(t, _)| *t == 1));
    let Some((_, data)) = local else {
        return Ok(None);
    };
    let fam = match family {
        AF_INET => AddressFamily::Ipv4,
        AF_INET6 => AddressFamily::Ipv6,
        _ => return Ok(None),
    };
    let Some(name) = names.get(&index) else {
        return Ok(None);
    };
    Ok(Some((
        name.clone(),
        IpAddress {
            cidr: format_compact!("{}/{prefix}", ip_string(family, data)?),
            family: fam,
        },
    )))
}

pub fn decode_rule(payload: &[u8]) -> Result<RoutingRule, DecodeError> {
    if payload.len() < 12 {
        return Err(derr("rule", "shorter than fib_rule_hdr"));
    }
    let family = payload[0];
    let src_len = payload[2];
    let hdr_table = u32::from(payload[4]);
    let mut rule = RoutingRule {
        priority: 0,
        from: None,
        iif: None,
        oif: None,
        table: hdr_table,
    };
    for (t, d) in attrs(payload, 12)? {
        match t {
            // FRA_SRC
            2 if src_len > 0 => {
                rule.from = Some(format_compact!("{}/{src_len}", ip_string(family, d)?))
            }
            3 => rule.iif = Some(str_attr(d).into()), // FRA_IIFNAME
            6 => rule.priority = u32_attr(d).unwrap_or(0), // FRA_PRIORITY
            15 => rule.table = u32_attr(d).unwrap_or(hdr_table), // FRA_TABLE
            17 => rule.oif = Some(str_attr(d).into()), // FRA_OIFNAME
            _ => {}
        }
    }
    Ok(rule)
}

pub fn decode_route(payload: &[u8], names: &HashMap<u32, String>) -> Result<Route, DecodeError> {
    if payload.len() < 12 {
        return Err(derr("route", "shorter than rtmsg"));
    }
    let family = payload[0];
    let dst_len = payload[1];
    let hdr_table = u32::from(payload[4]);
    let mut route = Route {
        table: hdr_table,
        dst: "default".into(),
        dev: None,
        gateway: None,
        src: None,
    };
    for (t, d) in attrs(payload, 12)? {
        match t {
            1 => route.dst = format_compact!("{}/{dst_len}", ip_string(family, d)?), // RTA_DST
            4 => route.dev = u32_attr(d).and_then(|i| names.get(&i).map(Into::into)), // RTA_OIF
            5 => route.gateway = Some(ip_string(family, d)?.into()),                 // RTA_GATEWAY
            7 => route.src = Some(ip_string(family, d)?.into()),                     // RTA_PREFSRC
            15 => route.table = u32_attr(d).unwrap_or(hdr_table),                    // RTA_TABLE
            _ => {}
        }
    }
    Ok(route)
}

struct Socket(libc::c_int);

impl Drop for Socket {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn sys_err(what: &str) -> CollectError {
    CollectError::Syscall {
        what: format!("netlink {what}"),
        source: io::Error::last_os_error(),
    }
}

/// Sends one dump request and collects the reply messages.
fn dump(msg_type: u16, family: u8, hdr_len: usize) -> Result<Messages, CollectError> {
    // SAFETY: plain socket syscalls on a descriptor we own; buffers are valid for the
    // lengths passed.
    unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        );
        if fd < 0 {
            return Err(sys_err("socket"));
        }
        let sock = Socket(fd);
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        libc::setsockopt(
            sock.0,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as u32,
        );
        let total = 16 + hdr_len;
        let mut req = vec![0u8; (total + 3) & !3];
        req[0..4].copy_from_slice(&(total as u32).to_ne_bytes());
        req[4..6].copy_from_slice(&msg_type.to_ne_bytes());
        req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req[8..12].copy_from_slice(&1u32.to_ne_bytes());
        req[16] = family;
        let mut addr: libc::sockaddr_nl = std::mem::zeroed();
        addr.nl_family = libc::AF_NETLINK as u16;
        let sent = libc::sendto(
            sock.0,
            req.as_ptr() as *const libc::c_void,
            total,
            0,
            &addr as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        );
        if sent < 0 {
            return Err(sys_err("send"));
        }
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = libc::recv(sock.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0);
            if n < 0 {
                return Err(sys_err("recv"));
            }
            let (msgs, done) =
                split_messages(&buf[..n as usize]).map_err(|e| CollectError::Invalid {
                    what: "netlink reply".into(),
                    detail: e.to_string(),
                })?;
            out.extend(msgs);
            if done || n == 0 {
                return Ok(out);
            }
        }
    }
}

fn invalid(e: DecodeError) -> CollectError {
    CollectError::Invalid {
        what: "netlink reply".into(),
        detail: e.to_string(),
    }
}

/// Dumps links, addresses, IPv4 rules and IPv4 routes (all tables but `local`).
pub fn dump_routing() -> Result<RoutingFacts, CollectError> {
    let mut names = HashMap::new();
    for (t, p) in dump(RTM_GETLINK, libc::AF_UNSPEC as u8, 16)? {
        if t == RTM_NEWLINK {
            let (i, n) = decode_link(&p).map_err(invalid)?;
            names.insert(i, n);
        }
    }
    let mut facts = RoutingFacts::default();
    for (t, p) in dump(RTM_GETADDR, libc::AF_UNSPEC as u8, 8)? {
        if t == RTM_NEWADDR {
            if let Some(a) = decode_addr(&p, &names).map_err(invalid)? {
                facts.addresses.push(a);
            }
        }
    }
    for (t, p) in dump(RTM_GETRULE, AF_INET, 12)? {
        if t == RTM_NEWRULE {
            facts.rules.push(decode_rule(&p).map_err(invalid)?);
        }
    }
    for (t, p) in dump(RTM_GETROUTE, AF_INET, 12)? {
        if t == RTM_NEWROUTE {
            let r = decode_route(&p, &names).map_err(invalid)?;
            if r.table != TABLE_LOCAL {
                facts.routes.push(r);
            }
        }
    }
    Ok(facts)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a netlink message the way the kernel lays it out.
    pub fn msg(ty: u16, hdr: &[u8], attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = hdr.to_vec();
        for (t, d) in attrs {
            let len = 4 + d.len();
            body.extend_from_slice(&(len as u16).to_ne_bytes());
            body.extend_from_slice(&t.to_ne_bytes());
            body.extend_from_slice(d);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut m = Vec::new();
        m.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&[0u8; 8]);
        m.extend_from_slice(&body);
        m
    }

    fn done() -> Vec<u8> {
        msg(NLMSG_DONE, &[0, 0, 0, 0], &[])
    }

    #[test]
    fn decodes_a_source_rule_and_its_table() {
        let mut hdr = [0u8; 12];
        hdr[0] = AF_INET;
        hdr[2] = 32; // src_len
        hdr[4] = 101;
        let mut stream = msg(
            RTM_NEWRULE,
            &hdr,
            &[
                (6, &32000u32.to_ne_bytes()),
                (2, &[10, 10, 1, 11]),
                (15, &101u32.to_ne_bytes()),
            ],
        );
        stream.extend(done());
        let (msgs, fin) = split_messages(&stream).unwrap();
        assert!(fin);
        let r = decode_rule(&msgs[0].1).unwrap();
        assert_eq!(r.priority, 32000);
        assert_eq!(r.from.as_deref(), Some("10.10.1.11/32"));
        assert_eq!(r.table, 101);
    }

    #[test]
    fn decodes_routes_and_addresses_with_interface_names() {
        let names: HashMap<u32, String> = [(3, "ens1f0np0".to_string())].into();
        let mut hdr = [0u8; 12];
        hdr[0] = AF_INET;
        hdr[1] = 24;
        hdr[4] = 252;
        let m = msg(
            RTM_NEWROUTE,
            &hdr,
            &[
                (1, &[10, 10, 1, 0]),
                (4, &3u32.to_ne_bytes()),
                (15, &101u32.to_ne_bytes()),
                (7, &[10, 10, 1, 11]),
            ],
        );
        let (msgs, _) = split_messages(&m).unwrap();
        let r = decode_route(&msgs[0].1, &names).unwrap();
        assert_eq!(r.dst, "10.10.1.0/24");
        assert_eq!(r.dev.as_deref(), Some("ens1f0np0"));
        assert_eq!(r.table, 101);
        assert_eq!(r.src.as_deref(), Some("10.10.1.11"));

        let mut ah = [0u8; 8];
        ah[0] = AF_INET;
        ah[1] = 24;
        ah[4..8].copy_from_slice(&3u32.to_ne_bytes());
        let m = msg(
            RTM_NEWADDR,
            &ah,
            &[(1, &[10, 10, 1, 11]), (2, &[10, 10, 1, 11])],
        );
        let (msgs, _) = split_messages(&m).unwrap();
        let (name, a) = decode_addr(&msgs[0].1, &names).unwrap().unwrap();
        assert_eq!(name, "ens1f0np0");
        assert_eq!(a.cidr, "10.10.1.11/24");
    }

    #[test]
    fn truncated_and_error_messages_are_errors_not_panics() {
        let mut m = msg(RTM_NEWRULE, &[0u8; 12], &[(6, &[1, 2, 3, 4])]);
        m[0] = 200; // claims to be longer than it is
        assert!(split_messages(&m).is_err());
        let mut bad_attr = msg(RTM_NEWRULE, &[0u8; 12], &[(6, &[1, 2, 3, 4])]);
        bad_attr[28] = 99; // attribute length beyond the payload
        let (msgs, _) = split_messages(&bad_attr).unwrap();
        assert!(decode_rule(&msgs[0].1).is_err());
        let mut e = msg(NLMSG_ERROR, &(-libc::EPERM).to_ne_bytes(), &[]);
        e.extend(done());
        let err = split_messages(&e).unwrap_err();
        assert!(err.detail.to_lowercase().contains("not permitted"), "{err}");
        assert!(decode_route(&[1, 2, 3], &HashMap::new()).is_err());
        for n in 0..40 {
            let junk: Vec<u8> = (0..n).map(|i| (i * 37 % 251) as u8).collect();
            let _ = split_messages(&junk);
            let _ = decode_rule(&junk);
            let _ = decode_link(&junk);
        }
    }
}
