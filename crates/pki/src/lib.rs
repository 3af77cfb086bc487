//! Certificates for a kwok cluster: a self-signed CA, a serving certificate for the API server
//! (SANs `localhost`, `127.0.0.1`, `::1` plus any extra names), and the admin client certificate
//! (`CN=kwok-admin, O=system:masters`) that goes into the kubeconfig.
//!
//! Files are PEM, laid out as upstream kwokctl does under a cluster's `pki/` folder:
//! `ca.crt`, `ca.key`, `admin.crt`, `admin.key`, plus `apiserver.crt` and `apiserver.key`.

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
