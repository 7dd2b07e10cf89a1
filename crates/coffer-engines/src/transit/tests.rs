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

/// The archive of `name` as stored: (archive_min_version from the policy, archived entries).
async fn stored_archive(s: &MemStorage, name: &str) -> (i64, Vec<Value>) {
    use coffer_sdk::Storage;
    let policy: Value =
        serde_json::from_slice(&s.get(&format!("policy/{name}")).await.unwrap().unwrap()).unwrap();
    let archive: Value =
        serde_json::from_slice(&s.get(&format!("archive/{name}")).await.unwrap().unwrap()).unwrap();
    (
        policy["archive_min_version"].as_i64().unwrap(),
        archive["keys"].as_array().unwrap().clone(),
    )
}

#[tokio::test]
async fn trim_follows_openbao_rules_and_drops_archived_versions() {
    let (t, s) = (Transit::new(), MemStorage::default());
    ok(&t, &s, Operation::Update, "keys/k", json!({})).await;
    for _ in 0..4 {
        ok(&t, &s, Operation::Update, "keys/k/rotate", json!({})).await;
    }
    let v1 = ok(
        &t,
        &s,
        Operation::Update,
        "encrypt/k",
        json!({"plaintext": PT, "key_version": 1}),
    )
    .await["ciphertext"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        bad(
            &t,
            &s,
            "keys/nope/trim",
            json!({"min_available_version": 1})
        )
        .await,
        "invalid key name"
    );
    assert_eq!(
        bad(&t, &s, "keys/k/trim", json!({})).await,
        "missing min_available_version"
    );
    assert_eq!(
        bad(&t, &s, "keys/k/trim", json!({"min_available_version": 1})).await,
        "minimum available version cannot be set when minimum encryption version is not set"
    );
    assert!(
        bad(&t, &s, "keys/k/trim", json!({"min_available_version": "x"}))
            .await
            .starts_with("Field validation failed: error converting input for field")
    );
    ok(
        &t,
        &s,
        Operation::Update,
        "keys/k/config",
        json!({"min_decryption_version": 3, "min_encryption_version": 4}),
    )
    .await;
    for (v, msg) in [
        (
            4,
            "minimum available version cannot be greater than minimum decryption version",
        ),
        (0, "minimum available version should be positive"),
        (-1, "minimum available version cannot be decremented"),
    ] {
        assert_eq!(
            bad(&t, &s, "keys/k/trim", json!({"min_available_version": v})).await,
            msg
        );
    }
    let (min, archived) = stored_archive(&s, "k").await;
    assert_eq!((min, archived.len()), (0, 6), "slot 0 and versions 1 to 5");

    let key = ok(
        &t,
        &s,
        Operation::Update,
        "keys/k/trim",
        json!({"min_available_version": 3}),
    )
    .await;
    assert_eq!(key["min_available_version"], 3);
    let (min, archived) = stored_archive(&s, "k").await;
    assert_eq!((min, archived.len()), (3, 3), "versions 1 and 2 are gone");
    assert_eq!(
        bad(&t, &s, "keys/k/trim", json!({"min_available_version": 2})).await,
        "minimum available version cannot be decremented"
    );
    assert_eq!(
        bad(
            &t,
            &s,
            "keys/k/config",
            json!({"min_decryption_version": 2})
        )
        .await,
        "min decryption version should not be less then min available version"
    );
    // Version 1 is gone for good: its ciphertexts can never be decrypted again.
    assert_eq!(
        bad(&t, &s, "decrypt/k", json!({"ciphertext": v1})).await,
        "ciphertext or signature version is disallowed by policy (too old)"
    );
    // The archive stays consistent: a fresh node moves version 3 back and forth, and a
    // rotation appends version 6 after the trimmed archive.
    let t2 = Transit::new();
    ok(
        &t2,
        &s,
        Operation::Update,
        "keys/k/config",
        json!({"min_decryption_version": 4}),
    )
    .await;
    ok(
        &t2,
        &s,
        Operation::Update,
        "keys/k/config",
        json!({"min_decryption_version": 3}),
    )
    .await;
    ok(&t2, &s, Operation::Update, "keys/k/rotate", json!({})).await;
    let (_, archived) = stored_archive(&s, "k").await;
    assert_eq!(archived.len(), 4);
    let key = ok(&t2, &s, Operation::Read, "keys/k", json!({})).await;
    assert_eq!(
        key["keys"].as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["3", "4", "5", "6"]
    );
}

