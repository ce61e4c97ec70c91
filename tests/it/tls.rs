//! sslmode with real TLS: a scratch server with a certificate from a throwaway CA.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
use openssl::x509::{X509Name, X509};

use crate::support::*;

fn key() -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap()
}

fn cert(cn: &str, key: &PKey<Private>, issuer: Option<(&X509, &PKey<Private>)>, san_dns: Option<&str>) -> X509 {
    let mut name = X509Name::builder().unwrap();
    name.append_entry_by_text("CN", cn).unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_serial_number(&BigNum::from_u32(rand_serial()).unwrap().to_asn1_integer().unwrap()).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_pubkey(key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
    b.set_not_after(&Asn1Time::days_from_now(2).unwrap()).unwrap();
    match issuer {
        Some((ca, _)) => b.set_issuer_name(ca.subject_name()).unwrap(),
        None => {
            b.set_issuer_name(&name).unwrap();
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap()).unwrap();
        }
    }
    if let Some(dns) = san_dns {
        let ext = SubjectAlternativeName::new().dns(dns).build(&b.x509v3_context(issuer.map(|i| &**i.0), None)).unwrap();
        b.append_extension(ext).unwrap();
    }
    b.sign(issuer.map_or(key, |i| i.1), MessageDigest::sha256()).unwrap();
    b.build()
}

fn rand_serial() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

/// Writes a file the server (running as the data directory's owner) may read.
fn write_owned(dir: &Path, name: &str, bytes: &[u8]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let meta = std::fs::metadata(dir).unwrap();
    std::os::unix::fs::chown(&path, Some(meta.uid()), Some(meta.gid())).unwrap();
    path.to_str().unwrap().to_string()
}

/// A scratch server with TLS on, its certificate (for `localhost`) from a throwaway CA, which
/// it also trusts for client certificates; `hba` lines go before the default rules. Returns
/// the server and the CA (certificate and key).
fn tls_server(hba: &[&str]) -> (pg_scratch::Scratch, (X509, PKey<Private>)) {
    let server = pg_scratch::Scratch::start().unwrap();
    let dir = server.socket_dir().to_path_buf();
    let ca_key = key();
    let ca = cert("cargo-procrastinate test CA", &ca_key, None, None);
    let server_key = key();
    let server_cert = cert("localhost", &server_key, Some((&ca, &ca_key)), Some("localhost"));
    let crt = write_owned(&dir, "server.crt", &server_cert.to_pem().unwrap());
    let key_path = write_owned(&dir, "server.key", &server_key.private_key_to_pem_pkcs8().unwrap());
    let ca_path = write_owned(&dir, "ca.crt", &ca.to_pem().unwrap());
    let mut admin = server.config("postgres").connect(postgres::NoTls).unwrap();
    if !hba.is_empty() {
        let file: String = admin.query_one("SHOW hba_file", &[]).unwrap().get(0);
        let rules = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, format!("{}\n{rules}", hba.join("\n"))).unwrap();
    }
    // One statement per call: ALTER SYSTEM refuses to run in a multi-statement (implicit) transaction.
    for sql in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{crt}'"),
        format!("ALTER SYSTEM SET ssl_key_file = '{key_path}'"),
        format!("ALTER SYSTEM SET ssl_ca_file = '{ca_path}'"),
        "ALTER SYSTEM SET ssl = on".to_string(),
        "SELECT pg_reload_conf()".to_string(),
    ] {
        admin.batch_execute(&sql).unwrap();
    }
    for _ in 0..100 {
        let on: String = server.config("postgres").connect(postgres::NoTls).unwrap().query_one("SHOW ssl", &[]).unwrap().get(0);
        if on == "on" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (server, (ca, ca_key))
}

