//! CA name constraints, end to end: `init` and `ca create --parent` write them, KeyInfra
//! refuses to sign outside them, and `openssl verify` agrees, including on certificates
//! made by hand with the openssl CLI under a constrained CA's key.

use std::path::Path;
use std::process::Command;

use keyinfra_core::Clock;
use keyinfra_db::testing::TestDatabase;
use keyinfra_pki::ca::{CaSigner, CaSpec, ParentUrls};
use keyinfra_pki::constraints::NameConstraints;
use keyinfra_pki::names::{DistinguishedName, SubjectAltName};
use keyinfra_pki::{KeyAlgorithm, PrivateKey, SerialNumber};

use crate::ca::Cli;
use crate::support::{id_in, openssl};

fn cli<'a>(db: &'a TestDatabase, dir: &Path) -> Cli<'a> {
    let keys = dir.join("keys");
    std::fs::write(&keys, format!("1:{}\n", "5a".repeat(32))).unwrap();
    Cli {
        db,
        keys_file: keys.to_string_lossy().into_owned(),
    }
}

/// `openssl verify`: whether it passed, and its output.
fn verify(root: &str, untrusted: Option<&str>, leaf: &str) -> (bool, String) {
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-CAfile", root]);
    if let Some(intermediate) = untrusted {
        cmd.args(["-untrusted", intermediate]);
    }
    let out = cmd.arg(leaf).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Writes the PEM blocks of `cert show --pem` (leaf first) as `<prefix>-0.pem`, ...
fn write_chain(dir: &Path, prefix: &str, chain: &str) -> Vec<String> {
    chain
        .split_inclusive("-----END CERTIFICATE-----\n")
        .enumerate()
        .map(|(i, block)| {
            let path = dir.join(format!("{prefix}-{i}.pem"));
            std::fs::write(&path, block).unwrap();
            path.to_string_lossy().into_owned()
        })
        .collect()
}

fn text_of(cert: &str) -> String {
    openssl(&["x509", "-in", cert, "-noout", "-text"])
}

#[tokio::test]
async fn init_and_ca_create_write_critical_constraints_and_issuance_stays_inside() {
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let cli = cli(&db, dir.path());

    // A bad value is refused before anything is written.
    let err = cli.fails(&["init", "--permitted-ip", "10.1.2.3/8"]);
    assert!(
        err.contains("--permitted-ip") && err.contains("did you mean 10.0.0.0/8"),
        "{err}"
    );
    let err = cli.fails(&["init", "--permitted-dns", "*.example.net"]);
    assert!(err.contains("no wildcard"), "{err}");
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM certificate_authorities")
            .await,
        0
    );

    cli.ok(&[
        "init",
        "--algorithm",
        "ecdsa-p256",
        "--intermediate",
        "CN=Example Issuing CA,O=Example",
        "--permitted-dns",
        "example.net",
        "--excluded-dns",
        "bad.example.net",
        "--permitted-ip",
        "10.0.0.0/8,2001:db8::/32",
    ]);
    let list = cli.ok(&["ca", "list"]);
    assert_eq!(
        list.matches(
            "name constraints: permitted: DNS:example.net, IP:10.0.0.0/8, IP:2001:db8::/32; excluded: DNS:bad.example.net"
        )
        .count(),
        1,
        "{list}"
    );
    let root_id = id_in(list.lines().find(|l| l.contains(" root ")).unwrap());
    let issuing_id = id_in(list.lines().find(|l| l.contains(" issuing ")).unwrap());

    // Inside: issued, and openssl verifies it against the constrained intermediate.
    let issued = cli.ok(&[
        "cert",
        "issue",
        "--subject",
        "CN=router1.example.net",
        "--san",
        "router1.example.net",
        "--san",
        "10.1.2.3",
    ]);
    let chain = write_chain(
        dir.path(),
        "init",
        &cli.ok(&["cert", "show", &id_in(&issued), "--pem"]),
    );
    assert_eq!(chain.len(), 3);
    let issuing_text = text_of(&chain[1]);
    assert!(
        issuing_text.contains("X509v3 Name Constraints: critical"),
        "{issuing_text}"
    );
    for line in [
        "DNS:example.net",
        "IP:10.0.0.0/255.0.0.0",
        "DNS:bad.example.net",
    ] {
        assert!(issuing_text.contains(line), "{line}: {issuing_text}");
    }
    assert!(
        !text_of(&chain[2]).contains("Name Constraints"),
        "the root stays unconstrained"
    );
    let (ok, out) = verify(&chain[2], Some(&chain[1]), &chain[0]);
    assert!(ok, "{out}");

    // Outside: refused, with the name and the rule, and nothing written.
    for (args, expected) in [
        (
            vec!["--subject", "CN=x", "--san", "www.example.org"],
            r#"DNS:www.example.org is outside the name constraints of CA "issuing" (permitted: DNS:example.net)"#,
        ),
        (
            vec!["--subject", "CN=x", "--san", "x.bad.example.net"],
            r#"DNS:x.bad.example.net is outside the name constraints of CA "issuing" (excluded: DNS:bad.example.net)"#,
        ),
        (
            vec!["--subject", "CN=x", "--san", "192.0.2.1"],
            r#"IP:192.0.2.1 is outside the name constraints of CA "issuing" (permitted: IP:10.0.0.0/8, IP:2001:db8::/32)"#,
        ),
        (
            vec!["--subject", "CN=www.example.org"],
            r#"CN=www.example.org is outside the name constraints of CA "issuing""#,
        ),
    ] {
        let err = cli.fails(&[&["cert", "issue"][..], &args].concat());
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // A CSR's names are checked the same way.
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &path("csr.key"),
        "-out",
        &path("out.csr"),
        "-subj",
        "/CN=device",
        "-addext",
        "subjectAltName=DNS:device.example.org",
    ]);
    let err = cli.fails(&["cert", "issue", "--csr", &path("out.csr")]);
    assert!(
        err.contains("DNS:device.example.org is outside the name constraints"),
        "{err}"
    );
    assert_eq!(db.scalar_i64("SELECT count(*) FROM certificates").await, 1);

    // `ca create --parent`: checked flags and parent, then a second issuing CA.
    let err = cli.fails(&[
        "ca",
        "create",
        "--parent",
        &root_id,
        "--subject",
        "CN=Site 2 CA",
        "--excluded-ip",
        "not-a-range",
    ]);
    assert!(
        err.contains("--excluded-ip") && err.contains("CIDR"),
        "{err}"
    );
    let err = cli.fails(&[
        "ca",
        "create",
        "--parent",
        &issuing_id,
        "--subject",
        "CN=Site 2 CA",
    ]);
    assert!(err.contains("pathLenConstraint"), "{err}");
    let err = cli.fails(&[
        "ca",
        "create",
        "--parent",
        &root_id,
        "--subject",
        "CN=Site 2 CA",
        "--validity-days",
        "36500",
    ]);
    assert!(err.contains("would outlive its parent"), "{err}");
    // A prepared rollover must start later, and the time must read as RFC 3339.
    let err = cli.fails(&[
        "ca",
        "create",
        "--parent",
        &root_id,
        "--subject",
        "CN=Site 2 CA",
        "--starts-at",
        "next week",
    ]);
    assert!(err.contains("RFC 3339"), "{err}");
    let err = cli.fails(&[
        "ca",
        "create",
        "--parent",
        &root_id,
        "--subject",
        "CN=Site 2 CA",
        "--starts-at",
        "2020-01-01T00:00:00Z",
    ]);
    assert!(err.contains("must be in the future"), "{err}");
    assert_eq!(
        db.scalar_i64("SELECT count(*) FROM certificate_authorities")
            .await,
        2
    );
    let created = cli.ok(&[
        "ca",
        "create",
        "--parent",
        &root_id,
        "--subject",
        "CN=Site 2 CA,O=Example",
        "--validity-days",
        "2000",
        "--permitted-dns",
        ".site2.example.com",
        "--permitted-ip",
        "192.0.2.0/24",
    ]);
    assert!(
        created.starts_with("created CA ")
            && created.contains(r#""Site 2 CA": CN=Site 2 CA,O=Example"#),
        "{created}"
    );

    // The new CA signs by default now; below its subtree only, not its apex.
    let issued = cli.ok(&[
        "cert",
        "issue",
        "--subject",
        "CN=cam1",
        "--san",
        "cam1.site2.example.com",
        "--san",
        "192.0.2.7",
    ]);
    let chain = write_chain(
        dir.path(),
        "site2",
        &cli.ok(&["cert", "show", &id_in(&issued), "--pem"]),
    );
    assert_eq!(chain.len(), 3);
    let site2_text = text_of(&chain[1]);
    assert!(
        site2_text.contains("X509v3 Name Constraints: critical")
            && site2_text.contains("DNS:.site2.example.com")
            && site2_text.contains("Site 2 CA"),
        "{site2_text}"
    );
    let (ok, out) = verify(&chain[2], Some(&chain[1]), &chain[0]);
    assert!(ok, "{out}");
    let err = cli.fails(&[
        "cert",
        "issue",
        "--subject",
        "CN=x",
        "--san",
        "site2.example.com",
    ]);
    assert!(
        err.contains(
            r#"outside the name constraints of CA "Site 2 CA" (permitted: DNS:.site2.example.com)"#
        ),
        "{err}"
    );
}

