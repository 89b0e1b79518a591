//! Connections to agents: TCP (TLS by default, see `fleet::tls`) with a bearer token, or
//! the local unix control socket.

use crate::wire::pb;
use std::path::PathBuf;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};

#[derive(Debug, Clone)]
pub enum Target {
    Tcp {
        addr: String,
        token: Option<String>,
        security: super::tls::Security,
    },
    Unix {
        path: PathBuf,
    },
}

/// Adds the bearer token to every call, and the caller's trace context (W3C
/// `traceparent`) when its span is exported, so the agent's spans join the caller's trace.
#[derive(Clone)]
pub struct AddToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for AddToken {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(t) = &self.0 {
            req.metadata_mut().insert("authorization", t.clone());
        }
        // Called as the call starts, in the caller's task: the current span is the caller's.
        crate::telemetry::inject(
            &tracing::Span::current(),
            &mut MetadataInjector(req.metadata_mut()),
        );
        Ok(req)
    }
}

/// A request's metadata as the propagator writes it.
struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl opentelemetry::propagation::Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value),
        ) {
            self.0.insert(k, v);
        }
    }
}

pub type NodeClient =
    pb::node_service_client::NodeServiceClient<InterceptedService<Channel, AddToken>>;
pub type ControlClient =
    pb::control_service_client::ControlServiceClient<InterceptedService<Channel, AddToken>>;
pub type OperationClient =
    pb::operation_service_client::OperationServiceClient<InterceptedService<Channel, AddToken>>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{target}: {detail}")]
    Failed { target: String, detail: String },
    #[error("token is not valid header text")]
    BadToken,
}

pub type ClusterClient =
    pb::cluster_service_client::ClusterServiceClient<InterceptedService<Channel, AddToken>>;

pub type DataplaneClient =
    pb::dataplane_service_client::DataplaneServiceClient<InterceptedService<Channel, AddToken>>;

/// Chunks and manifests on the agent's gRPC port (`axon io … --direct`).
pub type DataClient =
    pb::data_service_client::DataServiceClient<InterceptedService<Channel, AddToken>>;

pub struct Clients {
    pub node: NodeClient,
    pub control: ControlClient,
    pub ops: OperationClient,
    pub cluster: ClusterClient,
    pub dataplane: DataplaneClient,
    pub data: DataClient,
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("needs the admin token ({0}); pass --token-file with the agent's admin.token")]
    NeedsAdmin(String),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Malformed(#[from] crate::wire::WireError),
}

impl Clients {
    /// ControlService.ProbePorts: probes every port of `groups` from the agent to `peers`
    /// (a host list), and decodes the report (all results).
    pub async fn probe_ports(
        &mut self,
        peers: &str,
        groups: &[String],
        timeout: Duration,
        concurrency: u32,
    ) -> Result<crate::model::probes::ProbeReport, CallError> {
        let req = pb::ProbePortsRequest {
            peers: peers.to_string(),
            groups: groups.to_vec(),
            ports: vec![],
            timeout_ms: timeout.as_millis() as u32,
            concurrency,
        };
        let rep = self
            .control
            .probe_ports(req)
            .await
            .map_err(|s| match s.code() {
                tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => {
                    CallError::NeedsAdmin(s.message().to_string())
                }
                _ => CallError::Refused(s.message().to_string()),
            })?;
        Ok(crate::model::probes::ProbeReport::try_from(
            rep.into_inner().report.unwrap_or_default(),
        )?)
    }
}

/// Connects to an inventory node over TCP; the error names the node once (see
/// `node_error`).
pub async fn connect_node(
    spec: &super::inventory::NodeSpec,
    token: Option<String>,
    security: super::tls::Security,
    timeout: Duration,
) -> Result<Clients, String> {
    let target = Target::Tcp {
        addr: spec.endpoint(),
        token,
        security,
    };
    connect(&target, timeout)
        .await
        .map_err(|e| node_error(spec, e))
}

/// A connection error of `spec` as text: a failure already names the address dialled,
/// which is the node when the node is named by its address (`--hosts`); another name is
/// put in front.
pub fn node_error(spec: &super::inventory::NodeSpec, e: ConnectError) -> String {
    match e {
        ConnectError::Failed { .. } if spec.name == spec.address => e.to_string(),
        _ => format!("{}: {e}", spec.name),
    }
}

