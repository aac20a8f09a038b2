//! Multi-address targets: one worker spreads its Work streams over several replicas.
//!
//! Accepted forms (the same as the Python and Go SDKs):
//! * `host:port`, or a URL (`http://host:port`, `https://host:port`): one address;
//! * `host1:port1,host2:port2` (also gRPC's spelling `ipv4:a:p,b:p` / `ipv6:[a]:p,[b]:p`):
//!   a fixed list of replicas, e.g. `127.0.0.1:50052,127.0.0.1:50062` (`make up REPLICAS=2`);
//! * `dns:///name:port`: every address the name resolves to, looked up again before each
//!   stream, so replicas added or removed behind a Kubernetes headless Service are followed.
//!
//! TLS: with a CA (`WorkerBuilder::tls_ca_file`) every `host:port` entry is dialled as
//! `https://` and the server's certificate must chain to that CA; for `dns:` names it must
//! name the DNS name (not the resolved address). An `https://` URL without a CA is checked
//! against the system's roots.
//!
//! tonic has no gRPC load-balancing policies (its `balance_list` picks the less loaded of two
//! random endpoints), so the SDK balances round-robin itself at the granularity that matters
//! for a worker: each new Work stream (a reconnect, a stream the server drained) goes to the
//! next address, on a channel kept per address. A replica that is down fails that one attempt
//! at once (connection refused) and the next attempt moves on to the next address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::errors::{Error, RpcError};

enum Kind {
    /// Endpoint URIs, in the order given.
    List(Vec<String>),
    /// A name resolved before every stream.
    Dns { host: String, port: u16 },
}

/// The addresses of one worker's target and a channel per address, handed out round-robin.
pub(crate) struct Targets {
    kind: Kind,
    tls: Option<ClientTlsConfig>,
    next: AtomicUsize,
    channels: Mutex<HashMap<String, Channel>>,
}

impl Targets {
    /// Parse a target (see the module docs); `tls` makes plain `host:port` entries TLS.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an empty target or an entry that is not `host:port` or a URL.
    pub fn parse(target: &str, tls: Option<ClientTlsConfig>) -> Result<Self, Error> {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let target = target.trim();
        let invalid = |what: &str| Error::Invalid(format!("target {target:?}: {what}"));
        let kind = if let Some(rest) = target.strip_prefix("dns:") {
            // dns:[//authority]/host:port; the authority (a DNS server) is not supported.
            let name = match rest.strip_prefix("//") {
                Some(with_authority) => with_authority
                    .split_once('/')
                    .map_or(with_authority, |(_, name)| name),
                None => rest,
            };
            let (host, port) = host_port(name).ok_or_else(|| invalid("not dns:///host:port"))?;
            Kind::Dns {
                host: host.to_string(),
                port,
            }
        } else {
            let list = target
                .strip_prefix("ipv4:")
                .or_else(|| target.strip_prefix("ipv6:"))
                .unwrap_or(target);
            let mut uris = Vec::new();
            for entry in list.split(',').map(str::trim) {
                let uri = if entry.contains("://") {
                    entry.to_string()
                } else if host_port(entry).is_some() {
                    format!("{scheme}://{entry}")
                } else {
                    return Err(invalid(&format!("entry {entry:?} is not host:port")));
                };
                Endpoint::from_shared(uri.clone()).map_err(|e| invalid(&e.to_string()))?;
                uris.push(uri);
            }
            Kind::List(uris)
        };
        // A resolved address is dialled, but the certificate names the DNS name.
        let tls = match (&kind, tls) {
            (Kind::Dns { host, .. }, Some(config)) => Some(config.domain_name(host.clone())),
            (_, tls) => tls,
        };
        Ok(Self {
            kind,
            tls,
            next: AtomicUsize::new(0),
            channels: Mutex::new(HashMap::new()),
        })
    }

