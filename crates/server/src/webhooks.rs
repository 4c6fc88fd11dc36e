//! Webhook delivery: endpoint URL checks (no private, loopback or link-local targets
//! unless allowed), HMAC-SHA256 signatures, and the HTTP POST a delivery job makes.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use engram_core::webhooks::{Delivery, MAX_URL_LEN};
use engram_core::{Error, FieldError};
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use serde_json::json;
use sha2::Sha256;

use crate::auth::Secret;

pub const SIGNATURE_HEADER: &str = "X-Honcho-Signature";
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);
/// Below the queue lease (15 s), so a slow endpoint never outlives the claim and
/// gets the event twice.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Signs every body; without it deliveries are skipped, as in the reference.
    pub secret: Option<Secret>,
    /// Permits endpoints on private, loopback and link-local addresses (tests, or
    /// a receiver on the same private network).
    pub allow_private: bool,
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            secret: None,
            allow_private: false,
            timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS),
        }
    }
}

/// `hex(HMAC-SHA256(secret, body))`, the value of `X-Honcho-Signature`.
pub fn sign(secret: &Secret, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.bytes())
        .expect("HMAC takes any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Addresses only reachable inside a host or private network.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local()
            }
        },
    }
}

fn url_error(msg: &str, url: &str) -> FieldError {
    FieldError::new(
        "value_error",
        engram_core::validate::loc(&["body", "url"]),
        format!("Value error, {msg}"),
        json!(url),
    )
    .with_ctx(json!({"error": {}}))
}

const PRIVATE: &str = "Private/internal IP addresses are not allowed";

async fn resolve(url: &Url) -> Option<Vec<SocketAddr>> {
    let host = url
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = url.port_or_known_default()?;
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(vec![SocketAddr::new(ip, port)]);
    }
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .ok()?
        .ok()?;
    Some(found.collect())
}

/// Checks an endpoint URL at registration: http(s) with a host, at most
/// `MAX_URL_LEN` long, and (unless allowed) not resolving to an internal address.
/// A name that does not resolve yet is accepted; delivery checks again.
pub async fn check_url(url: &str, allow_private: bool) -> Result<(), FieldError> {
    if url.chars().count() > MAX_URL_LEN {
        return Err(FieldError::new(
            "string_too_long",
            engram_core::validate::loc(&["body", "url"]),
            format!("String should have at most {MAX_URL_LEN} characters"),
            json!(url),
        )
        .with_ctx(json!({"max_length": MAX_URL_LEN})));
    }
    let parsed = Url::parse(url).map_err(|_| url_error("Invalid URL format", url))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(url_error("Invalid URL format", url));
    }
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(url_error("Only HTTP and HTTPS URLs are allowed", url));
    }
    if !allow_private
        && let Some(addrs) = resolve(&parsed).await
        && addrs.iter().any(|a| is_internal(a.ip()))
    {
        return Err(url_error(PRIVATE, url));
    }
    Ok(())
}

/// Sends one delivery. Connects only to the addresses that were checked, so a name
/// cannot resolve to a public address for the check and a private one for the POST.
pub async fn deliver(config: &WebhookConfig, d: &Delivery) -> Result<(), Error> {
    let Some(secret) = &config.secret else {
        tracing::warn!(event = %d.event, endpoint = %d.endpoint_id, "WEBHOOK_SECRET is not set; delivery skipped");
        return Ok(());
    };
    let url = Url::parse(&d.url).map_err(|e| Error::Internal(format!("bad endpoint URL: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| Error::Internal("endpoint URL has no host".into()))?
        .to_string();
    let addrs = resolve(&url)
        .await
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::Internal(format!("cannot resolve {host}")))?;
    if !config.allow_private && addrs.iter().any(|a| is_internal(a.ip())) {
        return Err(Error::Internal(format!(
            "{host} resolves to an internal address"
        )));
    }
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs(&host, &addrs)
        .build()
        .map_err(Error::internal)?;
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, sign(secret, d.body.as_bytes()))
        .body(d.body.clone())
        .send()
        .await
        .map_err(|e| Error::Internal(format!("delivery failed: {e}")))?;
    let status = response.status();
    if !status.is_success() {
        return Err(Error::Internal(format!("endpoint answered {status}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:4700::1111"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn urls() {
        assert!(check_url("https://93.184.216.34/hook", false).await.is_ok());
        let e = check_url("http://127.0.0.1:9/hook", false)
            .await
            .unwrap_err();
        assert_eq!(e.msg, format!("Value error, {PRIVATE}"));
        assert!(check_url("http://127.0.0.1:9/hook", true).await.is_ok());
        let e = check_url("ftp://example.com", false).await.unwrap_err();
        assert_eq!(e.msg, "Value error, Only HTTP and HTTPS URLs are allowed");
        let e = check_url("not a url", false).await.unwrap_err();
        assert_eq!(e.msg, "Value error, Invalid URL format");
    }

    #[test]
    fn signature_is_hex_hmac() {
        let s: Secret = "key".parse().unwrap();
        assert_eq!(
            sign(&s, b"The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