#[tokio::test]
async fn soft_delete_blocks_use_until_restored() {
    let (t, s) = (Transit::new(), MemStorage::default());
    ok(&t, &s, Operation::Update, "keys/k", json!({})).await;
    let ct = ok(
        &t,
        &s,
        Operation::Update,
        "encrypt/k",
        json!({"plaintext": PT}),
    )
    .await["ciphertext"]
        .clone();
    let resp = call(&t, &s, Operation::Delete, "keys/k/soft-delete", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert!(resp.warnings.is_empty());
    assert_eq!(resp.data.unwrap()["soft_deleted"], true);
    let again = call(&t, &s, Operation::Delete, "keys/k/soft-delete", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.warnings,
        vec!["key was already marked as soft deleted"]
    );
    for (path, body) in [
        ("encrypt/k", json!({"plaintext": PT})),
        ("decrypt/k", json!({"ciphertext": ct})),
        ("hmac/k", json!({"input": PT})),
        ("keys/k/rotate", json!({})),
    ] {
        assert_eq!(
            bad(&t, &s, path, body).await,
            "refusing to use soft-deleted key",
            "{path}"
        );
    }
    // The state is stored: another node sees it.
    let t2 = Transit::new();
    assert_eq!(
        ok(&t2, &s, Operation::Read, "keys/k", json!({})).await["soft_deleted"],
        true
    );
    let restored = ok(
        &t2,
        &s,
        Operation::Update,
        "keys/k/soft-delete-restore",
        json!({}),
    )
    .await;
    assert_eq!(restored["soft_deleted"], false);
    let dec = ok(
        &t2,
        &s,
        Operation::Update,
        "decrypt/k",
        json!({"ciphertext": ct}),
    )
    .await;
    assert_eq!(dec["plaintext"], PT);
    let again = call(
        &t2,
        &s,
        Operation::Update,
        "keys/k/soft-delete-restore",
        json!({}),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(again.warnings, vec!["key was already restored"]);
    // A key that does not exist: nothing happens, no error (OpenBao's 204).
    assert!(call(
        &t,
        &s,
        Operation::Delete,
        "keys/nope/soft-delete",
        json!({})
    )
    .await
    .unwrap()
    .is_none());
    assert!(!s.keys().iter().any(|k| k.ends_with("/nope")));
}

/// Stores a fixed RSA-4096 wrapping key, as the mount would generate on first use, so the
/// tests do not wait for a 4096-bit key generation in a debug build.
async fn seed_wrapping_key(t: &Transit, s: &MemStorage) {
    use super::policy::{go_rsa_private, KeyEntry, KeyType, Policy};
    use rsa::pkcs8::DecodePrivateKey;
    let key = rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("testdata/wrapping-key-rsa4096.pem"))
        .unwrap();
    let entry = KeyEntry {
        rsa_key: Some(go_rsa_private(&key).unwrap()),
        creation_time: 1,
        ..KeyEntry::default()
    };
    let policy = Policy {
        name: "import/wrapping-key".to_owned(),
        key_type: KeyType::Rsa4096.code(),
        latest_version: 1,
        min_decryption_version: 1,
        keys: [("1".to_owned(), entry)].into_iter().collect(),
        ..Policy::default()
    };
    t.persist(s, policy).await.unwrap();
}

/// `target` wrapped for the mount as OpenBao's BYOK format wants it: RSA-OAEP(SHA-256) of an
/// ephemeral AES-256 key, then AES-KWP of the target under it.
async fn wrap_for_import(t: &Transit, s: &MemStorage, target: &[u8]) -> String {
    use aes_kw::KeyInit;
    use base64::Engine;
    use rand::RngCore;
    use rsa::pkcs8::DecodePublicKey;
    let pem = ok(t, s, Operation::Read, "wrapping_key", json!({})).await["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n") && pem.ends_with("-----\n"));
    let public = rsa::RsaPublicKey::from_public_key_pem(&pem).unwrap();
    let mut ephemeral = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut ephemeral);
    let mut blob = public
        .encrypt(
            &mut rand::rngs::OsRng,
            rsa::Oaep::new::<sha2::Sha256>(),
            &ephemeral,
        )
        .unwrap();
    let kwp = aes_kw::KwpAes256::new_from_slice(&ephemeral).unwrap();
    let mut buf = vec![0u8; target.len().div_ceil(8) * 8 + 8];
    blob.extend_from_slice(kwp.wrap_key(target, &mut buf).unwrap());
    base64::engine::general_purpose::STANDARD.encode(blob)
}

