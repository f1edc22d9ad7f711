//! Private keys at rest: sealed, bound to their row, and re-sealable under a new master key.

use keyinfra_core::authority::{Authority, AuthoritySettings};
use keyinfra_core::{OsRandom, Principal};
use keyinfra_db::UserRole;
use keyinfra_pki::pkcs12::{Pin, Pkcs12Compat};
use keyinfra_pki::seal::MasterKeys;
use serde_json::json;

use crate::openssl::{Scratch, openssl_ok, private_part_hex};
use crate::support::{MASTER_KEY, TestApp};

#[tokio::test]
async fn a_database_dump_holds_no_private_key_in_any_readable_form() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let dir = Scratch::new();
    let mut secrets = Vec::new();
    for alg in ["ecdsa-p256", "ed25519", "rsa-2048"] {
        let cert = app
            .issue(
                &admin,
                json!({"subject": format!("CN={alg}"), "key_algorithm": alg}),
            )
            .await;
        let p12 = app
            .post_raw(
                &format!(
                    "/api/v1/certificates/{}/pkcs12",
                    cert["id"].as_str().unwrap()
                ),
                &admin,
                json!({"pin": "12345678"}),
            )
            .await
            .bytes()
            .await
            .unwrap();
        let p12_file = dir.write(&format!("{alg}.p12"), p12);
        let key_file = dir.path(&format!("{alg}.key"));
        openssl_ok(&[
            "pkcs12",
            "-in",
            &p12_file,
            "-nocerts",
            "-nodes",
            "-passin",
            "pass:12345678",
            "-out",
            &key_file,
        ]);
        let der_file = dir.path(&format!("{alg}.der"));
        openssl_ok(&[
            "pkey", "-in", &key_file, "-outform", "DER", "-out", &der_file,
        ]);
        secrets.push((
            alg,
            hex::encode(std::fs::read(&der_file).unwrap()),
            private_part_hex(&key_file),
        ));
    }
    let dump = std::process::Command::new("pg_dump")
        .args(["--data-only", app.tdb.url()])
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout).to_ascii_lowercase();
    assert!(dump.contains("private_keys"), "the dump has the key table");
    assert!(
        !dump.contains("private key"),
        "a PEM private-key marker is in the dump"
    );
    for (alg, pkcs8_hex, private_hex) in secrets {
        assert!(
            !dump.contains(&pkcs8_hex),
            "{alg}: plaintext PKCS#8 in the dump"
        );
        assert!(
            !dump.contains(&private_hex),
            "{alg}: the private key's secret bytes are in the dump"
        );
    }
}

fn authority_with(app: &TestApp, versions: &[(i32, [u8; 32])]) -> Authority {
    let mut masters = MasterKeys::new();
    for (v, k) in versions {
        masters.insert(*v, k).unwrap();
    }
    Authority::new(
        AuthoritySettings::new(app.base.clone()),
        masters,
        app.clock.clone(),
    )
}

#[tokio::test]
async fn rotation_reseals_every_key_under_the_newest_master_key() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let mut ids = Vec::new();
    for n in 0..7 {
        let cert = app
            .issue(&admin, json!({"subject": format!("CN=k{n}")}))
            .await;
        ids.push(cert["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
    }
    let new_key = [9u8; 32];
    let both = authority_with(&app, &[(1, MASTER_KEY), (2, new_key)]);
    let (newest, pending) = both.key_rotation.keys_to_rotate(&app.db).await.unwrap();
    assert_eq!((newest, pending), (2, 8), "7 certificate keys and the CA's");
    let mut seen = Vec::new();
    let done = both
        .key_rotation
        .rotate_keys(&app.db, 3, &mut OsRandom, |p| seen.push(p.done))
        .await
        .unwrap();
    assert_eq!(done.done, 8);
    assert_eq!(seen, vec![0, 3, 6, 8], "progress is reported per batch");
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM private_keys WHERE kek_version <> 2")
            .await,
        0
    );
    assert_eq!(
        app.tdb
            .scalar_i64("SELECT count(*) FROM private_keys WHERE resealed_at IS NULL")
            .await,
        0
    );
    // Running it again has nothing to do.
    assert_eq!(
        both.key_rotation
            .rotate_keys(&app.db, 3, &mut OsRandom, |_| {})
            .await
            .unwrap()
            .done,
        0
    );
    let (_, audit) = app.get("/api/v1/audit?action=keys.resealed", &admin).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 3);

    // With the old version gone, every key still opens: exports and the CA's signing work.
    let only_new = authority_with(&app, &[(2, new_key)]);
    for id in &ids {
        only_new
            .exports
            .export_pkcs12(
                &app.db,
                &Principal::Operator,
                *id,
                Pin::new("12345678".into(), Pkcs12Compat::Modern).unwrap(),
                Pkcs12Compat::Modern,
            )
            .await
            .unwrap();
    }
    let ca_id = only_new.cas.default_issuing_ca(&app.db).await.unwrap();
    only_new.crls.publish_crl(&app.db, ca_id).await.unwrap();
    // And the old master key alone opens nothing any more.
    let only_old = authority_with(&app, &[(1, MASTER_KEY)]);
    assert!(
        only_old
            .exports
            .export_pkcs12(
                &app.db,
                &Principal::Operator,
                ids[0],
                Pin::new("12345678".into(), Pkcs12Compat::Modern).unwrap(),
                Pkcs12Compat::Modern
            )
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_ciphertext_moved_into_another_row_does_not_decrypt() {
    let app = TestApp::spawn().await;
    app.user("root", UserRole::Admin).await;
    let admin = app.token("root").await;
    let a = app.issue(&admin, json!({"subject": "CN=a"})).await;
    let b = app.issue(&admin, json!({"subject": "CN=b"})).await;
    let (a_id, b_id) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    // An attacker with write access to the database copies A's sealed key over B's.
    let sql = format!(
        "UPDATE private_keys AS dst SET ciphertext = src.ciphertext, nonce = src.nonce, salt = src.salt
         FROM private_keys AS src, certificates AS ca, certificates AS cb
         WHERE ca.id = '{a_id}' AND cb.id = '{b_id}' AND src.id = ca.private_key_id AND dst.id = cb.private_key_id"
    );
    let changed = app.tdb.owner_execute(&sql).await;
    assert_eq!(changed, 1);
    let export = |id: String| {
        let app = &app;
        let admin = admin.clone();
        async move {
            app.post_raw(
                &format!("/api/v1/certificates/{id}/pkcs12"),
                &admin,
                json!({"pin": "12345678"}),
            )
            .await
        }
    };
    let refused = export(b_id.to_owned()).await;
    assert_eq!(refused.status(), 500);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "internal_error");
    assert!(!body.to_string().contains("ciphertext"));
    assert_eq!(
        export(a_id.to_owned()).await.status(),
        200,
        "the original row still opens"
    );
}
