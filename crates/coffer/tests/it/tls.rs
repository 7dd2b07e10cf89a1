//! TLS: a listener with a self-signed certificate serves HTTPS to a client that trusts it,
//! and does not answer plain HTTP.

use serde_json::json;

use crate::server::{client_for, Options, TestServer, Tls};

fn self_signed() -> Tls {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("a self-signed certificate");
    Tls {
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
    }
}

#[test]
fn tls_listener_serves_https_to_a_trusting_client_and_refuses_plain_http() {
    let tls = self_signed();
    let mut server = TestServer::start_with(Options {
        tls: Some(tls.clone()),
        ..Options::default()
    });
    assert!(server.addr().starts_with("https://"));
    // The harness's client trusts the certificate: health over HTTPS.
    let health = server.get("sys/health?uninitcode=200");
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.body["initialized"], false);

    server.init(1, 1);
    server.unseal();
    server.mount_kv2("secret");
    server.write_secret("tls", json!({"v": "over https"}));
    assert_eq!(server.read_secret("tls"), json!({"v": "over https"}));

    // A client that does not trust the certificate refuses the connection.
    let untrusting = reqwest::blocking::Client::builder()
        .use_rustls_tls()
        .build()
        .unwrap();
    assert!(
        untrusting.get(server.url("sys/health")).send().is_err(),
        "a client without the certificate connected"
    );
    // A client trusting another certificate refuses it too.
    let other = client_for(Some(&self_signed()));
    assert!(other.get(server.url("sys/health")).send().is_err());

    // Plain HTTP to the TLS port gets no API answer.
    let plain_url = format!("http://127.0.0.1:{}/v1/sys/health", server.port());
    match client_for(None).get(&plain_url).send() {
        Err(_) => {}
        Ok(resp) => {
            let status = resp.status();
            let text = resp.text().unwrap_or_default();
            assert!(
                !status.is_success() && !text.contains("initialized"),
                "plain HTTP was served: {status} {text}"
            );
        }
    }
    // The server is still fine after the plain-text attempt.
    assert_eq!(server.get("sys/health").status, 200);
}
