//! The console's Watch stream, spoken over a bare HTTP/2 connection (the `h2` crate, as
//! under tonic) instead of a tonic `Channel`.
//!
//! Why: the console holds one stream per node, 1,000 of them on a big cluster, for hours.
//! A tonic `Channel` per node costs ~90 KB of heap: a buffer task and its channel block
//! (9 KB), hyper's dispatch channel block (8.5 KB), the request encoder's 8 KB buffer kept
//! for the stream's life, and a decode buffer that grows to twice the largest message ever
//! received (32 KB after the first full snapshot) and never shrinks. Here the stream is
//! one HTTP/2 connection driven by the task that reads it: no extra task, no channel, and
//! a message is decoded straight from the HTTP/2 DATA chunk it arrived in; only a message
//! split across chunks is copied, into a buffer freed as soon as it is complete.
//!
//! Everything else (unary calls, ProbePorts, the CLI) stays on tonic (`fleet::client`).
//! The gRPC framing is the 5-byte length prefix of the gRPC-over-HTTP/2 protocol; errors
//! come back as `tonic::Status`, read from the trailers exactly as tonic reads them.

use super::client::error_chain;
use super::tls::Security;
use crate::wire::pb;
use bytes::Bytes;
use prost::Message;
use std::time::Duration;

/// The largest message accepted (as for the tonic clients).
pub const MAX_MESSAGE: usize = 64 << 20;

/// How opening or reading a Watch stream failed.
#[derive(Debug)]
pub enum WatchError {
    /// Nothing answered the TCP connect within the timeout.
    ConnectTimeout,
    /// The TCP connect failed (refused, unreachable…).
    Connect(std::io::Error),
    /// The TLS handshake or the HTTP/2 preface failed: connected, but no session.
    Handshake(String),
    /// The agent answered with a gRPC status (in headers or trailers).
    Status(tonic::Status),
    /// The HTTP/2 connection or stream failed.
    Transport(String),
    /// The agent sent bytes that are not a gRPC message of the expected type.
    Protocol(String),
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::ConnectTimeout => write!(f, "TCP connect timed out"),
            WatchError::Connect(e) => write!(f, "{e}"),
            WatchError::Handshake(s) | WatchError::Transport(s) | WatchError::Protocol(s) => {
                write!(f, "{s}")
            }
            WatchError::Status(s) => write!(f, "{s}"),
        }
    }
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// One open Watch stream and the connection under it.
pub struct WatchStream {
    conn: h2::client::Connection<Box<dyn Io>, Bytes>,
    conn_done: bool,
    body: h2::RecvStream,
    frames: Frames,
    /// Messages decoded from the last chunk, not yet returned.
    ready: std::collections::VecDeque<pb::NodeSnapshot>,
    ended: bool,
}