#[tokio::test]
async fn init_without_an_intermediate_constrains_the_root() {
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cli = cli(&db, dir.path());
    cli.ok(&[
        "init",
        "--algorithm",
        "ecdsa-p256",
        "--permitted-dns",
        "example.net",
    ]);
    let issued = cli.ok(&[
        "cert",
        "issue",
        "--subject",
        "CN=a",
        "--san",
        "a.example.net",
    ]);
    let chain = write_chain(
        dir.path(),
        "leaf",
        &cli.ok(&["cert", "show", &id_in(&issued), "--pem"]),
    );
    assert_eq!(chain.len(), 2);
    assert!(text_of(&chain[1]).contains("X509v3 Name Constraints: critical"));
    let (ok, out) = verify(&chain[1], None, &chain[0]);
    assert!(ok, "{out}");
    let err = cli.fails(&[
        "cert",
        "issue",
        "--subject",
        "CN=a",
        "--san",
        "a.example.org",
    ]);
    assert!(
        err.contains(r#"outside the name constraints of CA "root""#),
        "{err}"
    );
}

/// A CA made with the pki crate, its certificate and key written as PEM for openssl.
struct HandCa {
    signer: CaSigner,
    cert: String,
    key: String,
}

fn hand_ca(
    dir: &Path,
    name: &str,
    parent: Option<&HandCa>,
    constraints: Option<&NameConstraints>,
) -> HandCa {
    let now = keyinfra_core::SystemClock.now();
    let subject = DistinguishedName::parse(&format!("CN={name},O=Hand")).unwrap();
    let serial = SerialNumber::from_hex(&format!("{:02X}", name.len() + 16)).unwrap();
    let spec = CaSpec {
        subject: &subject,
        serial: &serial,
        not_before: now - time::Duration::hours(1),
        not_after: now + time::Duration::days(30),
        path_len: parent.map(|_| 0),
        name_constraints: constraints,
    };
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
    let signer = match parent {
        Some(p) => p
            .signer
            .create_subordinate(
                key,
                &spec,
                &ParentUrls {
                    crl_url: "http://hand.example/parent.crl".into(),
                    ca_issuers_url: "http://hand.example/parent.crt".into(),
                    ocsp_url: None,
                    delta_crl_url: None,
                },
            )
            .unwrap(),
        None => CaSigner::create_root(key, &spec).unwrap(),
    };
    let cert = dir.join(format!("{name}.pem"));
    std::fs::write(
        &cert,
        keyinfra_pki::certificate_pem(signer.certificate_der()),
    )
    .unwrap();
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&key, signer.key().to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    HandCa {
        signer,
        cert: cert.to_string_lossy().into_owned(),
        key: key.to_string_lossy().into_owned(),
    }
}

/// A leaf made with the openssl CLI alone, signed with the CA's key: KeyInfra's checks
/// play no part in it.
fn hand_leaf(dir: &Path, ca: &HandCa, n: usize, subject: &str, sans: &[&str]) -> String {
    let file = |ext: &str| {
        dir.join(format!("hand{n}.{ext}"))
            .to_string_lossy()
            .into_owned()
    };
    openssl(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &file("key"),
        "-out",
        &file("csr"),
        "-subj",
        subject,
    ]);
    let mut ext = String::from("basicConstraints=critical,CA:FALSE\n");
    if !sans.is_empty() {
        ext.push_str(&format!("subjectAltName={}\n", sans.join(",")));
    }
    std::fs::write(file("ext"), ext).unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &file("csr"),
        "-CA",
        &ca.cert,
        "-CAkey",
        &ca.key,
        "-set_serial",
        &(1000 + n).to_string(),
        "-days",
        "1",
        "-extfile",
        &file("ext"),
        "-out",
        &file("pem"),
    ]);
    file("pem")
}

