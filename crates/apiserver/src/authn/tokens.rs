//! Service-account tokens: JWTs signed with the cluster's service-account key (ES256 with the
//! ECDSA P-256 keys kwok makes, RS256 with RSA keys given or made earlier). Bound
//! tokens (`TokenRequest`) carry `iss`, `aud`, `exp`, `nbf`, `iat`, `jti` and the
//! `kubernetes.io` claim naming the account and any bound pod, secret or node; legacy tokens
//! (in `kubernetes.io/service-account-token` Secrets) carry the older flat claims and no
//! expiry. The public half is published as a JWKS with the OIDC discovery document.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};

use super::{SERVICE_ACCOUNT_PREFIX, SERVICE_ACCOUNTS, UserInfo};

/// kube-apiserver's issuer in kwok clusters (`--service-account-issuer`).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The issuer of legacy Secret-based tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";

/// The objects a token is bound to, as they were when it was issued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    pub namespace: String,
    pub service_account: (String, String),
    pub pod: Option<(String, String)>,
    pub secret: Option<(String, String)>,
    pub node: Option<(String, String)>,
}

/// A token's claims after the signature, issuer and times were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub binding: Binding,
    pub audiences: Vec<String>,
    pub id: Option<String>,
    /// A legacy (Secret-held, non-expiring) token.
    pub legacy: bool,
}

impl Verified {
    /// The user a token stands for, with kube-apiserver's groups and extra fields.
    pub fn user(&self) -> UserInfo {
        let b = &self.binding;
        let mut user = UserInfo::authenticated(
            &format!(
                "{SERVICE_ACCOUNT_PREFIX}{}:{}",
                b.namespace, b.service_account.0
            ),
            vec![
                SERVICE_ACCOUNTS.to_string(),
                format!("{SERVICE_ACCOUNTS}:{}", b.namespace),
            ],
        );
        user.uid = b.service_account.1.clone();
        let mut extra = BTreeMap::new();
        let mut put = |k: &str, v: &str| {
            extra.insert(
                format!("authentication.kubernetes.io/{k}"),
                vec![v.to_string()],
            );
        };
        if let Some(id) = &self.id {
            put("credential-id", &format!("JTI={id}"));
        }
        if let Some((name, uid)) = &b.pod {
            put("pod-name", name);
            put("pod-uid", uid);
        }
        if let Some((name, uid)) = &b.node {
            put("node-name", name);
            put("node-uid", uid);
        }
        user.extra = extra;
        user
    }
}

/// Issues and verifies the cluster's service-account tokens.
pub struct Tokens {
    pub issuer: String,
    /// Audiences tokens are accepted for when a review names none (`--api-audiences`).
    pub audiences: Vec<String>,
    key_id: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Value,
}