    /// The channel of the next address, round-robin.
    ///
    /// # Errors
    /// An UNAVAILABLE [`RpcError`] when a `dns:` name does not resolve (retried like a
    /// failed stream).
    pub async fn next_channel(&self) -> Result<(String, Channel), RpcError> {
        let resolved;
        let uris = match &self.kind {
            Kind::List(uris) => uris,
            Kind::Dns { host, port } => {
                let mut addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), *port))
                    .await
                    .map_err(|e| RpcError::unavailable(&format!("resolving {host}: {e}")))?
                    .collect();
                // Sorted, so the rotation is stable while the set of addresses is.
                addrs.sort();
                addrs.dedup();
                if addrs.is_empty() {
                    return Err(RpcError::unavailable(&format!("{host} has no address")));
                }
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                resolved = addrs.iter().map(|a| format!("{scheme}://{a}")).collect();
                &resolved
            }
        };
        let uri = uris[self.next.fetch_add(1, Ordering::Relaxed) % uris.len()].clone();
        let mut channels = self.channels.lock().expect("channel cache lock");
        if let Some(channel) = channels.get(&uri) {
            return Ok((uri, channel.clone()));
        }
        let mut endpoint = Endpoint::from_shared(uri.clone())
            .map_err(|e| RpcError::unavailable(&format!("{uri}: {e}")))?;
        if let (Some(tls), true) = (&self.tls, uri.starts_with("https://")) {
            endpoint = endpoint
                .tls_config(tls.clone())
                .map_err(|e| RpcError::unavailable(&format!("{uri}: TLS: {e}")))?;
        }
        let endpoint = endpoint
            .connect_timeout(Duration::from_secs(5))
            // Detect a vanished server within ~40 s even with no job running.
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true);
        let channel = endpoint.connect_lazy();
        channels.insert(uri.clone(), channel.clone());
        Ok((uri, channel))
    }
}

fn host_port(entry: &str) -> Option<(&str, u16)> {
    let (host, port) = entry.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(target: &str) -> Vec<String> {
        match Targets::parse(target, None).expect("valid").kind {
            Kind::List(uris) => uris,
            Kind::Dns { .. } => panic!("a list expected"),
        }
    }

    #[test]
    fn parses_every_form() {
        assert_eq!(uris("127.0.0.1:50052"), ["http://127.0.0.1:50052"]);
        assert_eq!(uris("https://leases:443"), ["https://leases:443"]);
        assert_eq!(
            uris(" 127.0.0.1:50052, 127.0.0.1:50062"),
            ["http://127.0.0.1:50052", "http://127.0.0.1:50062"]
        );
        assert_eq!(
            uris("ipv6:[::1]:50052,[::1]:50062"),
            ["http://[::1]:50052", "http://[::1]:50062"]
        );
        for dns in ["dns:///leases.orch.svc:50052", "dns:leases.orch.svc:50052"] {
            match Targets::parse(dns, None).expect("valid").kind {
                Kind::Dns { host, port } => {
                    assert_eq!((host.as_str(), port), ("leases.orch.svc", 50052))
                }
                Kind::List(_) => panic!("dns expected"),
            }
        }
        for bad in ["", "a:1,,b:2", "a:1,no-port", "dns:///no-port", "a:0"] {
            assert!(
                matches!(Targets::parse(bad, None), Err(Error::Invalid(_))),
                "{bad:?} accepted"
            );
        }
    }

    #[tokio::test]
    async fn hands_out_addresses_round_robin_and_resolves_dns_each_time() {
        let t = Targets::parse("127.0.0.1:1,127.0.0.1:2", None).expect("valid");
        let mut picked = Vec::new();
        for _ in 0..4 {
            picked.push(t.next_channel().await.expect("a channel").0);
        }
        assert_eq!(
            picked,
            [
                "http://127.0.0.1:1",
                "http://127.0.0.1:2",
                "http://127.0.0.1:1",
                "http://127.0.0.1:2"
            ]
        );
        let dns = Targets::parse("dns:///localhost:50052", None).expect("valid");
        let (uri, _) = dns.next_channel().await.expect("localhost resolves");
        assert!(uri.ends_with(":50052"), "{uri}");
    }

    #[test]
    fn a_ca_makes_plain_entries_tls() {
        let t = Targets::parse(
            "127.0.0.1:1,http://127.0.0.1:2",
            Some(ClientTlsConfig::new()),
        )
        .expect("valid");
        match t.kind {
            Kind::List(uris) => assert_eq!(uris, ["https://127.0.0.1:1", "http://127.0.0.1:2"]),
            Kind::Dns { .. } => panic!("a list expected"),
        }
    }
}
