//! `keyinfra policy`: the operator manages issuance policies from YAML or JSON files (or
//! stdin), through the same use cases as the API.

use keyinfra_db::testing::TestDatabase;

use crate::ca::Cli;

#[tokio::test]
async fn an_operator_manages_policies_from_yaml_and_json_files() {
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(path("keys"), format!("1:{}\n", "22".repeat(32))).unwrap();
    let cli = Cli {
        db: &db,
        keys_file: path("keys"),
    };
    cli.ok(&["init", "--algorithm", "ecdsa-p256"]);
    let added = cli.with_stdin(
        &["user", "add", "--username", "site1-noc", "--role", "user"],
        "a sufficiently long password\n",
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );

    // Create from stdin, in YAML; omitted fields take the default policy's values.
    let created = cli.with_stdin(
        &["policy", "create", "--file", "-"],
        "name: site1\nallowed_dns: ['*.site1.example.net']\nmax_validity_days: 90\n",
    );
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    assert_eq!(shown["name"], "site1");
    assert_eq!(
        shown["allowed_dns"],
        serde_json::json!(["*.site1.example.net"])
    );
    assert_eq!(
        shown["allowed_ips"],
        serde_json::json!(["0.0.0.0/0", "::/0"])
    );

    let list = cli.ok(&["policy", "list"]);
    assert!(list.contains("default") && list.contains("site1"), "{list}");

    // Update from a file, in JSON; unchanged fields stay.
    std::fs::write(
        path("tight.json"),
        r#"{"allowed_ips": ["192.0.2.0/24"], "quota": 3}"#,
    )
    .unwrap();
    let updated: serde_json::Value = serde_json::from_str(&cli.ok(&[
        "policy",
        "update",
        "site1",
        "--file",
        &path("tight.json"),
    ]))
    .unwrap();
    assert_eq!(updated["allowed_ips"], serde_json::json!(["192.0.2.0/24"]));
    assert_eq!(updated["quota"], 3);
    assert_eq!(updated["max_validity_days"], 90);
    let again: serde_json::Value =
        serde_json::from_str(&cli.ok(&["policy", "show", "site1"])).unwrap();
    assert_eq!(again, updated);

    // Bad files are refused before anything changes, and say why.
    std::fs::write(path("typo.yaml"), "allowed_dnss: [x]\n").unwrap();
    let err = cli.fails(&["policy", "update", "site1", "--file", &path("typo.yaml")]);
    assert!(err.contains("allowed_dnss"), "{err}");
    std::fs::write(path("bad.yaml"), "allowed_dns: ['a*.example.net']\n").unwrap();
    let err = cli.fails(&["policy", "update", "site1", "--file", &path("bad.yaml")]);
    assert!(
        err.contains("allowed_dns") && err.contains("a*.example.net"),
        "{err}"
    );
    assert!(
        cli.fails(&["policy", "show", "nosuch"])
            .contains("not found")
    );

    // Assign; a policy a user holds is not deleted.
    assert!(
        cli.ok(&["policy", "assign", "site1-noc", "site1"])
            .contains("now holds policy site1")
    );
    let err = cli.fails(&["policy", "delete", "site1"]);
    assert!(err.contains("hold"), "{err}");
    cli.ok(&["policy", "assign", "site1-noc", "default"]);
    assert!(
        cli.ok(&["policy", "delete", "site1"])
            .contains("deleted policy site1")
    );
    assert!(!cli.ok(&["policy", "list"]).contains("site1"));
}
