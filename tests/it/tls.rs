//! sslmode with real TLS: a scratch server with a certificate from a throwaway CA.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair};

use crate::support::*;

fn key() -> KeyPair {
    KeyPair::generate().unwrap()
}

fn cert(cn: &str, key: &KeyPair, issuer: Option<(&Certificate, &KeyPair)>, san_dns: Option<&str>) -> Certificate {
    let mut params = CertificateParams::new(san_dns.map(|d| vec![d.to_string()]).unwrap_or_default()).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let now = std::time::SystemTime::now();
    params.not_before = now.into();
    params.not_after = (now + std::time::Duration::from_secs(2 * 86_400)).into();
    match issuer {
        Some((ca, ca_key)) => params.signed_by(key, ca, ca_key).unwrap(),
        None => {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.self_signed(key).unwrap()
        }
    }
}

/// The key as PKCS#8 PEM, encrypted with `password` (PBES2: PBKDF2-SHA256, AES-256-CBC).
fn encrypted_pem(key: &KeyPair, password: &str) -> String {
    use pkcs8::der::EncodePem;
    let der = key.serialize_der();
    let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice()).unwrap();
    let params = pkcs8::pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, b"saltsalt", &[7; 16]).unwrap();
    let encrypted = info.encrypt_with_params(params, password).unwrap();
    let info = pkcs8::EncryptedPrivateKeyInfo::try_from(encrypted.as_bytes()).unwrap();
    info.to_pem(pkcs8::LineEnding::LF).unwrap()
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
fn tls_server(hba: &[&str]) -> (pg_scratch::Scratch, (Certificate, KeyPair)) {
    let server = pg_scratch::Scratch::start().unwrap();
    let dir = server.socket_dir().to_path_buf();
    let ca_key = key();
    let ca = cert("cargo-procrastinate test CA", &ca_key, None, None);
    let server_key = key();
    let server_cert = cert("localhost", &server_key, Some((&ca, &ca_key)), Some("localhost"));
    let crt = write_owned(&dir, "server.crt", server_cert.pem().as_bytes());
    let key_path = write_owned(&dir, "server.key", server_key.serialize_pem().as_bytes());
    let ca_path = write_owned(&dir, "ca.crt", ca.pem().as_bytes());
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
    std::fs::write(&ca_file, ca.0.pem()).unwrap();
    let other_ca = ca_dir.path().join("other.pem");
    std::fs::write(&other_ca, cert("someone else", &key(), None, None).pem()).unwrap();

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
    let ca_file = write("ca.pem", ca.pem().as_bytes(), 0o644);
    let cert_file = write("client.crt", client_cert.pem().as_bytes(), 0o644);
    let key_file = write("client.key", client_key.serialize_pem().as_bytes(), 0o600);
    let secret_key = write("secret.key", encrypted_pem(&client_key, "s3cret").as_bytes(), 0o600);
    let loose_key = write("loose.key", client_key.serialize_pem().as_bytes(), 0o644);
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

/// A unix socket under the default `sslmode` (prefer): the server says no to TLS there, and the
/// connection goes on plain, as libpq's does; `require` is refused with the server's reason.
#[test]
fn a_unix_socket_connects_under_the_default_sslmode() {
    let server = pg_scratch::Scratch::start().unwrap();
    let url = format!("postgres://postgres@/postgres?host={}&port={}", server.socket_dir().display(), server.port());
    let set = example_set();
    let run = cli_in(&std::env::temp_dir(), &["--migrations", set.to_str().unwrap(), "--database-url", &url, "current"], &[]).ok();
    assert!(run.stdout.starts_with("base"), "{}", run.stdout);
    let required = format!("{url}&sslmode=require");
    cli_in(&std::env::temp_dir(), &["--migrations", set.to_str().unwrap(), "--database-url", &required, "current"], &[]).code(3);
}