#[test]
fn openssl_rejects_by_hand_leaves_outside_and_agrees_with_keyinfras_check() {
    let dir = tempfile::tempdir().unwrap();
    let constraints = NameConstraints::parse(
        &["example.net", ".example.com"],
        &["bad.example.net"],
        &["10.0.0.0/8", "2001:db8::/32"],
        &["10.9.0.0/16"],
    )
    .unwrap();
    let root = hand_ca(dir.path(), "root", None, None);
    let issuing = hand_ca(dir.path(), "issuing", Some(&root), Some(&constraints));
    assert!(text_of(&issuing.cert).contains("X509v3 Name Constraints: critical"));

    // (subject, SANs, whether the names are inside)
    let cases: &[(&str, &[&str], bool)] = &[
        (
            "/CN=router1",
            &["DNS:router1.example.net", "IP:10.1.2.3"],
            true,
        ),
        ("/CN=x", &["DNS:example.net"], true),
        ("/CN=x", &["DNS:www.example.org"], false),
        ("/CN=x", &["DNS:badexample.net"], false),
        ("/CN=x", &["DNS:example.com"], false),
        ("/CN=x", &["DNS:a.example.com"], true),
        ("/CN=x", &["DNS:x.bad.example.net"], false),
        ("/CN=x", &["DNS:*.x.example.net"], true),
        ("/CN=x", &["DNS:*.bad.example.net"], false),
        ("/CN=x", &["IP:10.9.1.1"], false),
        ("/CN=x", &["IP:192.0.2.1"], false),
        ("/CN=x", &["IP:2001:db8::1"], true),
        ("/CN=x", &["IP:2001:db9::1"], false),
        ("/CN=www.example.org", &[], false),
        ("/CN=www.example.org", &["IP:10.1.2.3"], false),
        ("/CN=www.example.org", &["DNS:a.example.net"], true),
        ("/CN=router1", &[], true),
        ("/CN=10.0.0.1", &[], false),
        ("/CN=my_host.example.org", &[], false),
    ];
    for (n, (subject, sans, inside)) in cases.iter().enumerate() {
        let leaf = hand_leaf(dir.path(), &issuing, n, subject, sans);
        let (ok, out) = verify(&root.cert, Some(&issuing.cert), &leaf);
        let dn = DistinguishedName::parse(&subject[1..]).unwrap();
        let parsed: Vec<SubjectAltName> = sans
            .iter()
            .map(|s| SubjectAltName::parse(s).unwrap())
            .collect();
        let ours = constraints.permits(&dn, &parsed);
        assert_eq!(ok, *inside, "openssl on {subject} {sans:?}: {out}");
        assert_eq!(
            ours.is_ok(),
            *inside,
            "KeyInfra on {subject} {sans:?}: {ours:?}"
        );
        if let Err(violation) = ours {
            let expected = if violation.rule.starts_with("excluded") {
                "excluded subtree violation"
            } else {
                "permitted subtree violation"
            };
            assert!(out.contains(expected), "{subject} {sans:?}: {out}");
        }
    }

    // Deliberately stricter than OpenSSL: `*.example.net` may stand for bad.example.net.
    let leaf = hand_leaf(dir.path(), &issuing, 100, "/CN=x", &["DNS:*.example.net"]);
    assert!(verify(&root.cert, Some(&issuing.cert), &leaf).0);
    let wildcard = [SubjectAltName::parse("*.example.net").unwrap()];
    let dn = DistinguishedName::parse("CN=x").unwrap();
    assert!(constraints.permits(&dn, &wildcard).is_err());

    // Constraints in a root are obeyed too (`init` without --intermediate puts them there).
    let only_example = NameConstraints::parse(&["example.net"], &[], &[], &[]).unwrap();
    let constrained_root = hand_ca(dir.path(), "constrained-root", None, Some(&only_example));
    let leaf = hand_leaf(
        dir.path(),
        &constrained_root,
        200,
        "/CN=x",
        &["DNS:a.example.net"],
    );
    assert!(verify(&constrained_root.cert, None, &leaf).0);
    let leaf = hand_leaf(
        dir.path(),
        &constrained_root,
        201,
        "/CN=x",
        &["DNS:a.example.org"],
    );
    let (ok, out) = verify(&constrained_root.cert, None, &leaf);
    assert!(!ok && out.contains("permitted subtree violation"), "{out}");
}