#[tokio::test]
async fn wrapping_key_is_created_once_and_listed_as_openbao_does() {
    let (t, s) = (Transit::new(), MemStorage::default());
    seed_wrapping_key(&t, &s).await;
    let first = ok(&t, &s, Operation::Read, "wrapping_key", json!({})).await;
    let second = ok(
        &Transit::new(),
        &s,
        Operation::Read,
        "wrapping_key",
        json!({}),
    )
    .await;
    assert_eq!(first, second);
    let listed = ok(&t, &s, Operation::List, "keys", json!({})).await;
    assert_eq!(listed["keys"], json!(["import/"]));
}

#[tokio::test]
async fn imported_aes_key_decrypts_what_was_encrypted_outside() {
    use aes_gcm::aead::{Aead, KeyInit};
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (t, s) = (Transit::new(), MemStorage::default());
    seed_wrapping_key(&t, &s).await;
    let raw = [42u8; 32];
    let wrapped = wrap_for_import(&t, &s, &raw).await;
    let resp = call(
        &t,
        &s,
        Operation::Update,
        "keys/byok/import",
        json!({"ciphertext": wrapped}),
    )
    .await
    .unwrap();
    assert!(resp.is_none(), "204 as OpenBao");
    // Encrypted by someone else with the same key: nonce | ciphertext | tag.
    let nonce = [9u8; 12];
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&raw).unwrap();
    let mut body = nonce.to_vec();
    body.extend(cipher.encrypt(&nonce.into(), &b"outside"[..]).unwrap());
    let dec = ok(
        &t,
        &s,
        Operation::Update,
        "decrypt/byok",
        json!({"ciphertext": format!("vault:v1:{}", b64(&body))}),
    )
    .await;
    assert_eq!(dec["plaintext"], b64(b"outside"));
    let key = ok(&t, &s, Operation::Read, "keys/byok", json!({})).await;
    assert_eq!(key["imported_key"], true);
    assert_eq!(key["imported_key_allow_rotation"], false);
    assert_eq!(
        bad(&t, &s, "keys/byok/rotate", json!({})).await,
        "imported key byok does not allow rotation within Vault"
    );
    // A second version of the same imported key.
    let raw2 = [43u8; 32];
    let wrapped = wrap_for_import(&t, &s, &raw2).await;
    ok_none(
        &t,
        &s,
        "keys/byok/import_version",
        json!({"ciphertext": wrapped}),
    )
    .await;
    let enc = ok(
        &t,
        &s,
        Operation::Update,
        "encrypt/byok",
        json!({"plaintext": PT}),
    )
    .await;
    assert!(enc["ciphertext"].as_str().unwrap().starts_with("vault:v2:"));
    let sealed = super::decode_b64(&enc["ciphertext"].as_str().unwrap()[9..]).unwrap();
    let cipher2 = aes_gcm::Aes256Gcm::new_from_slice(&raw2).unwrap();
    let opened = cipher2
        .decrypt(sealed[..12].into(), &sealed[12..])
        .expect("version 2 is the imported key");
    assert_eq!(opened, b"hello world");
}

