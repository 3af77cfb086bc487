//! Certificates for a kwok cluster: a self-signed CA, a serving certificate for the API server
//! (SANs `localhost`, `127.0.0.1`, `::1` plus any extra names), and the admin client certificate
//! (`CN=kwok-admin, O=system:masters`) that goes into the kubeconfig.
//!
//! Files are PEM, laid out as upstream kwokctl does under a cluster's `pki/` folder:
//! `ca.crt`, `ca.key`, `admin.crt`, `admin.key`, plus `apiserver.crt` and `apiserver.key`, and
//! `sa.key`: the ECDSA P-256 key that signs service-account tokens (ES256; an RSA key there, from
//! an earlier cluster or the user, signs RS256), as kubeadm names it.

mod insecure;

pub use insecure::accept_any_server;

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

/// The admin user's common name.
pub const ADMIN_USER: &str = "kwok-admin";
/// The admin user's group: full access.
pub const ADMIN_GROUP: &str = "system:masters";

/// Errors from generating or writing certificates.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("generate certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("generate key: {0}")]
    Key(String),
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Paths of the PEM files of a cluster's PKI folder.
#[derive(Debug, Clone)]
pub struct PkiPaths {
    pub dir: PathBuf,
}

impl PkiPaths {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn admin_cert(&self) -> PathBuf {
        self.dir.join("admin.crt")
    }
    pub fn admin_key(&self) -> PathBuf {
        self.dir.join("admin.key")
    }
    pub fn serving_cert(&self) -> PathBuf {
        self.dir.join("apiserver.crt")
    }
    pub fn serving_key(&self) -> PathBuf {
        self.dir.join("apiserver.key")
    }
    pub fn service_account_key(&self) -> PathBuf {
        self.dir.join("sa.key")
    }
    /// True when every file exists.
    pub fn complete(&self) -> bool {
        [
            self.ca_cert(),
            self.ca_key(),
            self.admin_cert(),
            self.admin_key(),
            self.serving_cert(),
            self.serving_key(),
        ]
        .iter()
        .all(|p| p.is_file())
    }
}

/// PEM-encoded certificate and key.
#[derive(Debug, Clone)]
pub struct CertPem {
    pub cert: String,
    pub key: String,
}

/// A whole cluster PKI in memory.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub ca: CertPem,
    pub admin: CertPem,
    pub serving: CertPem,
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kwok-ca");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params
}

/// Generates a fresh CA, a serving certificate valid for `localhost`, `127.0.0.1`, `::1` and
/// `extra_sans`, and the admin client certificate.
pub fn generate(extra_sans: &[String]) -> Result<Bundle, Error> {
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params().self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params(), &ca_key);

    let mut sans = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
    ];
    for san in extra_sans {
        if !sans.contains(san) {
            sans.push(san.clone());
        }
    }
    let mut serving = CertificateParams::new(sans)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "kube-apiserver");
    serving.distinguished_name = dn;
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    serving.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    serving.not_before = rcgen::date_time_ymd(2020, 1, 1);
    serving.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let serving_key = KeyPair::generate()?;
    let serving_cert = serving.signed_by(&serving_key, &issuer)?;

    let mut admin = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, ADMIN_USER);
    dn.push(DnType::OrganizationName, ADMIN_GROUP);
    admin.distinguished_name = dn;
    admin.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    admin.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    admin.not_before = rcgen::date_time_ymd(2020, 1, 1);
    admin.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let admin_key = KeyPair::generate()?;
    let admin_cert = admin.signed_by(&admin_key, &issuer)?;

    Ok(Bundle {
        ca: CertPem {
            cert: ca_cert.pem(),
            key: ca_key.serialize_pem(),
        },
        admin: CertPem {
            cert: admin_cert.pem(),
            key: admin_key.serialize_pem(),
        },
        serving: CertPem {
            cert: serving_cert.pem(),
            key: serving_key.serialize_pem(),
        },
    })
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    fs::write(path, contents).map_err(err)?;
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(err)?;
    }
    #[cfg(not(unix))]
    let _ = private;
    Ok(())
}

/// Writes `bundle` into `paths.dir`, creating the folder.
pub fn write_bundle(paths: &PkiPaths, bundle: &Bundle) -> Result<(), Error> {
    fs::create_dir_all(&paths.dir).map_err(|source| Error::Write {
        path: paths.dir.clone(),
        source,
    })?;
    write(&paths.ca_cert(), &bundle.ca.cert, false)?;
    write(&paths.ca_key(), &bundle.ca.key, true)?;
    write(&paths.admin_cert(), &bundle.admin.cert, false)?;
    write(&paths.admin_key(), &bundle.admin.key, true)?;
    write(&paths.serving_cert(), &bundle.serving.cert, false)?;
    write(&paths.serving_key(), &bundle.serving.key, true)?;
    Ok(())
}

