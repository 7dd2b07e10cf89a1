//! Transit through `Backend::handle` on in-memory storage, and OpenBao 2.7.2's own outputs
//! (`testdata/openbao-2.7.2-vectors.json`: backups, ciphertexts, signatures and HMACs made by
//! a real `bao server -dev`) restored and checked here.

use coffer_sdk::{Backend, Error, Operation, Response};
use serde_json::{json, Value};

use super::Transit;
use crate::testing::{req, MemStorage};

async fn call(
    t: &Transit,
    s: &MemStorage,
    op: Operation,
    path: &str,
    body: Value,
) -> Result<Option<Response>, Error> {
    t.handle(req(op, path, body), s).await
}

async fn ok(t: &Transit, s: &MemStorage, op: Operation, path: &str, body: Value) -> Value {
    let resp = call(t, s, op, path, body)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .unwrap_or_else(|| panic!("{path}: no response"));
    assert_eq!(resp.http_status, None, "{path}: {:?}", resp.data);
    Value::Object(resp.data.unwrap_or_default())
}

async fn bad(t: &Transit, s: &MemStorage, path: &str, body: Value) -> String {
    match call(t, s, Operation::Update, path, body).await {
        Err(Error::InvalidRequest(msg)) => msg,
        other => panic!("{path}: expected a 400, got {other:?}"),
    }
}

fn vectors() -> Value {
    serde_json::from_str(include_str!("testdata/openbao-2.7.2-vectors.json")).unwrap()
}

const PT: &str = "aGVsbG8gd29ybGQ=";

#[tokio::test]
async fn encrypt_decrypt_round_trip_with_upsert_and_rotation() {
    let (t, s) = (Transit::new(), MemStorage::default());
    let enc = ok(
        &t,
        &s,
        Operation::Update,
        "encrypt/k",
        json!({"plaintext": PT}),
    )
    .await;
    let ct = enc["ciphertext"].as_str().unwrap().to_owned();
    assert!(ct.starts_with("vault:v1:"));
    assert_eq!(enc["key_version"], 1);
    // 12-byte nonce + 11 bytes + 16-byte tag.
    assert_eq!(super::decode_b64(&ct[9..]).unwrap().len(), 12 + 11 + 16);
    let dec = ok(
        &t,
        &s,
        Operation::Update,
        "decrypt/k",
        json!({"ciphertext": ct}),
    )
    .await;
    assert_eq!(dec["plaintext"], PT);

    ok(&t, &s, Operation::Update, "keys/k/rotate", json!({})).await;
    let enc2 = ok(
        &t,
        &s,
        Operation::Update,
        "encrypt/k",
        json!({"plaintext": PT}),
    )
    .await;
    assert!(enc2["ciphertext"]
        .as_str()
        .unwrap()
        .starts_with("vault:v2:"));
    let rewrapped = ok(
        &t,
        &s,
        Operation::Update,
        "rewrap/k",
        json!({"ciphertext": ct}),
    )
    .await;
    assert!(rewrapped["ciphertext"]
        .as_str()
        .unwrap()
        .starts_with("vault:v2:"));

    ok(
        &t,
        &s,
        Operation::Update,
        "keys/k/config",
        json!({"min_decryption_version": 2}),
    )
    .await;
    assert_eq!(
        bad(&t, &s, "decrypt/k", json!({"ciphertext": ct})).await,
        "ciphertext or signature version is disallowed by policy (too old)"
    );
    // A fresh backend (another node, a restart) sees the same state from storage.
    let t2 = Transit::new();
    let key = ok(&t2, &s, Operation::Read, "keys/k", json!({})).await;
    assert_eq!(key["min_decryption_version"], 2);
    assert_eq!(
        key["keys"].as_object().unwrap().len(),
        1,
        "v1 moved to the archive"
    );
    ok(
        &t2,
        &s,
        Operation::Update,
        "keys/k/config",
        json!({"min_decryption_version": 1}),
    )
    .await;
    let dec = ok(
        &t2,
        &s,
        Operation::Update,
        "decrypt/k",
        json!({"ciphertext": ct}),
    )
    .await;
    assert_eq!(dec["plaintext"], PT);
}