#[test]
fn sslmode_is_honoured_with_real_tls() {
    let (server, ca) = tls_server(&[]);
    let ca_dir = tempfile::tempdir().unwrap();
    let ca_file = ca_dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.0.to_pem().unwrap()).unwrap();
    let other_ca = ca_dir.path().join("other.pem");
    std::fs::write(&other_ca, cert("someone else", &key(), None, None).to_pem().unwrap()).unwrap();

    let url = |host: &str, query: &str| {
        format!("postgres://postgres:{}@{host}:{}/postgres?{query}", server.password(), server.port())
    };
    let uses_tls = |u: &str| -> bool {
        let target = cargo_procrastinate::connect::parse(u, &|_| None).unwrap();
        let mut client = target.connect().unwrap_or_else(|e| panic!("{e}"));
        first_row(&mut client, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0].as_deref() == Some("t")
    };
    let ca = ca_file.to_str().unwrap();
    assert!(!uses_tls(&url("127.0.0.1", "sslmode=disable")));
    assert!(uses_tls(&url("127.0.0.1", "sslmode=prefer")));
    assert!(uses_tls(&url("127.0.0.1", "sslmode=require")));
    assert!(uses_tls(&url("localhost", &format!("sslmode=verify-full&sslrootcert={ca}"))));
    // verify-ca checks the chain only, so the IP the certificate does not name is fine...
    assert!(uses_tls(&url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"))));

    // ...while verify-full refuses it, and both refuse a certificate from another CA.
    let set = example_set();
    let run = |u: String| cli_in(&std::env::temp_dir(), &["--migrations", set.to_str().unwrap(), "--database-url", &u, "current"], &[]);
    let wrong_host = run(url("127.0.0.1", &format!("sslmode=verify-full&sslrootcert={ca}"))).code(3);
    assert!(wrong_host.stderr.contains("cannot connect to postgres://postgres@127.0.0.1"), "{}", wrong_host.stderr);
    let other = other_ca.to_str().unwrap();
    run(url("localhost", &format!("sslmode=verify-ca&sslrootcert={other}"))).code(3);
    run(url("localhost", &format!("sslmode=verify-full&sslrootcert={ca}"))).ok();
    let no_root = run(url("localhost", "sslmode=verify-full")).code(3);
    assert!(no_root.stderr.contains("needs a root certificate"), "{}", no_root.stderr);
    assert!(!no_root.stderr.contains(server.password()));

    // `sslrootcert=system` is the machine's store, which does not trust this test CA, unless
    // SSL_CERT_FILE (OpenSSL's own variable, which psql honours too) adds it. The OpenSSL the
    // tool is built with must find the store where the distribution keeps it.
    let system = url("localhost", "sslmode=verify-full&sslrootcert=system");
    let untrusted = run(system.clone()).code(3);
    assert!(untrusted.stderr.contains("certificate verify failed"), "{}", untrusted.stderr);
    let args = ["--migrations", set.to_str().unwrap(), "--database-url", &system, "current"];
    cli_in(&std::env::temp_dir(), &args, &[("SSL_CERT_FILE", ca)]).ok();
}

/// libpq habits against a server that requires a client certificate: sslcert/sslkey in the URL
/// or PGSSLCERT/PGSSLKEY, an encrypted key with sslpassword, libpq's permission rule for the
/// key, and the application name the server sees (the URL's, else PGAPPNAME, else ours).
#[test]
fn a_client_certificate_and_the_application_name() {
    use std::os::unix::fs::PermissionsExt;
    // Certificate authentication only, for that role: no password can get it in.
    let (server, (ca, ca_key)) = tls_server(&["hostssl all certuser all cert", "host all certuser all reject"]);
    server.config("postgres").connect(postgres::NoTls).unwrap().batch_execute("CREATE ROLE certuser LOGIN").unwrap();

    let client_key = key();
    let client_cert = cert("certuser", &client_key, Some((&ca, &ca_key)), None);
    let files = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8], mode: u32| {
        let path = files.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.to_str().unwrap().to_string()
    };
    let ca_file = write("ca.pem", &ca.to_pem().unwrap(), 0o644);
    let cert_file = write("client.crt", &client_cert.to_pem().unwrap(), 0o644);
    let key_file = write("client.key", &client_key.private_key_to_pem_pkcs8().unwrap(), 0o600);
    let secret_key = write(
        "secret.key",
        &client_key.private_key_to_pem_pkcs8_passphrase(openssl::symm::Cipher::aes_256_cbc(), b"s3cret").unwrap(),
        0o600,
    );
    let loose_key = write("loose.key", &client_key.private_key_to_pem_pkcs8().unwrap(), 0o644);
    let base = format!("postgres://certuser@localhost:{}/postgres?sslmode=verify-full&sslrootcert={ca_file}", server.port());

    // Who the server says we are, and under which name.
    let seen = |url: &str, env: &[(&str, &str)]| -> (String, String) {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let target = cargo_procrastinate::connect::parse(url, &lookup).unwrap_or_else(|e| panic!("{e}"));
        let mut client = target.connect().unwrap_or_else(|e| panic!("{e}"));
        let row = first_row(&mut client, "SELECT s.client_dn, a.application_name FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE pid = pg_backend_pid()");
        (row[0].clone().unwrap_or_default(), row[1].clone().unwrap_or_default())
    };
    let with_cert = format!("{base}&sslcert={cert_file}&sslkey={key_file}");
    assert_eq!(seen(&with_cert, &[]), ("/CN=certuser".to_string(), "cargo-procrastinate".to_string()));
    assert_eq!(seen(&with_cert, &[("PGAPPNAME", "deploy-42")]).1, "deploy-42");
    assert_eq!(seen(&format!("{with_cert}&application_name=from-url"), &[("PGAPPNAME", "deploy-42")]).1, "from-url");
    assert_eq!(seen(&base, &[("PGSSLCERT", &cert_file), ("PGSSLKEY", &key_file)]).0, "/CN=certuser");
    assert_eq!(seen(&format!("{base}&sslcert={cert_file}&sslkey={secret_key}&sslpassword=s3cret"), &[]).0, "/CN=certuser");

    // The real binary, as a deploy runs it: the certificate from PG* variables.
    let set = example_set();
    let cli_run = |url: &str, env: &[(&str, &str)]| {
        cli_in(&std::env::temp_dir(), &["--migrations", set.to_str().unwrap(), "--database-url", url, "current"], env)
    };
    assert!(cli_run(&base, &[("PGSSLCERT", &cert_file), ("PGSSLKEY", &key_file)]).ok().stdout.starts_with("base"));
    // Without a certificate the server says no; a wrong passphrase, a key others can read and
    // an encrypted key without its passphrase are each named.
    cli_run(&base, &[]).code(3);
    let wrong = cli_run(&format!("{base}&sslcert={cert_file}&sslkey={secret_key}&sslpassword=nope"), &[]).code(3);
    assert!(wrong.stderr.contains("wrong sslpassword"), "{}", wrong.stderr);
    let locked = cli_run(&format!("{base}&sslcert={cert_file}&sslkey={secret_key}"), &[]).code(3);
    assert!(locked.stderr.contains("encrypted (give sslpassword)"), "{}", locked.stderr);
    let loose = cli_run(&format!("{base}&sslcert={cert_file}&sslkey={loose_key}"), &[]).code(3);
    assert!(loose.stderr.contains("has group or world access (644)"), "{}", loose.stderr);
}