async fn ok_none(t: &Transit, s: &MemStorage, path: &str, body: Value) {
    let resp = call(t, s, Operation::Update, path, body)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(resp.is_none(), "{path}: expected no content");
}

#[tokio::test]
async fn import_refusals_carry_openbao_texts() {
    let (t, s) = (Transit::new(), MemStorage::default());
    seed_wrapping_key(&t, &s).await;
    let wrapped = wrap_for_import(&t, &s, &[1u8; 32]).await;
    for (body, msg) in [
        (
            json!({"ciphertext": wrapped, "convergent_encryption": false}),
            "import cannot be used on keys with convergent encryption enabled",
        ),
        (
            json!({"ciphertext": wrapped, "auto_rotate_period": "2h"}),
            "allow_rotation must be set to true if auto-rotation is enabled",
        ),
        (
            json!({"ciphertext": wrapped, "type": "foo"}),
            "unknown key type: foo",
        ),
        (
            json!({"ciphertext": wrapped, "hash_function": "md5"}),
            "unknown hash function: md5",
        ),
        (
            json!({"ciphertext": "AAAA"}),
            "provided ciphertext is too short",
        ),
        (
            json!({"ciphertext": "!!"}),
            "illegal base64 data at input byte 0",
        ),
        (
            json!({"ciphertext": wrapped, "hash_function": "sha1"}),
            "crypto/rsa: decryption error",
        ),
        (
            json!({"ciphertext": wrapped, "type": "aes128-gcm96"}),
            "error importing key: invalid key size 32 bytes for key type aes128-gcm96",
        ),
        (
            json!({}),
            "provided type does not support public_key import",
        ),
        (
            json!({"ciphertext": wrapped, "type": "ecdsa-p256"}),
            "error importing key: error parsing asymmetric key: asn1: structure error: ",
        ),
        (
            json!({"public_key": "nope", "type": "ecdsa-p256"}),
            "error importing key: error parsing public key: not in PEM format",
        ),
    ] {
        let got = bad(&t, &s, "keys/x/import", body.clone()).await;
        assert!(got.starts_with(msg), "{body}: {got}");
    }
    // A wrapped blob whose KWP part was tampered with.
    use base64::Engine;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut blob = engine.decode(&wrapped).unwrap();
    let last = blob.len() - 1;
    blob[last] ^= 1;
    assert_eq!(
        bad(
            &t,
            &s,
            "keys/x/import",
            json!({"ciphertext": engine.encode(&blob)})
        )
        .await,
        "kwp: unwrap failed integrity check"
    );
    blob.truncate(blob.len() - 4);
    assert_eq!(
        bad(
            &t,
            &s,
            "keys/x/import",
            json!({"ciphertext": engine.encode(&blob)})
        )
        .await,
        "kwp: wrapped key size must be a multiple of 8 bytes"
    );
    assert!(
        !s.keys().iter().any(|k| k.ends_with("/x")),
        "nothing stored"
    );
    ok(&t, &s, Operation::Update, "keys/gen", json!({})).await;
    assert_eq!(
        bad(&t, &s, "keys/gen/import", json!({"ciphertext": wrapped})).await,
        "the import path cannot be used with an existing key; use import-version to rotate an \
         existing imported key"
    );
    assert_eq!(
        bad(
            &t,
            &s,
            "keys/gen/import_version",
            json!({"ciphertext": wrapped})
        )
        .await,
        "the import_version endpoint can only be used with an imported key"
    );
    assert_eq!(
        bad(
            &t,
            &s,
            "keys/none/import_version",
            json!({"ciphertext": wrapped})
        )
        .await,
        "no key found with name none; to import a new key, use the import/ endpoint"
    );
}