/// Generates the PKI into `dir` unless a complete one is already there.
pub fn ensure(dir: &Path, extra_sans: &[String]) -> Result<PkiPaths, Error> {
    let paths = PkiPaths::new(dir);
    if !paths.complete() {
        write_bundle(&paths, &generate(extra_sans)?)?;
    }
    Ok(paths)
}

/// A client certificate for `user` in `groups` (CN and O), signed by the CA, valid for 100
/// years from a day ago, as `kwokctl get kubeconfig --user/--group` hands out.
pub fn client_certificate(ca: &CertPem, user: &str, groups: &[String]) -> Result<CertPem, Error> {
    let ca_key = KeyPair::from_pem(&ca.key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, &ca_key)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, user);
    params.distinguished_name = dn;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(24 * 3600)).into();
    params.not_after = (now + std::time::Duration::from_secs(100 * 365 * 24 * 3600)).into();
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    let der = with_subject(cert.der(), &subject_name(user, groups), &ca_key)?;
    Ok(CertPem {
        cert: certificate_pem(&der),
        key: key.serialize_pem(),
    })
}

/// What a signed CSR's certificate may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    ClientAuth,
    ServerAuth,
}

/// Signs a PEM certificate signing request with the CA for `seconds` (from a minute ago, as
/// kube-controller-manager backdates), keeping the request's subject as it is.
pub fn sign_csr(
    ca: &CertPem,
    csr_pem: &str,
    seconds: u64,
    usages: &[Usage],
) -> Result<String, Error> {
    use x509_parser::prelude::FromDer as _;
    let bad = |what: &str| Error::Key(format!("certificate request: {what}"));
    let mut request = rcgen::CertificateSigningRequestParams::from_pem(csr_pem)?;
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(csr_pem.as_bytes()).map_err(|_| bad("not PEM"))?;
    let (_, parsed) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&pem.contents)
            .map_err(|_| bad("not a certificate request"))?;
    let subject = parsed.certification_request_info.subject.as_raw().to_vec();
    let ca_key = KeyPair::from_pem(&ca.key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, &ca_key)?;
    let now = std::time::SystemTime::now();
    let params = &mut request.params;
    params.not_before = (now - std::time::Duration::from_secs(60)).into();
    params.not_after = (now + std::time::Duration::from_secs(seconds)).into();
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = usages
        .iter()
        .map(|u| match u {
            Usage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
            Usage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
        })
        .collect();
    let cert = request.signed_by(&issuer)?;
    let der = with_subject(cert.der(), &subject, &ca_key)?;
    Ok(certificate_pem(&der))
}

fn certificate_pem(der: &[u8]) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// A Name of CN=`user` and one O per group. rcgen keeps one value per attribute type, and
/// Kubernetes reads every O of a client certificate as a group, so the subject is written here.
fn subject_name(user: &str, groups: &[String]) -> Vec<u8> {
    const CN: &[u64] = &[2, 5, 4, 3];
    const O: &[u64] = &[2, 5, 4, 10];
    let attributes = std::iter::once((CN, user)).chain(groups.iter().map(|g| (O, g.as_str())));
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            for (oid, value) in attributes {
                w.next().write_set(|w| {
                    w.next().write_sequence(|w| {
                        w.next()
                            .write_oid(&yasna::models::ObjectIdentifier::from_slice(oid));
                        w.next().write_utf8_string(value);
                    })
                })
            }
        })
    })
}

/// `cert` (DER) with its subject replaced by `subject`, signed again by `ca_key`.
fn with_subject(cert: &[u8], subject: &[u8], ca_key: &KeyPair) -> Result<Vec<u8>, Error> {
    use rcgen::SigningKey as _;
    let bad = |e: String| Error::Key(format!("re-encode certificate: {e}"));
    let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|e| bad(e.to_string()))?;
    let tbs = parsed.tbs_certificate.as_ref();
    let old_subject = parsed.tbs_certificate.subject.as_raw();
    // Where the parsed subject sits inside the TBS bytes (both borrow from `cert`).
    let at = (old_subject.as_ptr() as usize)
        .checked_sub(tbs.as_ptr() as usize)
        .filter(|at| at + old_subject.len() <= tbs.len())
        .ok_or_else(|| bad("subject not found".into()))?;
    // The TBS content: everything after its SEQUENCE header, with the subject swapped.
    let (header, _) = der_element(tbs).ok_or_else(|| bad("TBS header".into()))?;
    let content = [&tbs[header..at], subject, &tbs[at + old_subject.len()..]].concat();
    let new_tbs = yasna::construct_der(|w| w.write_sequence(|w| w.next().write_der(&content)));
    let signature = ca_key.sign(&new_tbs)?;
    // The signature algorithm follows the TBS inside the certificate; it stays as it was.
    let (cert_header, _) = der_element(cert).ok_or_else(|| bad("header".into()))?;
    let after_tbs = &cert[cert_header + tbs.len()..];
    let (h, len) = der_element(after_tbs).ok_or_else(|| bad("algorithm".into()))?;
    let algorithm = &after_tbs[..h + len];
    Ok(yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_der(&new_tbs);
            w.next().write_der(algorithm);
            w.next().write_bitvec_bytes(&signature, signature.len() * 8);
        })
    }))
}