impl Tokens {
    /// Reads a PKCS#8 PEM private key: RSA (tokens signed RS256) or ECDSA P-256 (ES256).
    pub fn from_pem(pem: &str, issuer: &str) -> anyhow::Result<Self> {
        let key = match rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
            Ok(rsa) => rsa_key(&rsa)?,
            Err(rsa_error) => ec_key(pem).map_err(|ec_error| {
                anyhow::anyhow!(
                    "service-account key: neither RSA ({rsa_error}) nor ECDSA P-256 ({ec_error})"
                )
            })?,
        };
        Ok(Self {
            issuer: issuer.to_string(),
            audiences: vec![issuer.to_string()],
            key_id: key.key_id,
            algorithm: key.algorithm,
            encoding: key.encoding,
            decoding: key.decoding,
            jwk: key.jwk,
        })
    }

    /// `/.well-known/openid-configuration`.
    pub fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/openid/v1/jwks", self.issuer.trim_end_matches('/')),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.jwk["alg"]],
        })
    }

    /// `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// A bound token valid from `now` (seconds since the epoch) for `seconds`.
    pub fn issue(
        &self,
        binding: &Binding,
        audiences: &[String],
        now: i64,
        seconds: i64,
    ) -> anyhow::Result<String> {
        let pair = |(name, uid): &(String, String)| json!({"name": name, "uid": uid});
        let mut kubernetes = json!({
            "namespace": binding.namespace,
            "serviceaccount": pair(&binding.service_account),
        });
        for (field, bound) in [
            ("pod", &binding.pod),
            ("secret", &binding.secret),
            ("node", &binding.node),
        ] {
            if let Some(b) = bound {
                kubernetes[field] = pair(b);
            }
        }
        let claims = json!({
            "aud": audiences,
            "exp": now + seconds,
            "iat": now,
            "iss": self.issuer,
            "jti": uuid::Uuid::new_v4().to_string(),
            "kubernetes.io": kubernetes,
            "nbf": now,
            "sub": format!("{SERVICE_ACCOUNT_PREFIX}{}:{}", binding.namespace, binding.service_account.0),
        });
        self.sign(&claims)
    }

    /// A legacy token for a `kubernetes.io/service-account-token` Secret: no expiry.
    pub fn issue_legacy(&self, binding: &Binding) -> anyhow::Result<String> {
        let secret = binding.secret.as_ref().map_or("", |s| s.0.as_str());
        let claims = json!({
            "iss": LEGACY_ISSUER,
            "kubernetes.io/serviceaccount/namespace": binding.namespace,
            "kubernetes.io/serviceaccount/secret.name": secret,
            "kubernetes.io/serviceaccount/service-account.name": binding.service_account.0,
            "kubernetes.io/serviceaccount/service-account.uid": binding.service_account.1,
            "sub": format!("{SERVICE_ACCOUNT_PREFIX}{}:{}", binding.namespace, binding.service_account.0),
        });
        self.sign(&claims)
    }

    fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let mut header = Header::new(self.algorithm);
        // kube-apiserver's tokens carry `alg` and `kid` only.
        header.typ = None;
        header.kid = Some(self.key_id.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }

    /// Checks signature, issuer, audience and times; `None` for anything that is not a valid
    /// token of ours. `audiences` empty means the server's own.
    pub fn verify(&self, token: &str, audiences: &[String], now: i64) -> Option<Verified> {
        let mut validation = Validation::new(self.algorithm);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_aud = false;
        let claims = jsonwebtoken::decode::<Value>(token, &self.decoding, &validation)
            .ok()?
            .claims;
        let wanted = if audiences.is_empty() {
            &self.audiences
        } else {
            audiences
        };
        match claims["iss"].as_str()? {
            // Legacy tokens are good for the server's own audiences only.
            LEGACY_ISSUER => {
                let audiences: Vec<String> = wanted
                    .iter()
                    .filter(|a| self.audiences.contains(a))
                    .cloned()
                    .collect();
                if audiences.is_empty() {
                    return None;
                }
                legacy_claims(&claims).map(|binding| Verified {
                    binding,
                    audiences,
                    id: None,
                    legacy: true,
                })
            }
            issuer if issuer == self.issuer => {
                let exp = claims["exp"].as_i64()?;
                let nbf = claims["nbf"].as_i64().unwrap_or(0);
                // kube-apiserver allows a minute of clock skew on both ends.
                if now > exp + 60 || now + 60 < nbf {
                    return None;
                }
                let granted = token_audiences(&claims["aud"]);
                let audiences: Vec<String> = wanted
                    .iter()
                    .filter(|a| granted.contains(a))
                    .cloned()
                    .collect();
                if audiences.is_empty() {
                    return None;
                }
                Some(Verified {
                    binding: bound_claims(&claims["kubernetes.io"])?,
                    audiences,
                    id: claims["jti"].as_str().map(String::from),
                    legacy: false,
                })
            }
            _ => None,
        }
    }
}