#[tokio::test]
async fn imported_ed25519_public_key_verifies_then_gets_its_private_part() {
    use base64::Engine;
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
    use ed25519_dalek::Signer;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (t, s) = (Transit::new(), MemStorage::default());
    seed_wrapping_key(&t, &s).await;
    let outside = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]);
    let public_pem = outside
        .verifying_key()
        .to_public_key_pem(Default::default())
        .unwrap();
    ok_none(
        &t,
        &s,
        "keys/ed/import",
        json!({"type": "ed25519", "public_key": public_pem}),
    )
    .await;
    let sig = format!("vault:v1:{}", b64(&outside.sign(b"hello").to_bytes()));
    let verified = ok(
        &t,
        &s,
        Operation::Update,
        "verify/ed",
        json!({"input": b64(b"hello"), "signature": sig}),
    )
    .await;
    assert_eq!(verified["valid"], true);
    assert_eq!(
        bad(&t, &s, "sign/ed", json!({"input": b64(b"hello")})).await,
        "requested version for signing does not contain a private part"
    );
    let key = ok(&t, &s, Operation::Read, "keys/ed", json!({})).await;
    assert_eq!(
        key["keys"]["1"]["public_key"],
        b64(outside.verifying_key().as_bytes())
    );
    // A public key cannot replace a public key; the matching private key completes it.
    assert_eq!(
        bad(
            &t,
            &s,
            "keys/ed/import_version",
            json!({"public_key": public_pem, "version": 1})
        )
        .await,
        "cannot add a public key to a key version that already has a public key set"
    );
    let other = ed25519_dalek::SigningKey::from_bytes(&[6u8; 32]);
    let wrapped_other = wrap_for_import(&t, &s, other.to_pkcs8_der().unwrap().as_bytes()).await;
    assert_eq!(
        bad(
            &t,
            &s,
            "keys/ed/import_version",
            json!({"ciphertext": wrapped_other, "version": 1})
        )
        .await,
        "cannot import key, key pair does not match"
    );
    let wrapped = wrap_for_import(&t, &s, outside.to_pkcs8_der().unwrap().as_bytes()).await;
    ok_none(
        &t,
        &s,
        "keys/ed/import_version",
        json!({"ciphertext": wrapped, "version": 1}),
    )
    .await;
    assert_eq!(
        bad(
            &t,
            &s,
            "keys/ed/import_version",
            json!({"ciphertext": wrapped, "version": 1})
        )
        .await,
        "private key imported, key version cannot be updated"
    );
    let signed = ok(
        &t,
        &s,
        Operation::Update,
        "sign/ed",
        json!({"input": b64(b"hello")}),
    )
    .await;
    assert_eq!(
        signed["signature"], sig,
        "ed25519 signatures are deterministic"
    );
    // The private part reached the archive too: it survives a trip through it.
    ok_none(
        &t,
        &s,
        "keys/ed/import_version",
        json!({"ciphertext": wrapped_other}),
    )
    .await;
    for v in [2, 1] {
        ok(
            &t,
            &s,
            Operation::Update,
            "keys/ed/config",
            json!({"min_decryption_version": v}),
        )
        .await;
    }
    let signed = ok(
        &Transit::new(),
        &s,
        Operation::Update,
        "sign/ed",
        json!({"input": b64(b"hello"), "key_version": 1}),
    )
    .await;
    assert_eq!(signed["signature"], sig);
}

