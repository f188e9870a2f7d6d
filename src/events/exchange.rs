//! One SET sent to a push receiver (RFC 8935 §2): `POST` with `application/secevent+jwt`,
//! answered 2xx (acknowledged), 400 with an RFC 8935 §2.4 error (refused for good) or anything
//! else (worth retrying). The client uses rustls with the bundled web PKI roots for `https`,
//! as the runtime image has no CA bundle.

use std::time::Duration;

/// How long a connection to a receiver may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one exchange may take, answer included.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer's body read: a receiver's error is a small JSON object, and a
/// receiver that answers without end must not fill this process's memory.
const ANSWER_LIMIT: usize = 1024 * 1024;

/// How a delivery attempt ended.
#[derive(Debug)]
pub enum Attempt {
    Acknowledged,
    /// The receiver refused the SET for good (RFC 8935 §2.4).
    Refused(String),
    /// Worth retrying.
    Failed(String),
}

/// The HTTP client of push delivery; its connections live on the runtime it is used on.
pub struct PushClient {
    client: reqwest::Client,
}

impl PushClient {
    pub fn new() -> anyhow::Result<PushClient> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(EXCHANGE_TIMEOUT)
            .build()?;
        Ok(PushClient { client })
    }

    /// Sends one compact SET (its bytes are shared, not copied, on a retry) to `endpoint`,
    /// with the stream's `Authorization` value if it has one.
    pub async fn send(
        &self,
        endpoint: &reqwest::Url,
        authorization: Option<&str>,
        set: bytes::Bytes,
    ) -> Attempt {
        let mut request = self
            .client
            .post(endpoint.clone())
            .header("content-type", "application/secevent+jwt")
            .header("accept", "application/json")
            .body(set);
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(e) => return Attempt::Failed(e.to_string()),
        };
        let status = response.status();
        // Read to the end (bounded), so the connection goes back for the next SET.
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            if body.len() + chunk.len() > ANSWER_LIMIT {
                break;
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Attempt::Acknowledged;
        }
        if status == reqwest::StatusCode::BAD_REQUEST {
            // RFC 8935 §2.4: `{"err": …, "description": …}` is the receiver's verdict.
            let verdict = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("err").and_then(|e| e.as_str()).map(str::to_string));
            return match verdict {
                Some(err) => Attempt::Refused(err),
                None => Attempt::Failed("400 without an RFC 8935 error".into()),
            };
        }
        Attempt::Failed(format!("HTTP {}", status.as_u16()))
    }
}