fn token_audiences(aud: &Value) -> Vec<String> {
    match aud {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

fn name_uid(v: &Value) -> Option<(String, String)> {
    Some((
        v["name"].as_str()?.to_string(),
        v["uid"].as_str().unwrap_or("").to_string(),
    ))
}

fn bound_claims(k: &Value) -> Option<Binding> {
    Some(Binding {
        namespace: k["namespace"].as_str()?.to_string(),
        service_account: name_uid(&k["serviceaccount"])?,
        pod: name_uid(&k["pod"]),
        secret: name_uid(&k["secret"]),
        node: name_uid(&k["node"]),
    })
}

fn legacy_claims(c: &Value) -> Option<Binding> {
    let claim = |k: &str| c[format!("kubernetes.io/serviceaccount/{k}")].as_str();
    Some(Binding {
        namespace: claim("namespace")?.to_string(),
        service_account: (
            claim("service-account.name")?.to_string(),
            claim("service-account.uid").unwrap_or("").to_string(),
        ),
        secret: Some((claim("secret.name")?.to_string(), String::new())),
        ..Binding::default()
    })
}

/// A signing key read from PEM, with its public half as a JWK.
struct SigningKey {
    key_id: String,
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Value,
}

/// kube-apiserver's key id: the unpadded base64url SHA-256 of the public key's PKIX DER.
fn key_id(public_der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, public_der);
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn rsa_key(key: &rsa::RsaPrivateKey) -> anyhow::Result<SigningKey> {
    let public_der = key
        .to_public_key()
        .to_public_key_der()
        .map_err(|e| anyhow::anyhow!("service-account key: {e}"))?;
    let key_id = key_id(public_der.as_bytes());
    let n = URL_SAFE_NO_PAD.encode(key.n().to_bytes_be());
    let e = URL_SAFE_NO_PAD.encode(key.e().to_bytes_be());
    let private_der = key
        .to_pkcs1_der()
        .map_err(|e| anyhow::anyhow!("service-account key: {e}"))?;
    Ok(SigningKey {
        jwk: json!({"use": "sig", "kty": "RSA", "kid": key_id, "alg": "RS256", "n": n, "e": e}),
        key_id,
        algorithm: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_der(private_der.as_bytes()),
        decoding: DecodingKey::from_rsa_components(&n, &e)?,
    })
}

/// The PKIX DER header of a P-256 public key (id-ecPublicKey, prime256v1, BIT STRING of 66).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

fn ec_key(pem: &str) -> anyhow::Result<SigningKey> {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
    let der = pem_body(pem, "PRIVATE KEY")?;
    let pair = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &der,
        &ring::rand::SystemRandom::new(),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let point = pair.public_key().as_ref();
    anyhow::ensure!(
        point.len() == 65 && point[0] == 4,
        "not an uncompressed P-256 point"
    );
    let public_der = [&P256_SPKI_PREFIX[..], point].concat();
    let key_id = key_id(&public_der);
    let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
    let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
    Ok(SigningKey {
        jwk: json!({"use": "sig", "kty": "EC", "kid": key_id, "crv": "P-256", "alg": "ES256", "x": x, "y": y}),
        key_id,
        algorithm: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(&der),
        decoding: DecodingKey::from_ec_components(&x, &y)?,
    })
}

/// The DER inside the first PEM block labelled `label`.
fn pem_body(pem: &str, label: &str) -> anyhow::Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .find(&begin)
        .ok_or_else(|| anyhow::anyhow!("no {begin} block"))?
        + begin.len();
    let stop = start
        + pem[start..]
            .find(&end)
            .ok_or_else(|| anyhow::anyhow!("no {end} line"))?;
    let text: String = pem[start..stop].split_whitespace().collect();
    Ok(base64::engine::general_purpose::STANDARD.decode(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        let pem = pki::generate_service_account_key().unwrap();
        Tokens::from_pem(&pem, DEFAULT_ISSUER).unwrap()
    }

    #[test]
    fn rsa_keys_of_earlier_clusters_still_sign_rs256() {
        let t = Tokens::from_pem(&pki::generate_rsa_key().unwrap(), DEFAULT_ISSUER).unwrap();
        let token = t
            .issue(&binding(), &t.audiences.clone(), 1000, 3600)
            .unwrap();
        assert!(t.verify(&token, &[], 2000).is_some());
        let jwk = &t.jwks()["keys"][0];
        assert_eq!(
            (jwk["kty"].as_str(), jwk["alg"].as_str()),
            (Some("RSA"), Some("RS256"))
        );
        assert_eq!(
            t.openid_configuration()["id_token_signing_alg_values_supported"],
            json!(["RS256"])
        );
        let other = tokens();
        assert!(
            other.verify(&token, &[], 2000).is_none(),
            "another key refuses it"
        );
        assert!(
            Tokens::from_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                DEFAULT_ISSUER
            )
            .is_err()
        );
    }

    #[test]
    fn ec_keys_publish_their_point_and_sign_es256() {
        let t = tokens();
        let jwk = &t.jwks()["keys"][0];
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["alg"], "ES256");
        for coordinate in ["x", "y"] {
            let bytes = URL_SAFE_NO_PAD
                .decode(jwk[coordinate].as_str().unwrap())
                .unwrap();
            assert_eq!(bytes.len(), 32);
        }
        assert_eq!(
            t.openid_configuration()["id_token_signing_alg_values_supported"],
            json!(["ES256"])
        );
        let token = t
            .issue(&binding(), &t.audiences.clone(), 1000, 3600)
            .unwrap();
        assert!(
            tokens().verify(&token, &[], 2000).is_none(),
            "another key refuses it"
        );
    }

    fn binding() -> Binding {
        Binding {
            namespace: "default".into(),
            service_account: ("builder".into(), "sa-uid".into()),
            pod: Some(("web-0".into(), "pod-uid".into())),
            ..Binding::default()
        }
    }

    #[test]
    fn bound_tokens_verify_within_their_lifetime_and_audience() {
        let t = tokens();
        let token = t
            .issue(&binding(), &t.audiences.clone(), 1000, 3600)
            .unwrap();
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], t.jwks()["keys"][0]["kid"]);

        let ok = t.verify(&token, &[], 2000).expect("valid");
        assert_eq!(ok.binding, binding());
        let user = ok.user();
        assert_eq!(user.name, "system:serviceaccount:default:builder");
        assert_eq!(user.uid, "sa-uid");
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:default",
                "system:authenticated"
            ]
        );
        assert_eq!(
            user.extra["authentication.kubernetes.io/pod-name"],
            ["web-0"]
        );

        assert!(t.verify(&token, &[], 1000 + 3600 + 61).is_none(), "expired");
        assert!(
            t.verify(&token, &["other".into()], 2000).is_none(),
            "audience"
        );
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert!(t.verify(&forged, &[], 2000).is_none(), "signature");
        assert!(tokens().verify(&token, &[], 2000).is_none(), "another key");
    }

    #[test]
    fn legacy_tokens_have_no_expiry() {
        let t = tokens();
        let mut b = binding();
        b.pod = None;
        b.secret = Some(("builder-token".into(), String::new()));
        let token = t.issue_legacy(&b).unwrap();
        let ok = t.verify(&token, &[], i64::MAX / 2).unwrap();
        assert_eq!(ok.binding, b);
    }
}