/// Connects to `addr` (TCP, then TLS unless `security` is plain text) and opens
/// NodeService.Watch. `timeout` bounds each step (connect, handshake, response headers).
pub async fn open(
    addr: &str,
    token: Option<&str>,
    security: &Security,
    req: &pb::WatchRequest,
    timeout: Duration,
) -> Result<WatchStream, WatchError> {
    let tcp = match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
        Err(_) => return Err(WatchError::ConnectTimeout),
        Ok(Err(e)) => return Err(WatchError::Connect(e)),
        Ok(Ok(s)) => s,
    };
    let _ = tcp.set_nodelay(true);
    let (io, scheme): (Box<dyn Io>, &str) = match security {
        Security::Plaintext => (Box::new(tcp), "http"),
        Security::Tls(tls) => {
            let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
            let s = match tokio::time::timeout(
                timeout,
                connector.connect(tls.server_name.clone(), tcp),
            )
            .await
            {
                Err(_) => {
                    return Err(WatchError::Handshake(format!(
                        "TLS handshake not completed within {} ms (agent hung or overloaded?)",
                        timeout.as_millis()
                    )));
                }
                Ok(Err(e)) => {
                    return Err(WatchError::Handshake(super::tls::explain(&error_chain(&e))));
                }
                Ok(Ok(s)) => s,
            };
            tls.record_after_handshake(s.get_ref().1)
                .map_err(WatchError::Handshake)?;
            (Box::new(s), "https")
        }
    };
    let handshake = h2::client::Builder::new()
        // The agent sends a full snapshot then small deltas: one 64 KiB window is plenty.
        .initial_window_size(65_535)
        .max_header_list_size(64 << 10)
        .handshake::<Box<dyn Io>, Bytes>(io);
    let (send, mut conn) = match tokio::time::timeout(timeout, handshake).await {
        Err(_) => {
            return Err(WatchError::Handshake(format!(
                "takes connections but no HTTP/2 answer within {} ms (agent hung or overloaded?)",
                timeout.as_millis()
            )));
        }
        Ok(Err(e)) => return Err(WatchError::Handshake(error_chain(&e))),
        Ok(Ok(x)) => x,
    };
    let mut request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("{scheme}://{addr}/axon.v1.NodeService/Watch"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header(
            "user-agent",
            concat!("axon-console/", env!("CARGO_PKG_VERSION")),
        );
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let request = request
        .body(())
        .map_err(|e| WatchError::Protocol(format!("cannot build the request: {e}")))?;
    let mut body = Vec::with_capacity(5 + req.encoded_len());
    body.push(0);
    body.extend_from_slice(&(req.encoded_len() as u32).to_be_bytes());
    req.encode(&mut body)
        .map_err(|e| WatchError::Protocol(e.to_string()))?;
    // Ready, send, and wait for the response headers, driving the connection meanwhile.
    let respond = async {
        let mut send = send.ready().await?;
        let (response, mut stream) = send.send_request(request, false)?;
        stream.send_data(Bytes::from(body), true)?;
        response.await
    };
    let response = tokio::time::timeout(timeout, async {
        tokio::pin!(respond);
        tokio::select! {
            r = &mut respond => r.map_err(|e| WatchError::Transport(error_chain(&e))),
            c = &mut conn => {
                // The connection ended before the response: report why.
                let why = match c {
                    Ok(()) => "connection closed".to_string(),
                    Err(e) => error_chain(&e),
                };
                Err(WatchError::Transport(why))
            }
        }
    })
    .await
    .map_err(|_| {
        WatchError::Handshake(format!(
            "takes connections but Watch not answered within {} ms (agent hung or overloaded?)",
            timeout.as_millis()
        ))
    })??;
    let (head, body) = response.into_parts();
    // A call refused at once (auth, bad request) is a "trailers-only" response: the
    // status is in the headers.
    if let Some(s) = tonic::Status::from_header_map(&head.headers) {
        if s.code() != tonic::Code::Ok {
            return Err(WatchError::Status(s));
        }
    }
    if head.status != http::StatusCode::OK {
        return Err(WatchError::Protocol(format!(
            "answered HTTP {} instead of a gRPC response",
            head.status
        )));
    }
    Ok(WatchStream {
        conn,
        conn_done: false,
        body,
        frames: Frames::default(),
        ready: Default::default(),
        ended: false,
    })
}

impl WatchStream {
    /// The next snapshot; `Ok(None)` when the agent ended the stream with status OK.
    pub async fn message(&mut self) -> Result<Option<pb::NodeSnapshot>, WatchError> {
        loop {
            if let Some(m) = self.ready.pop_front() {
                return Ok(Some(m));
            }
            if self.ended {
                return Ok(None);
            }
            let chunk = tokio::select! {
                biased;
                d = self.body.data() => d,
                c = &mut self.conn, if !self.conn_done => {
                    self.conn_done = true;
                    if let Err(e) = c {
                        return Err(WatchError::Transport(error_chain(&e)));
                    }
                    continue;
                }
            };
            match chunk {
                Some(Ok(data)) => {
                    let _ = self.body.flow_control().release_capacity(data.len());
                    let ready = &mut self.ready;
                    self.frames.feed(data, |m| {
                        let msg = pb::NodeSnapshot::decode(m).map_err(|e| {
                            WatchError::Protocol(format!("undecodable NodeSnapshot: {e}"))
                        })?;
                        ready.push_back(msg);
                        Ok(())
                    })?;
                }
                Some(Err(e)) => return Err(WatchError::Transport(error_chain(&e))),
                None => {
                    if self.frames.partial() {
                        return Err(WatchError::Protocol(
                            "stream ended in the middle of a message".into(),
                        ));
                    }
                    let trailers = tokio::select! {
                        biased;
                        t = self.body.trailers() => t,
                        c = &mut self.conn, if !self.conn_done => {
                            self.conn_done = true;
                            match c {
                                Err(e) => return Err(WatchError::Transport(error_chain(&e))),
                                Ok(()) => Ok(None),
                            }
                        }
                    };
                    let trailers = trailers.map_err(|e| WatchError::Transport(error_chain(&e)))?;
                    self.ended = true;
                    return match trailers.as_ref().and_then(tonic::Status::from_header_map) {
                        Some(s) if s.code() == tonic::Code::Ok => Ok(None),
                        Some(s) => Err(WatchError::Status(s)),
                        None => Err(WatchError::Protocol(
                            "stream ended without a gRPC status".into(),
                        )),
                    };
                }
            }
        }
    }
}

/// Splits gRPC length-prefixed messages out of HTTP/2 DATA chunks. A message wholly
/// inside a chunk is handed over as a slice of it; only one split across chunks is
/// copied, into a buffer sized to that message and freed once it is complete.
#[derive(Default)]
pub struct Frames {
    partial: Vec<u8>,
}