#[tokio::test]
async fn imported_ecdsa_and_hmac_keys_work_with_outside_tools() {
    use base64::Engine;
    use p256::ecdsa::signature::Signer;
    use p256::pkcs8::EncodePrivateKey;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (t, s) = (Transit::new(), MemStorage::default());
    seed_wrapping_key(&t, &s).await;
    let secret = p256::SecretKey::from_slice(&[7u8; 32]).unwrap();
    let wrapped = wrap_for_import(&t, &s, secret.to_pkcs8_der().unwrap().as_bytes()).await;
    assert_eq!(
        bad(
            &t,
            &s,
            "keys/ec/import",
            json!({"ciphertext": wrapped, "type": "ecdsa-p384"})
        )
        .await,
        "error importing key: invalid curve: expected P-384, got P-256"
    );
    assert_eq!(
        bad(
            &t,
            &s,
            "keys/ec/import",
            json!({"ciphertext": wrapped, "type": "ed25519"})
        )
        .await,
        "error importing key: invalid key type: expected ed25519, got *ecdsa.PrivateKey"
    );
    ok_none(
        &t,
        &s,
        "keys/ec/import",
        json!({"ciphertext": wrapped, "type": "ecdsa-p256", "exportable": true}),
    )
    .await;
    let signing = p256::ecdsa::SigningKey::from(&secret);
    let sig: p256::ecdsa::Signature = signing.sign(b"data");
    let verified = ok(
        &t,
        &s,
        Operation::Update,
        "verify/ec",
        json!({"input": b64(b"data"), "signature": format!("vault:v1:{}", b64(sig.to_der().as_bytes()))}),
    )
    .await;
    assert_eq!(verified["valid"], true);
    let exported = ok(
        &t,
        &s,
        Operation::Read,
        "export/signing-key/ec/1",
        json!({"format": "der"}),
    )
    .await;
    assert_eq!(
        exported["keys"]["1"],
        b64(secret.to_pkcs8_der().unwrap().as_bytes())
    );

    let mac_key = [3u8; 40];
    let wrapped = wrap_for_import(&t, &s, &mac_key).await;
    ok_none(
        &t,
        &s,
        "keys/mac/import",
        json!({"ciphertext": wrapped, "type": "hmac"}),
    )
    .await;
    let key = ok(&t, &s, Operation::Read, "keys/mac", json!({})).await;
    assert_eq!(key["key_size"], 40);
    let mac = ok(
        &t,
        &s,
        Operation::Update,
        "hmac/mac",
        json!({"input": b64(b"m")}),
    )
    .await;
    use hmac::Mac;
    let mut expected = hmac::Hmac::<sha2::Sha256>::new_from_slice(&mac_key).unwrap();
    expected.update(b"m");
    assert_eq!(
        mac["hmac"],
        format!("vault:v1:{}", b64(&expected.finalize().into_bytes()))
    );
}

#[tokio::test]
async fn names_outside_openbao_pattern_are_no_path_and_an_empty_list_is_not_found() {
    let (t, s) = (Transit::new(), MemStorage::default());
    assert!(call(&t, &s, Operation::List, "keys", json!({}))
        .await
        .unwrap()
        .is_none());
    for path in [
        "keys/-bad",
        "encrypt/a@b",
        "keys/x./import",
        "sign/_ok-",
        "keys/.x/trim",
    ] {
        match call(&t, &s, Operation::Update, path, json!({"plaintext": PT})).await {
            Err(Error::UnsupportedPath(_)) => {}
            other => panic!("{path}: expected no path, got {other:?}"),
        }
    }
    ok(&t, &s, Operation::Update, "keys/a.b_c-d", json!({})).await;
    ok(&t, &s, Operation::Update, "keys/_", json!({})).await;
    // An existing key comes back as it is, without OpenBao's source's "already existed".
    let again = call(&t, &s, Operation::Update, "keys/_", json!({}))
        .await
        .unwrap()
        .unwrap();
    assert!(again.warnings.is_empty());
}