#[tokio::test]
async fn an_imported_ca_is_held_to_its_own_and_its_parents_constraints() {
    let db = TestDatabase::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cli = cli(&db, dir.path());
    let only_example = NameConstraints::parse(&["example.net"], &[], &[], &[]).unwrap();
    let not_bad = NameConstraints::parse(&[], &["bad.example.net"], &[], &[]).unwrap();
    let root = hand_ca(dir.path(), "hand-root", None, Some(&only_example));
    let issuing = hand_ca(dir.path(), "hand-issuing", Some(&root), Some(&not_bad));
    cli.ok(&["ca", "import", "--cert", &root.cert, "--name", "hand-root"]);
    cli.ok(&[
        "ca",
        "import",
        "--cert",
        &issuing.cert,
        "--key",
        &issuing.key,
        "--name",
        "hand-issuing",
    ]);
    assert_eq!(
        cli.ok(&["ca", "list"]).matches("name constraints:").count(),
        2
    );

    let err = cli.fails(&[
        "cert",
        "issue",
        "--subject",
        "CN=x",
        "--san",
        "www.example.org",
    ]);
    assert!(
        err.contains(r#"DNS:www.example.org is outside the name constraints of CA "hand-root" (permitted: DNS:example.net)"#),
        "{err}"
    );
    let err = cli.fails(&[
        "cert",
        "issue",
        "--subject",
        "CN=x",
        "--san",
        "db.bad.example.net",
    ]);
    assert!(
        err.contains(r#"of CA "hand-issuing" (excluded: DNS:bad.example.net)"#),
        "{err}"
    );
    assert_eq!(db.scalar_i64("SELECT count(*) FROM certificates").await, 0);

    let issued = cli.ok(&[
        "cert",
        "issue",
        "--subject",
        "CN=x",
        "--san",
        "router.example.net",
        "--validity-days",
        "7",
    ]);
    let chain = write_chain(
        dir.path(),
        "imported",
        &cli.ok(&["cert", "show", &id_in(&issued), "--pem"]),
    );
    let (ok, out) = verify(&root.cert, Some(&issuing.cert), &chain[0]);
    assert!(ok, "{out}");
}