impl Frames {
    pub fn partial(&self) -> bool {
        !self.partial.is_empty()
    }

    /// Feeds one chunk; calls `each` with every message it completes, in order.
    pub fn feed(
        &mut self,
        chunk: Bytes,
        mut each: impl FnMut(&[u8]) -> Result<(), WatchError>,
    ) -> Result<(), WatchError> {
        let mut rest: &[u8] = &chunk;
        if !self.partial.is_empty() {
            // Complete the header first, then the message.
            if self.partial.len() < 5 {
                let take = (5 - self.partial.len()).min(rest.len());
                self.partial.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if self.partial.len() < 5 {
                    return Ok(());
                }
                let len = Self::header(&self.partial)?;
                self.partial.reserve_exact(len);
            }
            let len = Self::header(&self.partial)?;
            let take = (5 + len - self.partial.len()).min(rest.len());
            self.partial.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.partial.len() < 5 + len {
                return Ok(());
            }
            let whole = std::mem::take(&mut self.partial);
            each(&whole[5..])?;
        }
        while rest.len() >= 5 {
            let len = Self::header(rest)?;
            if rest.len() < 5 + len {
                break;
            }
            each(&rest[5..5 + len])?;
            rest = &rest[5 + len..];
        }
        if !rest.is_empty() {
            let want = if rest.len() >= 5 {
                5 + Self::header(rest)?
            } else {
                5
            };
            self.partial = Vec::with_capacity(want);
            self.partial.extend_from_slice(rest);
        }
        Ok(())
    }

    /// The message length from a 5-byte gRPC header, checked.
    fn header(h: &[u8]) -> Result<usize, WatchError> {
        if h[0] != 0 {
            return Err(WatchError::Protocol(format!(
                "compressed message (flag {}) though no compression was negotiated",
                h[0]
            )));
        }
        let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
        if len > MAX_MESSAGE {
            return Err(WatchError::Protocol(format!(
                "message of {len} bytes, over the {MAX_MESSAGE}-byte limit"
            )));
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(msgs: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for m in msgs {
            v.push(0);
            v.extend_from_slice(&(m.len() as u32).to_be_bytes());
            v.extend_from_slice(m);
        }
        v
    }

    fn run(chunks: &[&[u8]]) -> Result<(Vec<Vec<u8>>, bool), String> {
        let mut f = Frames::default();
        let mut out = Vec::new();
        for c in chunks {
            f.feed(Bytes::copy_from_slice(c), |m| {
                out.push(m.to_vec());
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        }
        Ok((out, f.partial()))
    }

    #[test]
    fn messages_split_anywhere_across_chunks_come_out_whole_and_in_order() {
        let a = vec![7u8; 300];
        let msgs: [&[u8]; 4] = [b"first", b"", &a, b"last one"];
        let wire = framed(&msgs);
        let want: Vec<Vec<u8>> = msgs.iter().map(|m| m.to_vec()).collect();
        // Every pair of cut points, including cuts inside headers.
        for i in 0..=wire.len() {
            for j in i..=wire.len() {
                let (out, partial) = run(&[&wire[..i], &wire[i..j], &wire[j..]]).unwrap();
                assert_eq!(out, want, "cut at {i} and {j}");
                assert!(!partial);
            }
        }
        // One byte at a time.
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(run(&bytes).unwrap().0, want);
    }

    #[test]
    fn a_truncated_message_is_left_partial_and_its_buffer_freed_once_complete() {
        let wire = framed(&[b"hello world"]);
        let mut f = Frames::default();
        let mut out = Vec::new();
        f.feed(Bytes::copy_from_slice(&wire[..8]), |m| {
            out.push(m.to_vec());
            Ok(())
        })
        .unwrap();
        assert!(f.partial() && out.is_empty());
        assert_eq!(f.partial.capacity(), wire.len(), "sized to the message");
        f.feed(Bytes::copy_from_slice(&wire[8..]), |m| {
            out.push(m.to_vec());
            Ok(())
        })
        .unwrap();
        assert_eq!(out, vec![b"hello world".to_vec()]);
        assert_eq!(f.partial.capacity(), 0, "freed");
    }

    #[test]
    fn compressed_or_oversized_messages_are_refused_before_buffering() {
        let mut wire = framed(&[b"x"]);
        wire[0] = 1;
        let e = run(&[&wire]).unwrap_err();
        assert!(e.contains("compressed"), "{e}");
        let mut huge = vec![0u8];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        let e = run(&[&huge]).unwrap_err();
        assert!(e.contains("over the 67108864-byte limit"), "{e}");
    }
}