/// Connects (lazily for TCP: the first call dials) with the given connect timeout.
pub async fn connect(target: &Target, connect_timeout: Duration) -> Result<Clients, ConnectError> {
    let (channel, token) = match target {
        Target::Tcp {
            addr,
            token,
            security,
        } => {
            let ep = Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| ConnectError::Failed {
                    target: addr.clone(),
                    detail: e.to_string(),
                })?
                .connect_timeout(connect_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(20))
                .keep_alive_timeout(Duration::from_secs(10));
            let ch = match security {
                super::tls::Security::Plaintext => {
                    ep.connect().await.map_err(|e| ConnectError::Failed {
                        target: addr.clone(),
                        detail: format!(
                            "{} (the console runs with --insecure: an agent started without it speaks TLS only)",
                            error_chain(&e)
                        ),
                    })?
                }
                super::tls::Security::Tls(tls) => {
                    let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
                    let name = tls.server_name.clone();
                    let dial = addr.clone();
                    let tls = tls.clone();
                    ep.connect_with_connector(tower::service_fn(move |_: Uri| {
                        let connector = connector.clone();
                        let name = name.clone();
                        let dial = dial.clone();
                        let tls = tls.clone();
                        async move {
                            let tcp = tokio::net::TcpStream::connect(&dial).await?;
                            tcp.set_nodelay(true)?;
                            let s = connector.connect(name, tcp).await?;
                            tls.record_after_handshake(s.get_ref().1)
                                .map_err(std::io::Error::other)?;
                            Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                        }
                    }))
                    .await
                    .map_err(|e| ConnectError::Failed {
                        target: addr.clone(),
                        detail: super::tls::explain(&error_chain(&e)),
                    })?
                }
            };
            (ch, token.clone())
        }
        Target::Unix { path } => {
            let p = path.clone();
            let ch = Endpoint::from_static("http://localhost")
                .connect_timeout(connect_timeout)
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let p = p.clone();
                    async move {
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                            tokio::net::UnixStream::connect(p).await?,
                        ))
                    }
                }))
                .await
                .map_err(|e| ConnectError::Failed {
                    target: path.display().to_string(),
                    detail: error_chain(&e),
                })?;
            (ch, None)
        }
    };
    let value = match token {
        Some(t) => Some(
            format!("Bearer {t}")
                .parse()
                .map_err(|_| ConnectError::BadToken)?,
        ),
        None => None,
    };
    let icpt = AddToken(value);
    Ok(Clients {
        node: pb::node_service_client::NodeServiceClient::with_interceptor(
            channel.clone(),
            icpt.clone(),
        )
        .max_decoding_message_size(64 << 20),
        control: pb::control_service_client::ControlServiceClient::with_interceptor(
            channel.clone(),
            icpt.clone(),
        ),
        ops: pb::operation_service_client::OperationServiceClient::with_interceptor(
            channel.clone(),
            icpt.clone(),
        )
        .max_decoding_message_size(64 << 20),
        cluster: pb::cluster_service_client::ClusterServiceClient::with_interceptor(
            channel.clone(),
            icpt.clone(),
        )
        .max_decoding_message_size(16 << 20),
        data: pb::data_service_client::DataServiceClient::with_interceptor(
            channel.clone(),
            icpt.clone(),
        )
        .max_decoding_message_size(crate::wire::chunks::DIRECT_MAX_MESSAGE)
        .max_encoding_message_size(crate::wire::chunks::DIRECT_MAX_MESSAGE),
        dataplane: pb::dataplane_service_client::DataplaneServiceClient::with_interceptor(
            channel, icpt,
        )
        .max_decoding_message_size(64 << 20),
    })
}

pub use crate::wire::error_chain;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::inventory::NodeSpec;

    fn spec(name: &str, address: &str) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            address: address.into(),
            port: 14000,
            metrics_port: 9100,
            token_file: None,
            fingerprint: None,
            ca_file: None,
        }
    }

    fn failed(spec: &NodeSpec) -> ConnectError {
        ConnectError::Failed {
            target: spec.endpoint(),
            detail: "cannot verify the certificate".into(),
        }
    }

    #[test]
    fn a_connection_error_names_the_node_once() {
        // --hosts: the node is its address, which the failure names already.
        let s = spec("127.0.1.1", "127.0.1.1");
        assert_eq!(
            node_error(&s, failed(&s)),
            "127.0.1.1:14000: cannot verify the certificate"
        );
        // An inventory name says more than the address: in front, once.
        let s = spec("axon007", "10.0.0.7");
        assert_eq!(
            node_error(&s, failed(&s)),
            "axon007: 10.0.0.7:14000: cannot verify the certificate"
        );
        // An error that names no address gets the node.
        let s = spec("127.0.1.1", "127.0.1.1");
        assert_eq!(
            node_error(&s, ConnectError::BadToken),
            "127.0.1.1: token is not valid header text"
        );
    }
}