#[tokio::test]
async fn bad_ciphertexts_are_400_with_openbao_texts() {
    let (t, s) = (Transit::new(), MemStorage::default());
    let ct = ok(
        &t,
        &s,
        Operation::Update,
        "encrypt/k",
        json!({"plaintext": PT}),
    )
    .await["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut raw = super::decode_b64(&ct[9..]).unwrap();
    raw[14] ^= 1;
    use base64::Engine;
    let tampered = format!(
        "vault:v1:{}",
        base64::engine::general_purpose::STANDARD.encode(&raw)
    );
    let cases = [
        (tampered.as_str(), "cipher: message authentication failed"),
        ("vault:v1:!!", "invalid ciphertext: could not decode base64"),
        ("vault:v9:AAAA", "invalid ciphertext: version is too new"),
        (
            "vault:vx:AAAA",
            "invalid ciphertext: version number could not be decoded",
        ),
        ("nope", "invalid ciphertext: no prefix"),
        ("vault:v1", "invalid ciphertext: wrong number of fields"),
        ("vault:v1:AAAA", "invalid ciphertext length"),
        (
            "vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "cipher: message authentication failed",
        ),
    ];
    for (ciphertext, want) in cases {
        assert_eq!(
            bad(&t, &s, "decrypt/k", json!({"ciphertext": ciphertext})).await,
            want,
            "{ciphertext}"
        );
    }
    assert_eq!(
        bad(&t, &s, "encrypt/k", json!({"plaintext": "!"})).await,
        "illegal base64 data at input byte 0"
    );
    assert_eq!(
        bad(&t, &s, "decrypt/none", json!({"ciphertext": ct})).await,
        "encryption key not found"
    );
    assert_eq!(
        bad(&t, &s, "decrypt/k", json!({})).await,
        "missing ciphertext to decrypt"
    );
    ok(
        &t,
        &s,
        Operation::Update,
        "keys/sig",
        json!({"type": "ed25519"}),
    )
    .await;
    assert_eq!(
        bad(&t, &s, "encrypt/sig", json!({"plaintext": PT})).await,
        "message encryption not supported for key type ed25519"
    );
    assert_eq!(
        bad(&t, &s, "sign/k", json!({"input": PT})).await,
        "key type aes256-gcm96 does not support signing"
    );
}

#[tokio::test]
async fn batches_report_per_item_errors_and_400() {
    let (t, s) = (Transit::new(), MemStorage::default());
    let resp = call(
        &t,
        &s,
        Operation::Update,
        "encrypt/k",
        json!({"batch_input": [{"plaintext": PT, "reference": "a"}, {"plaintext": "!", "reference": "b"}]}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.http_status, Some(400));
    let results = resp.data.unwrap()["batch_results"].clone();
    assert_eq!(results[0]["key_version"], 1);
    assert_eq!(results[0]["reference"], "a");
    assert_eq!(
        results[1],
        json!({"error": "illegal base64 data at input byte 0", "reference": "b"})
    );

    let ct = results[0]["ciphertext"].clone();
    let out = ok(
        &t,
        &s,
        Operation::Update,
        "decrypt/k",
        json!({"batch_input": [{"ciphertext": ct}, {"ciphertext": ct}]}),
    )
    .await;
    assert_eq!(
        out["batch_results"][1],
        json!({"plaintext": PT, "reference": ""})
    );

    let resp = call(
        &t,
        &s,
        Operation::Update,
        "decrypt/k",
        json!({"batch_input": [{"ciphertext": ct}, {"ciphertext": "x"}], "partial_failure_response_code": 207}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(resp.http_status, Some(207));
    assert_eq!(
        resp.data.unwrap()["batch_results"][1],
        json!({"plaintext": "", "error": "invalid ciphertext: no prefix", "reference": ""})
    );
    assert_eq!(
        bad(
            &t,
            &s,
            "encrypt/k",
            json!({"batch_input": [{"plaintext": PT, "context": "YQ=="}, {"plaintext": PT}]})
        )
        .await,
        "context should be set either in all the request blocks or in none"
    );
}

#[tokio::test]
async fn derived_and_convergent_keys_need_a_context_and_converge() {
    let (t, s) = (Transit::new(), MemStorage::default());
    ok(
        &t,
        &s,
        Operation::Update,
        "keys/c",
        json!({"derived": true, "convergent_encryption": true}),
    )
    .await;
    let a = ok(
        &t,
        &s,
        Operation::Update,
        "encrypt/c",
        json!({"plaintext": PT, "context": "Y3R4"}),
    )
    .await;
    let b = ok(
        &t,
        &s,
        Operation::Update,
        "encrypt/c",
        json!({"plaintext": PT, "context": "Y3R4"}),
    )
    .await;
    assert_eq!(
        a["ciphertext"], b["ciphertext"],
        "convergent: same plaintext, same ciphertext"
    );
    let other = ok(
        &t,
        &s,
        Operation::Update,
        "encrypt/c",
        json!({"plaintext": PT, "context": "b3RoZXI="}),
    )
    .await;
    assert_ne!(a["ciphertext"], other["ciphertext"]);
    let msg = bad(&t, &s, "encrypt/c", json!({"plaintext": PT})).await;
    assert!(
        msg.starts_with("missing 'context' for key derivation"),
        "{msg}"
    );
    let wrong = bad(
        &t,
        &s,
        "decrypt/c",
        json!({"ciphertext": a["ciphertext"], "context": "b3RoZXI="}),
    )
    .await;
    assert_eq!(wrong, "cipher: message authentication failed");
    assert_eq!(
        bad(&t, &s, "keys/x", json!({"convergent_encryption": true})).await,
        "convergent encryption requires derivation to be enabled"
    );
}

#[tokio::test]
async fn signatures_verify_for_every_signing_type() {
    let (t, s) = (Transit::new(), MemStorage::default());
    for (name, ty) in [
        ("e", "ed25519"),
        ("p2", "ecdsa-p256"),
        ("p3", "ecdsa-p384"),
        ("p5", "ecdsa-p521"),
        ("r", "rsa-2048"),
    ] {
        ok(
            &t,
            &s,
            Operation::Update,
            &format!("keys/{name}"),
            json!({"type": ty}),
        )
        .await;
        for extra in [
            json!({}),
            json!({"marshaling_algorithm": "jws"}),
            json!({"hash_algorithm": "sha3-384"}),
        ] {
            if ty == "rsa-2048" && extra.get("marshaling_algorithm").is_some() {
                continue;
            }
            let mut body = json!({"input": PT});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let sig = ok(
                &t,
                &s,
                Operation::Update,
                &format!("sign/{name}"),
                body.clone(),
            )
            .await;
            body["signature"] = sig["signature"].clone();
            let v = ok(
                &t,
                &s,
                Operation::Update,
                &format!("verify/{name}"),
                body.clone(),
            )
            .await;
            assert_eq!(v["valid"], true, "{ty} {extra}");
            body["input"] = json!("b3RoZXI=");
            let v = ok(&t, &s, Operation::Update, &format!("verify/{name}"), body).await;
            assert_eq!(v["valid"], false, "{ty} {extra}: other input");
        }
    }
    for alg in ["pss", "pkcs1v15"] {
        let sig = ok(
            &t,
            &s,
            Operation::Update,
            "sign/r/sha2-512",
            json!({"input": PT, "signature_algorithm": alg}),
        )
        .await;
        let v = ok(
            &t,
            &s,
            Operation::Update,
            "verify/r/sha2-512",
            json!({"input": PT, "signature_algorithm": alg, "signature": sig["signature"]}),
        )
        .await;
        assert_eq!(v["valid"], true, "{alg}");
    }
    assert_eq!(
        bad(
            &t,
            &s,
            "sign/r",
            json!({"input": PT, "hash_algorithm": "none"})
        )
        .await,
        "hash_algorithm=none requires both prehashed=true and signature_algorithm=pkcs1v15"
    );
}

#[tokio::test]
async fn hmac_generates_and_verifies_and_batches() {
    let (t, s) = (Transit::new(), MemStorage::default());
    ok(
        &t,
        &s,
        Operation::Update,
        "keys/h",
        json!({"type": "hmac", "key_size": 64}),
    )
    .await;
    let mac = ok(
        &t,
        &s,
        Operation::Update,
        "hmac/h/sha2-512",
        json!({"input": PT}),
    )
    .await;
    let mac = mac["hmac"].as_str().unwrap().to_owned();
    assert!(mac.starts_with("vault:v1:"));
    let v = ok(
        &t,
        &s,
        Operation::Update,
        "verify/h/sha2-512",
        json!({"input": PT, "hmac": mac}),
    )
    .await;
    assert_eq!(v["valid"], true);
    let v = ok(
        &t,
        &s,
        Operation::Update,
        "verify/h",
        json!({"input": PT, "hmac": mac}),
    )
    .await;
    assert_eq!(v["valid"], false, "other algorithm");
    let out = ok(
        &t,
        &s,
        Operation::Update,
        "hmac/h",
        json!({"batch_input": [{"input": PT}, {"input": "!"}]}),
    )
    .await;
    assert!(out["batch_results"][0]["hmac"].is_string());
    assert_eq!(
        out["batch_results"][1]["error"],
        "unable to decode input as base64: illegal base64 data at input byte 0"
    );
}

#[tokio::test]
async fn random_hash_and_datakey() {
    let (t, s) = (Transit::new(), MemStorage::default());
    let r = ok(
        &t,
        &s,
        Operation::Update,
        "random/16",
        json!({"format": "hex"}),
    )
    .await;
    assert_eq!(r["random_bytes"].as_str().unwrap().len(), 32);
    assert_eq!(
        bad(&t, &s, "random", json!({"bytes": 0})).await,
        "'bytes' cannot be less than 1"
    );
    let h = ok(
        &t,
        &s,
        Operation::Update,
        "hash/sha3-256",
        json!({"input": "aGVsbG8="}),
    )
    .await;
    assert_eq!(
        h["sum"],
        "3338be694f50c5f338814986cdf0686453a888b84f424d792af4b9202398f392"
    );
    assert_eq!(
        bad(&t, &s, "hash/md5", json!({"input": "aGVsbG8="})).await,
        "unsupported algorithm md5"
    );
    ok(&t, &s, Operation::Update, "keys/k", json!({})).await;
    let dk = ok(
        &t,
        &s,
        Operation::Update,
        "datakey/plaintext/k",
        json!({"bits": 512}),
    )
    .await;
    assert_eq!(
        super::decode_b64(dk["plaintext"].as_str().unwrap())
            .unwrap()
            .len(),
        64
    );
    let dec = ok(
        &t,
        &s,
        Operation::Update,
        "decrypt/k",
        json!({"ciphertext": dk["ciphertext"]}),
    )
    .await;
    assert_eq!(dec["plaintext"], dk["plaintext"]);
    let wrapped = ok(&t, &s, Operation::Update, "datakey/wrapped/k", json!({})).await;
    assert!(wrapped.get("plaintext").is_none());
}

#[tokio::test]
async fn keys_list_delete_and_export_rules() {
    let (t, s) = (Transit::new(), MemStorage::default());
    ok(&t, &s, Operation::Update, "keys/a", json!({})).await;
    ok(
        &t,
        &s,
        Operation::Update,
        "keys/b",
        json!({"type": "ecdsa-p256", "exportable": true}),
    )
    .await;
    let list = ok(&t, &s, Operation::List, "keys/", json!({})).await;
    assert_eq!(list["keys"], json!(["a", "b"]));
    assert!(matches!(
        call(&t, &s, Operation::Read, "export/encryption-key/a", json!({})).await,
        Err(Error::InvalidRequest(m)) if m == "private key material is not exportable"
    ));
    let pubkey = ok(&t, &s, Operation::Read, "export/public-key/b", json!({})).await;
    assert!(pubkey["keys"]["1"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    let private = ok(
        &t,
        &s,
        Operation::Read,
        "export/signing-key/b/latest",
        json!({}),
    )
    .await;
    assert!(private["keys"]["1"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN EC PRIVATE KEY-----"));
    assert!(matches!(
        call(&t, &s, Operation::Delete, "keys/a", json!({})).await,
        Err(Error::InvalidRequest(m)) if m.contains("deletion is not allowed")
    ));
    ok(
        &t,
        &s,
        Operation::Update,
        "keys/a/config",
        json!({"deletion_allowed": true}),
    )
    .await;
    assert!(call(&t, &s, Operation::Delete, "keys/a", json!({}))
        .await
        .unwrap()
        .is_none());
    assert!(call(&t, &s, Operation::Read, "keys/a", json!({}))
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        bad(&t, &s, "decrypt/a", json!({"ciphertext": "vault:v1:AAAA"})).await,
        "encryption key not found"
    );
}

#[tokio::test]
async fn backup_restore_round_trip_and_refusals() {
    let (t, s) = (Transit::new(), MemStorage::default());
    ok(&t, &s, Operation::Update, "keys/k", json!({})).await;
    assert!(matches!(
        call(&t, &s, Operation::Read, "backup/k", json!({})).await,
        Err(Error::InvalidRequest(_))
    ));
    ok(
        &t,
        &s,
        Operation::Update,
        "keys/k/config",
        json!({"exportable": true, "allow_plaintext_backup": true}),
    )
    .await;
    let ct = ok(
        &t,
        &s,
        Operation::Update,
        "encrypt/k",
        json!({"plaintext": PT}),
    )
    .await["ciphertext"]
        .clone();
    let backup = ok(&t, &s, Operation::Read, "backup/k", json!({})).await["backup"].clone();
    let (t2, s2) = (Transit::new(), MemStorage::default());
    assert!(call(
        &t2,
        &s2,
        Operation::Update,
        "restore/copy",
        json!({"backup": backup})
    )
    .await
    .unwrap()
    .is_none());
    let dec = ok(
        &t2,
        &s2,
        Operation::Update,
        "decrypt/copy",
        json!({"ciphertext": ct}),
    )
    .await;
    assert_eq!(dec["plaintext"], PT);
    assert_eq!(
        bad(&t2, &s2, "restore/copy", json!({"backup": backup})).await,
        "key \"copy\" already exists"
    );
    assert!(call(
        &t2,
        &s2,
        Operation::Update,
        "restore/copy",
        json!({"backup": backup, "force": true})
    )
    .await
    .unwrap()
    .is_none());
    assert_eq!(
        bad(&t2, &s2, "restore", json!({"backup": "!!"})).await,
        "invalid backup: illegal base64 data at input byte 0"
    );
    assert_eq!(
        bad(&t2, &s2, "restore", json!({"backup": "e30="})).await,
        "invalid backup: not a transit key backup"
    );
}

#[tokio::test]
async fn openbao_backups_restore_and_their_outputs_check_here() {
    let v = vectors();
    let pt = v["plaintext"].clone();
    let ctx = v["context"].clone();
    let (t, s) = (Transit::new(), MemStorage::default());
    for (name, entry) in v.as_object().unwrap() {
        if let Some(backup) = entry.get("backup") {
            assert!(
                call(
                    &t,
                    &s,
                    Operation::Update,
                    "restore",
                    json!({"backup": backup})
                )
                .await
                .unwrap()
                .is_none(),
                "{name}"
            );
        }
    }
    let dec = |key: &str, ct: &Value, extra: Value| {
        let mut body = json!({"ciphertext": ct});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        (key.to_owned(), body)
    };
    for (key, body) in [
        dec("v-aes256", &v["v-aes256"]["ct_v1"], json!({})),
        dec("v-aes256", &v["v-aes256"]["ct_v2"], json!({})),
        dec(
            "v-aes256",
            &v["v-aes256"]["ct_aad"],
            json!({"associated_data": ctx}),
        ),
        dec("v-aes128", &v["v-aes128"]["ct"], json!({})),
        dec("v-chacha", &v["v-chacha"]["ct"], json!({})),
        dec("v-conv", &v["v-conv"]["ct"], json!({"context": ctx})),
        dec("v-derived", &v["v-derived"]["ct"], json!({"context": ctx})),
        dec("v-rsa", &v["v-rsa"]["ct"], json!({})),
    ] {
        let out = ok(&t, &s, Operation::Update, &format!("decrypt/{key}"), body).await;
        assert_eq!(out["plaintext"], pt, "{key}");
    }
    // Convergent encryption here yields OpenBao's exact ciphertext.
    let enc = ok(
        &t,
        &s,
        Operation::Update,
        "encrypt/v-conv",
        json!({"plaintext": pt, "context": ctx}),
    )
    .await;
    assert_eq!(enc["ciphertext"], v["v-conv"]["ct"]);
    // HMACs are deterministic: equal to OpenBao's.
    let mac = ok(
        &t,
        &s,
        Operation::Update,
        "hmac/v-aes256",
        json!({"input": pt, "key_version": 2}),
    )
    .await;
    assert_eq!(mac["hmac"], v["v-aes256"]["hmac"]);
    let mac = ok(
        &t,
        &s,
        Operation::Update,
        "hmac/v-hmac/sha2-512",
        json!({"input": pt}),
    )
    .await;
    assert_eq!(mac["hmac"], v["v-hmac"]["hmac"]);
    // Ed25519 is deterministic too; ECDSA and RSA-PSS signatures are checked by verify.
    let sig = ok(
        &t,
        &s,
        Operation::Update,
        "sign/v-ed25519",
        json!({"input": pt}),
    )
    .await;
    assert_eq!(sig["signature"], v["v-ed25519"]["sig"]);
    let sig = ok(
        &t,
        &s,
        Operation::Update,
        "sign/v-ed-derived",
        json!({"input": pt, "context": ctx}),
    )
    .await;
    assert_eq!(sig["signature"], v["v-ed-derived"]["sig"]);
    assert_eq!(sig["public_key"], v["v-ed-derived"]["public_key"]);
    for (key, sig, extra) in [
        ("v-p256", &v["v-p256"]["sig"], json!({})),
        (
            "v-p256",
            &v["v-p256"]["sig_jws"],
            json!({"marshaling_algorithm": "jws"}),
        ),
        ("v-p521", &v["v-p521"]["sig"], json!({})),
        ("v-rsa", &v["v-rsa"]["sig"], json!({})),
        (
            "v-rsa/sha2-512",
            &v["v-rsa"]["sig_pkcs1"],
            json!({"signature_algorithm": "pkcs1v15"}),
        ),
    ] {
        let mut body = json!({"input": pt, "signature": sig});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let out = ok(&t, &s, Operation::Update, &format!("verify/{key}"), body).await;
        assert_eq!(out["valid"], true, "{key}");
    }
    // And a backup taken here holds the same key material OpenBao's did.
    let ours = ok(&t, &s, Operation::Read, "backup/v-rsa", json!({})).await["backup"].clone();
    let text = |b64: &str| String::from_utf8(super::decode_b64(b64).unwrap()).unwrap();
    let private_exponent = |json: &str| {
        let start = json.find("\"D\":").unwrap() + 4;
        json[start..].split(',').next().unwrap().to_owned()
    };
    let (ours, theirs) = (
        text(ours.as_str().unwrap()),
        text(v["v-rsa"]["backup"].as_str().unwrap()),
    );
    assert!(
        private_exponent(&ours).len() > 300,
        "the exponent is kept whole"
    );
    assert_eq!(private_exponent(&ours), private_exponent(&theirs));
    assert!(
        ours.contains(r#""time":"0001-01-01T00:00:00Z""#),
        "Go's zero time in slot 0"
    );
    let ours: super::policy::KeyData = serde_json::from_str(&ours).unwrap();
    assert_eq!(
        ours.archived_keys.unwrap().keys.len(),
        2,
        "slot 0 and version 1"
    );
}

#[tokio::test]
async fn backups_write_go_zero_time_for_the_empty_archive_slot() {
    let (t, s) = (Transit::new(), MemStorage::default());
    ok(
        &t,
        &s,
        Operation::Update,
        "keys/k",
        json!({"exportable": true, "allow_plaintext_backup": true}),
    )
    .await;
    let backup = ok(&t, &s, Operation::Read, "backup/k", json!({})).await["backup"].clone();
    let text = String::from_utf8(super::decode_b64(backup.as_str().unwrap()).unwrap()).unwrap();
    assert!(
        !text.contains(r#""time":"""#),
        "OpenBao cannot parse an empty time: {text}"
    );
    assert!(text.contains(r#""time":"0001-01-01T00:00:00Z""#));
}
