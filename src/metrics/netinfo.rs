//! `falco.host_netinfo.*` (Falco 0.39+, stats_writer.cpp
//! add_netinfo_metrics_output_fields): per interface but `lo`, its IPv4 and
//! its IPv6 addresses, each list joined by commas, under
//! `falco.host_netinfo.interfaces.<name>.protocols.ipv4.addresses` (ipv6
//! alike). Like libsinsp (sinsp::import_ifaddr_list from libscap's
//! getifaddrs list at open) the list is read once, at start.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One interface address as getifaddrs reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfAddr {
    V4(String, Ipv4Addr),
    V6(String, Ipv6Addr),
}

/// libsinsp's sinsp_ipv6_ifinfo::addr_to_string: eight hex groups, no
/// leading zeros and no `::` compression.
fn ipv6_groups(a: &Ipv6Addr) -> String {
    let s: Vec<String> = a.segments().iter().map(|g| format!("{g:x}")).collect();
    s.join(":")
}

/// The snapshot fields, sorted by name: (key, comma-joined addresses).
pub fn fields(addrs: &[IfAddr]) -> Vec<(String, String)> {
    let mut by: BTreeMap<(String, &str), Vec<String>> = BTreeMap::new();
    for a in addrs {
        let (name, proto, text) = match a {
            IfAddr::V4(n, ip) => (n, "ipv4", ip.to_string()),
            IfAddr::V6(n, ip) => (n, "ipv6", ipv6_groups(ip)),
        };
        if name == "lo" {
            continue;
        }
        by.entry((name.clone(), proto)).or_default().push(text);
    }
    by.into_iter()
        .map(|((name, proto), list)| {
            (
                format!("falco.host_netinfo.interfaces.{name}.protocols.{proto}.addresses"),
                list.join(","),
            )
        })
        .collect()
}

/// This host's interface addresses (getifaddrs); empty when it fails.
pub fn read() -> Vec<IfAddr> {
    let mut out = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list freed below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return out;
    }
    let mut p = head;
    while !p.is_null() {
        // SAFETY: p is a node of the list getifaddrs returned.
        let ifa = unsafe { &*p };
        p = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: a NUL-terminated name and a sockaddr of the family it says.
        let name = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: ifa_addr was checked non-null; every sockaddr starts with its family.
        let family = unsafe { (*ifa.ifa_addr).sa_family };
        match i32::from(family) {
            libc::AF_INET => {
                // SAFETY: the family says this sockaddr is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                out.push(IfAddr::V4(name, ip));
            }
            libc::AF_INET6 => {
                // SAFETY: the family says this sockaddr is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IfAddr::V6(name, Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
            _ => {}
        }
    }
    // SAFETY: the list from getifaddrs, freed once.
    unsafe { libc::freeifaddrs(head) };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_per_interface_and_protocol_as_falco_joins_them() {
        let v4 = |n: &str, s: &str| IfAddr::V4(n.into(), s.parse().unwrap());
        let v6 = |n: &str, s: &str| IfAddr::V6(n.into(), s.parse().unwrap());
        let got = fields(&[
            v4("lo", "127.0.0.1"),
            v6("lo", "::1"),
            v4("eth0", "192.168.1.10"),
            v6("eth0", "fe80::a00:27ff:fe4e:66a1"),
            v4("eth0", "10.0.0.5"),
            v4("wlan0", "172.16.0.2"),
        ]);
        let k =
            |n: &str, p: &str| format!("falco.host_netinfo.interfaces.{n}.protocols.{p}.addresses");
        assert_eq!(
            got,
            [
                (k("eth0", "ipv4"), "192.168.1.10,10.0.0.5".to_string()),
                (
                    k("eth0", "ipv6"),
                    "fe80:0:0:0:a00:27ff:fe4e:66a1".to_string()
                ),
                (k("wlan0", "ipv4"), "172.16.0.2".to_string()),
            ]
        );
    }

    #[test]
    fn this_hosts_list_reads_and_leaves_out_loopback() {
        let addrs = read();
        assert!(fields(&addrs).iter().all(|(k, _)| !k.contains(".lo.")));
    }
}