#[tokio::test]
async fn byok_export_moves_keys_wrapped_between_mounts() {
    let (a, sa) = (Transit::new(), MemStorage::default());
    let (b, sb) = (Transit::new(), MemStorage::default());
    seed_wrapping_key(&b, &sb).await;
    // B's wrapping key becomes an RSA public key of A: the destination of the export.
    let pem = ok(&b, &sb, Operation::Read, "wrapping_key", json!({})).await["public_key"].clone();
    ok_none(
        &a,
        &sa,
        "keys/to-b/import",
        json!({"type": "rsa-4096", "public_key": pem}),
    )
    .await;
    ok(
        &a,
        &sa,
        Operation::Update,
        "keys/k",
        json!({"exportable": true}),
    )
    .await;
    ok(&a, &sa, Operation::Update, "keys/k/rotate", json!({})).await;
    ok(
        &a,
        &sa,
        Operation::Update,
        "keys/e",
        json!({"type": "ed25519", "exportable": true}),
    )
    .await;
    ok(&a, &sa, Operation::Update, "keys/plain", json!({})).await;

    let all = ok(&a, &sa, Operation::Read, "byok-export/to-b/k", json!({})).await;
    assert_eq!(all["name"], "k");
    assert_eq!(all["type"], "aes256-gcm96");
    assert_eq!(
        all["keys"].as_object().unwrap().keys().collect::<Vec<_>>(),
        vec!["1", "2"]
    );
    let latest = ok(
        &a,
        &sa,
        Operation::Read,
        "byok-export/to-b/k/latest",
        json!({"hash": "sha512"}),
    )
    .await;
    ok_none(
        &b,
        &sb,
        "keys/k/import",
        json!({"ciphertext": latest["keys"]["2"], "hash_function": "SHA512"}),
    )
    .await;
    let ct = ok(
        &a,
        &sa,
        Operation::Update,
        "encrypt/k",
        json!({"plaintext": PT}),
    )
    .await["ciphertext"]
        .as_str()
        .unwrap()
        .replace("vault:v2:", "vault:v1:");
    let dec = ok(
        &b,
        &sb,
        Operation::Update,
        "decrypt/k",
        json!({"ciphertext": ct}),
    )
    .await;
    assert_eq!(dec["plaintext"], PT, "B holds A's version 2");

    let e = ok(&a, &sa, Operation::Read, "byok-export/to-b/e/1", json!({})).await;
    ok_none(
        &b,
        &sb,
        "keys/e/import",
        json!({"ciphertext": e["keys"]["1"], "type": "ed25519"}),
    )
    .await;
    let sign = |t, s| ok(t, s, Operation::Update, "sign/e", json!({"input": PT}));
    assert_eq!(
        sign(&a, &sa).await["signature"],
        sign(&b, &sb).await["signature"]
    );

    for (path, msg) in [
        ("byok-export/nope/k", "no such destination key to export to"),
        ("byok-export/to-b/nope", "no such source key for export"),
        ("byok-export/to-b/plain", "key is not exportable"),
        (
            "byok-export/k/e",
            "key wrapping (requring message signing) is not supported for key type aes256-gcm96",
        ),
        (
            "byok-export/e/k",
            "unsupported key type in use; must be a rsa key",
        ),
        ("byok-export/to-b/k/x", "invalid key version"),
        (
            "byok-export/to-b/k/3",
            "version does not exist or cannot be found",
        ),
    ] {
        match call(&a, &sa, Operation::Read, path, json!({})).await {
            Err(Error::InvalidRequest(got)) => assert_eq!(got, msg, "{path}"),
            other => panic!("{path}: expected a 400, got {other:?}"),
        }
    }
    match call(
        &a,
        &sa,
        Operation::Read,
        "byok-export/to-b/k",
        json!({"hash": "md5"}),
    )
    .await
    {
        Err(Error::InvalidRequest(got)) => assert_eq!(got, "unknown hash function: md5"),
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[tokio::test]
async fn config_keys_disable_upsert_stops_encrypt_creating_keys() {
    let (t, s) = (Transit::new(), MemStorage::default());
    let read = ok(&t, &s, Operation::Read, "config/keys", json!({})).await;
    assert_eq!(read, json!({"disable_upsert": false}));
    ok(
        &t,
        &s,
        Operation::Update,
        "config/keys",
        json!({"disable_upsert": true}),
    )
    .await;
    ok(&t, &s, Operation::Update, "keys/there", json!({})).await;
    // Another node reads the setting from storage.
    let t2 = Transit::new();
    assert_eq!(
        bad(&t2, &s, "encrypt/new", json!({"plaintext": PT})).await,
        "encryption key not found"
    );
    assert_eq!(
        bad(
            &t2,
            &s,
            "encrypt/new",
            json!({"plaintext": PT, "type": "foo"})
        )
        .await,
        "unknown key type foo"
    );
    ok(
        &t2,
        &s,
        Operation::Update,
        "encrypt/there",
        json!({"plaintext": PT}),
    )
    .await;
    assert!(!s.keys().contains(&"policy/new".to_owned()));
    // A write without the field turns upserting back on.
    let written = ok(&t2, &s, Operation::Update, "config/keys", json!({})).await;
    assert_eq!(written, json!({"disable_upsert": false}));
    ok(
        &t2,
        &s,
        Operation::Update,
        "encrypt/new",
        json!({"plaintext": PT}),
    )
    .await;
}

#[tokio::test]
async fn derive_key_agrees_by_ecdh_and_stores_an_imported_key() {
    let (t, s) = (Transit::new(), MemStorage::default());
    let mut public = Vec::new();
    for name in ["a", "b"] {
        ok(
            &t,
            &s,
            Operation::Update,
            &format!("keys/{name}"),
            json!({"type": "ecdsa-p384"}),
        )
        .await;
        let key = ok(&t, &s, Operation::Read, &format!("keys/{name}"), json!({})).await;
        public.push(key["keys"]["1"]["public_key"].clone());
    }
    ok_none(
        &t,
        &s,
        "derive-key/ab",
        json!({"base_key_name": "a", "peer_public_key": public[1]}),
    )
    .await;
    ok_none(
        &t,
        &s,
        "derive-key/ba",
        json!({"base_key_name": "b", "peer_public_key": public[0], "derived_key_type": "aes256-gcm96"}),
    )
    .await;
    let ct = ok(
        &t,
        &s,
        Operation::Update,
        "encrypt/ab",
        json!({"plaintext": PT}),
    )
    .await["ciphertext"]
        .clone();
    let dec = ok(
        &t,
        &s,
        Operation::Update,
        "decrypt/ba",
        json!({"ciphertext": ct}),
    )
    .await;
    assert_eq!(dec["plaintext"], PT, "both sides hold the same key");
    let key = ok(&t, &s, Operation::Read, "keys/ab", json!({})).await;
    assert_eq!(key["imported_key"], true);
    // Deriving again into the same name adds a version.
    ok_none(
        &t,
        &s,
        "derive-key/ab",
        json!({"base_key_name": "a", "peer_public_key": public[1]}),
    )
    .await;
    assert_eq!(
        ok(&t, &s, Operation::Read, "keys/ab", json!({})).await["latest_version"],
        2
    );
    for (body, msg) in [
        (
            json!({"base_key_name": "a"}),
            "peer public key not provided",
        ),
        (
            json!({"base_key_name": "ab", "peer_public_key": public[1]}),
            "base key type aes256-gcm96 does not support key agreement",
        ),
        (
            json!({"base_key_name": "a", "peer_public_key": public[1], "base_key_version": 2}),
            "requested version of the base key is higher than the latest key version",
        ),
        (
            json!({"base_key_name": "a", "peer_public_key": public[1], "key_derivation_algorithm": "x"}),
            "key derivation algorithm x not supported",
        ),
    ] {
        assert_eq!(bad(&t, &s, "derive-key/x", body).await, msg);
    }
    call(&t, &s, Operation::Delete, "keys/a/soft-delete", json!({}))
        .await
        .unwrap();
    assert_eq!(
        bad(
            &t,
            &s,
            "derive-key/x",
            json!({"base_key_name": "a", "peer_public_key": public[1]})
        )
        .await,
        "refusing to use soft-deleted key"
    );
}