/// The header and content lengths of the DER element `der` starts with.
fn der_element(der: &[u8]) -> Option<(usize, usize)> {
    let first = *der.get(1)? as usize;
    if first < 0x80 {
        return Some((2, first));
    }
    let n = first & 0x7f;
    let len = der
        .get(2..2 + n)?
        .iter()
        .try_fold(0usize, |acc, b| Some((acc << 8) | *b as usize))?;
    Some((2 + n, len))
}

/// Generates the service-account signing key into `dir` unless one is there; returns its PEM.
/// Kept apart from [`ensure`] so clusters made before it get one without a new CA.
pub fn ensure_service_account_key(dir: &Path) -> Result<String, Error> {
    let path = PkiPaths::new(dir).service_account_key();
    if path.exists() {
        return read(&path);
    }
    let pem = generate_service_account_key()?;
    fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    write(&path, &pem, true)?;
    Ok(pem)
}

/// A fresh service-account signing key: ECDSA P-256 (tokens signed ES256), PKCS#8 PEM. Made in
/// microseconds, where an RSA-2048 key took 50-500 ms of every `create cluster`; kube-apiserver
/// takes either kind, and RSA keys of existing clusters are still read.
pub fn generate_service_account_key() -> Result<String, Error> {
    Ok(KeyPair::generate()?.serialize_pem())
}

/// A fresh RSA-2048 private key, PKCS#8 PEM.
pub fn generate_rsa_key() -> Result<String, Error> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
        .map_err(|e| Error::Key(e.to_string()))?;
    key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|e| Error::Key(e.to_string()))
}

/// Reads a file into a string, with the path in the error.
pub fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CN, every O and the lifetime in seconds of a certificate the CA of `bundle` signed.
    fn read_signed(bundle: &Bundle, cert_pem: &str) -> (String, Vec<String>, i64) {
        let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let (_, ca_pem) = x509_parser::pem::parse_x509_pem(bundle.ca.cert.as_bytes()).unwrap();
        cert.verify_signature(Some(ca_pem.parse_x509().unwrap().public_key()))
            .expect("signed by the CA");
        let subject = cert.subject();
        let text = |v: &x509_parser::x509::AttributeTypeAndValue| v.as_str().unwrap().to_string();
        let validity = cert.validity();
        (
            subject.iter_common_name().next().map(text).unwrap(),
            subject.iter_organization().map(text).collect(),
            validity.not_after.timestamp() - validity.not_before.timestamp(),
        )
    }

    #[test]
    fn client_certificates_carry_every_group() {
        let bundle = generate(&[]).unwrap();
        let groups = vec!["devs".to_string(), "testers".to_string()];
        let signed = client_certificate(&bundle.ca, "alice", &groups).unwrap();
        let (cn, orgs, _) = read_signed(&bundle, &signed.cert);
        assert_eq!((cn.as_str(), orgs), ("alice", groups));
    }

    #[test]
    fn certificate_requests_are_signed_with_their_subject() {
        let bundle = generate(&[]).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "bob");
        dn.push(DnType::OrganizationName, "devs");
        params.distinguished_name = dn;
        let csr = params.serialize_request(&key).unwrap().pem().unwrap();
        let signed = sign_csr(&bundle.ca, &csr, 3600, &[Usage::ClientAuth]).unwrap();
        let (cn, orgs, lifetime) = read_signed(&bundle, &signed);
        assert_eq!(
            (cn.as_str(), orgs, lifetime),
            ("bob", vec!["devs".to_string()], 3660)
        );
        assert!(sign_csr(&bundle.ca, "garbage", 3600, &[Usage::ClientAuth]).is_err());
    }

    #[test]
    fn service_account_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_service_account_key(dir.path()).unwrap();
        assert!(first.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert_eq!(ensure_service_account_key(dir.path()).unwrap(), first);
    }

    #[test]
    fn ensure_writes_all_files_once() {
        let dir = tempfile::tempdir().unwrap();
        let paths = ensure(dir.path(), &[]).unwrap();
        assert!(paths.complete());
        let first = fs::read_to_string(paths.ca_cert()).unwrap();
        assert!(first.starts_with("-----BEGIN CERTIFICATE-----"));
        ensure(dir.path(), &[]).unwrap();
        assert_eq!(first, fs::read_to_string(paths.ca_cert()).unwrap());
    }
}
